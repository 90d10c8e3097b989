package control

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"sshguard-go/internal/roottest"
)

// TestServeRefusesUnsafePaths: a regular file at the socket path is not
// deleted, and a directory others may write to is refused.
func TestServeRefusesUnsafePaths(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "notes.txt")
	os.WriteFile(file, []byte("keep me"), 0o600)
	if err := Serve(context.Background(), file, nil, Limits()); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("serve on a regular file: %v", err)
	}
	if b, _ := os.ReadFile(file); string(b) != "keep me" {
		t.Fatal("the file was deleted")
	}
	open := filepath.Join(dir, "open")
	os.Mkdir(open, 0o777)
	os.Chmod(open, 0o777)
	if err := Serve(context.Background(), filepath.Join(open, "ctl.sock"), nil, Limits()); err == nil || !strings.Contains(err.Error(), "writable by others") {
		t.Fatalf("serve in a 0777 directory: %v", err)
	}
}

// TestControlSocketOfAnother: a directory owned by another user is
// refused for the socket (its owner could put a socket of its own in its
// place), and the CLI refuses a socket served by another user than root
// or itself (one who could write the directory would answer in the
// daemon's place): a helper process of this test listens as nobody.
func TestControlSocketOfAnother(t *testing.T) {
	if sock := os.Getenv("SSHGUARD_PEER_HELPER"); sock != "" {
		peerHelper(sock)
	}
	roottest.Require(t)
	const nobody = 65534
	dir, err := os.MkdirTemp("", "sgpeer")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	theirs := filepath.Join(dir, "theirs")
	if err := os.Mkdir(theirs, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(theirs, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second) // served, it would end with ctx
	defer cancel()
	if err := Serve(ctx, filepath.Join(theirs, "ctl.sock"), nil, Limits()); err == nil || !strings.Contains(err.Error(), "belongs to uid 65534") {
		t.Fatalf("serve in a directory of nobody's: %v", err)
	}

	// nobody's listener, in nobody's directory: this test's own binary,
	// copied where nobody may run it, as a helper.
	sock := filepath.Join(theirs, "ctl.sock")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	helper := filepath.Join(dir, "helper")
	if err := os.WriteFile(helper, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(helper, "-test.run=^TestControlSocketOfAnother$")
	cmd.Env = append(os.Environ(), "SSHGUARD_PEER_HELPER="+sock)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line := make([]byte, 6)
	if _, err := io.ReadFull(out, line); err != nil || string(line) != "ready\n" {
		t.Fatalf("helper: %q %v", line, err)
	}
	if _, err := Dial(sock); err == nil || !strings.Contains(err.Error(), "served by uid 65534") || !strings.Contains(err.Error(), "not the daemon") {
		t.Fatalf("dial nobody's socket: %v", err)
	}
}

// peerHelper listens on sock, says so, and accepts until killed.
func peerHelper(sock string) {
	l, err := net.Listen("unix", sock)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	fmt.Print("ready\n")
	for {
		c, err := l.Accept()
		if err != nil {
			os.Exit(1)
		}
		c.Close()
	}
}

// TestNotAllowed: allow rm of what is no entry of its own names the
// entries that hold it and how each goes, or says it is not allowed.
func TestNotAllowed(t *testing.T) {
	entries := []AllowInfo{
		{Prefix: netip.MustParsePrefix("127.0.0.0/8"), Source: "builtin"},
		{Prefix: netip.MustParsePrefix("10.0.0.0/8"), Source: "config"},
		{Prefix: netip.MustParsePrefix("198.51.100.5/32"), Source: "fleet"},
		{Prefix: netip.MustParsePrefix("192.0.2.0/24"), Source: "store"},
	}
	for p, want := range map[string]string{
		"127.0.0.1/32":    "127.0.0.0/8 (built in, always allowed)",
		"10.1.0.0/16":     "10.0.0.0/8 (ban.allow in the configuration: remove it there and reload)",
		"198.51.100.5/32": "198.51.100.5/32 (a NATS server of fleet.nats_url",
		"192.0.2.7/32":    "192.0.2.0/24 (added with allow add: allow rm 192.0.2.0/24)",
		"10.0.0.0/7":      "is not on the allowlist",
		"203.0.113.1/32":  "is not on the allowlist",
	} {
		if err := NotAllowed(entries, netip.MustParsePrefix(p)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", p, err, want)
		}
	}
}

// TestBanListFromOlderDaemon: a BanList decodes from the answer of this
// version (bans and damaged records) and from the bare list of bans a
// daemon before it answers (until it is restarted after an upgrade).
func TestBanListFromOlderDaemon(t *testing.T) {
	var now BanList
	if err := now.UnmarshalJSON([]byte(`{"bans":[{"prefix":"192.0.2.1/32"}],"damaged":{"count":1,"keys":["10.2.0.7/32"]}}`)); err != nil ||
		len(now.Bans) != 1 || now.Damaged.Count != 1 || now.Damaged.Keys[0] != "10.2.0.7/32" {
		t.Fatalf("%+v %v", now, err)
	}
	var old BanList
	if err := old.UnmarshalJSON([]byte(` [{"prefix":"192.0.2.1/32"},{"prefix":"2001:db8::/64"}]`)); err != nil ||
		len(old.Bans) != 2 || old.Bans[1].Prefix != netip.MustParsePrefix("2001:db8::/64") || old.Damaged.Count != 0 {
		t.Fatalf("%+v %v", old, err)
	}
}
