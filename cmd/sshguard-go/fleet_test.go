package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sshguard-go/internal/fleet"
	"sshguard-go/internal/roottest"
	"sshguard-go/internal/testkit"
)

// TestFleetInNamespaces: three daemons in three network namespaces, each
// reading its own log and serving its API with its own token on its veth
// address; the aggregator runs in a fourth namespace joined to each by a
// veth pair. Its hosts file also lists an address where nothing listens,
// a host that never answers and one that answers 500: fleet summary lists
// all six, totals the three, and exits 1.
func TestFleetInNamespaces(t *testing.T) {
	roottest.Require(t, "ip", "nft")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	agg, _ := roottest.NetNS(t, "sgfa")
	sh := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
	sh("ip", "-n", agg, "link", "set", "lo", "up")
	dir := t.TempDir()
	now := time.Now().UTC()
	var hosts strings.Builder
	hosts.WriteString("timeout = \"1s\"\n")
	for i := 1; i <= 3; i++ {
		ns, _ := roottest.NetNS(t, fmt.Sprintf("sgf%d", i))
		roottest.Link(t, ns, agg, fmt.Sprintf("10.211.%d.1/24", i), fmt.Sprintf("10.211.%d.2/24", i))
		sh("ip", "-n", ns, "link", "set", "lo", "up")

		// Host i: 3*i failed guesses from one address, one login.
		hd := filepath.Join(dir, fmt.Sprint("host", i))
		os.MkdirAll(hd, 0o755)
		var log strings.Builder
		at := now.Add(-time.Minute).Format("2006-01-02T15:04:05.000000+00:00")
		for g := range 3 * i {
			fmt.Fprintf(&log, "%s web-%d sshd[%d]: Failed password for root from 203.0.113.%d port %d ssh2\n", at, i, 500+g, i, 40000+g)
		}
		fmt.Fprintf(&log, "%s web-%d sshd[900]: Accepted publickey for alice from 198.51.100.%d port 50000 ssh2: ED25519 SHA256:abc\n", at, i, i)
		os.WriteFile(hd+"/auth.log", []byte(log.String()), 0o644)
		tok := fmt.Sprintf("token-of-host-%d-xxxxxxxxxxxxxxxxx", i)
		os.WriteFile(hd+"/token", []byte(tok), 0o600)
		cfg := fmt.Sprintf("[log]\nfile = %q\nfrom_start = true\n[state]\ndb = %q\nsocket = %q\n[alerts]\ntimezone = \"UTC\"\nhostname = \"web-%d\"\n[api]\nlisten = \"10.211.%d.1:9612\"\ntoken_file = %q\n",
			hd+"/auth.log", hd+"/state.db", hd+"/ctl.sock", i, i, hd+"/token")
		os.WriteFile(hd+"/sg.toml", []byte(cfg), 0o600)
		out, _ := os.Create(hd + "/daemon.log")
		t.Cleanup(func() { out.Close() })
		d := selfIn(ns, self, "run", "--config", hd+"/sg.toml")
		d.Stdout, d.Stderr = out, out
		startReady(t, d, hd)
		t.Cleanup(func() { testkit.Stop(t, d, 10*time.Second) })
		fmt.Fprintf(&hosts, "[[host]]\nname = \"web-%d\"\nurl = \"http://10.211.%d.1:9612\"\ntoken_file = %q\n", i, i, hd+"/token")
	}
	// The broken ones, in the aggregator's namespace.
	silent, err := roottest.ListenIn(agg, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	failing, err := roottest.ListenIn(agg, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go http.Serve(failing, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "boom", 500) }))
	defer failing.Close()
	fmt.Fprintf(&hosts, "[[host]]\nname = \"nothing-listens\"\nurl = \"http://10.211.1.1:9999\"\n[[host]]\nname = \"never-answers\"\nurl = \"http://%s\"\n[[host]]\nname = \"answers-500\"\nurl = \"http://%s\"\n",
		silent.Addr(), failing.Addr())
	hostsFile := filepath.Join(dir, "hosts.toml")
	os.WriteFile(hostsFile, []byte(hosts.String()), 0o600)

	date := now.Format(time.DateOnly)
	var s fleet.Summary
	testkit.Eventually(t, 20*time.Second, "three hosts with their counts", func() (bool, string) {
		out, err := selfIn(agg, self, "fleet", "summary", "--hosts", hostsFile, "--date", date, "--json").Output()
		s = fleet.Summary{}
		json.Unmarshal(out, &s)
		return procExit(err) == 1 && s.Answered == 3 && s.Total.Failed == 18 && s.Total.Bans == 2, string(out)
	})
	if len(s.Hosts) != 6 || s.Failed != 3 || s.Total.Logins != 3 {
		t.Fatalf("%+v", s)
	}
	for i, h := range s.Hosts[:3] {
		if !h.OK || h.Day.Failed != int64(3*(i+1)) || h.Day.Logins != 1 || h.Day.Addresses != 2 || h.Day.Connections != int64(3*(i+1)+1) {
			t.Errorf("%s: %+v", h.Name, h.Day)
		}
	}
	for _, h := range s.Hosts[3:] {
		want := map[string]string{"nothing-listens": "connection refused", "never-answers": "no answer within 1s", "answers-500": "500"}[h.Name]
		if h.OK || !strings.Contains(h.Error, want) {
			t.Errorf("%s: ok %v, %q, want %q", h.Name, h.OK, h.Error, want)
		}
	}
	out, err := selfIn(agg, self, "fleet", "summary", "--hosts", hostsFile, "--date", date).CombinedOutput()
	if procExit(err) != 1 || !strings.Contains(string(out), "TOTAL "+date) || !strings.Contains(string(out), "3/6 up") || !strings.Contains(string(out), "3 of 6 hosts did not answer") {
		t.Errorf("table: %v\n%s", err, out)
	}
}

// procExit is the exit status of a finished command (0 for nil, -1 when
// it did not run).
func procExit(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}
