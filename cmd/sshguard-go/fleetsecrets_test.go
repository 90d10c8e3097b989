package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sshguard-go/internal/testkit"
)

// TestFleetServeWarnsSecretFiles: fleet serve warns on stderr, at its
// start and as the daemon does of its own, of each secret file it is
// given that every user may read: --token-file, --tls-key, --nats-creds,
// --nats-token-file, and the hosts' token_file and key_file that the
// hosts file names (a key every host shares, once); of none that only
// its owner may read. It said nothing of any. fleet summary warns of the
// hosts' files the same way (it said nothing either).
func TestFleetServeWarnsSecretFiles(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	file := func(name, text string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // whatever the umask
			t.Fatal(err)
		}
		return p
	}
	tok := strings.Repeat("t", 32)
	ca := testkit.NewCA(t, "fleet test CA")
	server := ca.Issue(t, "127.0.0.1", dir, "server")
	client := ca.Issue(t, "aggregator", dir, "client")
	for _, p := range []string{server.Key, client.Key} {
		os.Chmod(p, 0o644)
	}
	web1, web2 := file("web-01.token", tok, 0o644), file("web-02.token", tok, 0o600)
	hosts := file("hosts.toml", fmt.Sprintf(`[[host]]
name = "web-01"
url = "https://127.0.0.1:1"
token_file = %q
cert_file = %q
key_file = %q
[[host]]
name = "web-02"
url = "https://127.0.0.1:2"
token_file = %q
cert_file = %q
key_file = %q
`, web1, client.Cert, client.Key, web2, client.Cert, client.Key), 0o644)
	serveTok := file("serve.token", tok, 0o644)

	// Serving over TLS from the hosts file: it starts, after the warnings.
	cmd := exec.Command(self, "fleet", "serve", "--hosts", hosts, "--listen", "127.0.0.1:0", "--token-file", serveTok,
		"--tls-cert", server.Cert, "--tls-key", server.Key)
	cmd.Env = append(os.Environ(), "SG_MAIN=1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 64)
	go func() {
		defer close(lines)
		for sc := bufio.NewScanner(stderr); sc.Scan(); {
			lines <- sc.Text()
		}
	}()
	var warned []string
	deadline := time.After(30 * time.Second)
wait:
	for {
		select {
		case l, ok := <-lines:
			switch {
			case !ok:
				t.Fatalf("fleet serve stopped: %v\n%s", cmd.Wait(), strings.Join(warned, "\n"))
			case strings.HasPrefix(l, "fleet view at https://"):
				break wait
			}
			warned = append(warned, l)
		case <-deadline:
			t.Fatalf("fleet serve did not start within 30 s:\n%s", strings.Join(warned, "\n"))
		}
	}
	testkit.Stop(t, cmd, 10*time.Second)
	want := []string{
		"warning: --token-file: " + serveTok + " is readable by every user (mode 0644): anyone on this machine can read every host's bans",
		"warning: --tls-key: " + server.Key + " is readable by every user (mode 0644): anyone on this machine can pose as the fleet view's server; chmod o-r it",
		"warning: " + hosts + ": host web-01: token_file: " + web1 + " is readable by every user (mode 0644): anyone on this machine can read the bans, logins, events and sessions of host web-01; chmod o-r it",
		"warning: " + hosts + ": host web-01: key_file: " + client.Key + " is readable by every user (mode 0644): anyone on this machine can read the bans, logins, events and sessions of hosts web-01 and 1 more; chmod o-r it",
	}
	checkWarned(t, "fleet serve --hosts", warned, want)

	// fleet summary reads the same hosts' files: the same warnings, on
	// stderr before the table (the hosts do not answer: exit status 1).
	sum := exec.Command(self, "fleet", "summary", "--hosts", hosts, "--date", "2026-11-28")
	sum.Env = append(os.Environ(), "SG_MAIN=1")
	var serr strings.Builder
	sum.Stderr = &serr
	if err := sum.Run(); err == nil {
		t.Fatalf("fleet summary of hosts that do not answer: no error\n%s", serr.String())
	}
	got := strings.Split(strings.TrimSpace(serr.String()), "\n")
	checkWarned(t, "fleet summary", got[:min(len(got), 2)], want[2:])

	// With NATS: its credentials, warned before it connects (the server
	// here answers nothing: the start then fails).
	creds := file("fleet.creds", "not checked before the connection", 0o644)
	natsTok := file("nats.token", tok, 0o640)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	nc := exec.CommandContext(ctx, self, "fleet", "serve", "--nats", "nats://127.0.0.1:1", "--nats-creds", creds, "--nats-token-file", natsTok)
	nc.Env = append(os.Environ(), "SG_MAIN=1")
	out, err := nc.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("fleet serve with no NATS server did not stop:\n%s", out)
	}
	if err == nil {
		t.Fatalf("fleet serve with no NATS server: no error\n%s", out)
	}
	want = []string{"warning: --nats-creds: " + creds + " is readable by every user (mode 0644): anyone on this machine can connect to the NATS servers as the fleet view's user; chmod o-r it"}
	checkWarned(t, "fleet serve --nats", strings.Split(strings.TrimSpace(string(out)), "\n")[:1], want)
	if strings.Count(string(out), "warning:") != 1 {
		t.Fatalf("fleet serve --nats: want one warning (the token file is 0640):\n%s", out)
	}
}

// checkWarned fails t unless warned (stderr's lines) are want, in order,
// each line starting with its want.
func checkWarned(t *testing.T, what string, warned, want []string) {
	t.Helper()
	ok := len(warned) == len(want)
	for i := 0; ok && i < len(want); i++ {
		ok = strings.HasPrefix(warned[i], want[i])
	}
	if !ok {
		t.Fatalf("%s: stderr\n%s\nwant\n%s", what, strings.Join(warned, "\n"), strings.Join(want, "\n"))
	}
}
