package main

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"sshguard-go/internal/roottest"
	"sshguard-go/internal/testkit"
)

// TestFleetSharingEndToEnd: Debian's nats-server in a hub namespace, the
// lab's real sshd and rsyslog with daemon a in the server namespace, and
// daemons b and c in namespaces of their own, each joined to the hub by a
// veth pair and each with its own nftables table. A real ssh client
// guesses wrong passwords at a's sshd: a bans it, and the attacker's
// address appears in b's and c's kernel sets; its unban on a lifts it
// there too.
func TestFleetSharingEndToEnd(t *testing.T) {
	l := newLab(t, "sgn", false, "nats-server")
	hub, _ := roottest.NetNS(t, "sgnh")
	l.sh("ip", "-n", hub, "link", "set", "lo", "up")
	join := func(ns string, i int) string { // a veth pair ns <-> hub; the hub's address
		roottest.Link(t, ns, hub, fmt.Sprintf("10.212.%d.2/24", i), fmt.Sprintf("10.212.%d.1/24", i))
		return fmt.Sprintf("nats://10.212.%d.1:4222", i)
	}
	nats := exec.Command("ip", "netns", "exec", hub, "nats-server", "-js", "-sd", t.TempDir(), "-a", "0.0.0.0", "-p", "4222")
	natsLog, _ := os.Create(l.dir + "/nats.log")
	defer natsLog.Close()
	nats.Stdout, nats.Stderr = natsLog, natsLog
	if err := nats.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { testkit.Stop(t, nats, 10*time.Second) })

	fleetConf := func(url, name string) string {
		return fmt.Sprintf("[ban]\nallow = []\n[audit]\nlog = \"\"\n[fleet]\nnats_url = %q\nname = %q\n", url, name)
	}
	os.WriteFile(l.dir+"/sshguard-go.toml", []byte(fleetConf(join(l.srv, 1), "a")), 0o600)
	l.start()
	set := func(ns string) string {
		out, _ := exec.Command("ip", "netns", "exec", ns, "nft", "list", "set", "inet", "sshguard-go", "ip4_32").CombinedOutput()
		return string(out)
	}
	var others []string
	for i, host := range []string{"b", "c"} {
		ns, _ := roottest.NetNS(t, "sgn"+host)
		url := join(ns, i+2)
		dir := t.TempDir()
		os.WriteFile(dir+"/sg.toml", []byte(fleetConf(url, host)), 0o600)
		os.WriteFile(dir+"/auth.log", nil, 0o644)
		log, _ := os.Create(dir + "/daemon.log")
		t.Cleanup(func() { log.Close() })
		d := selfIn(ns, l.self, "run", "--config", dir+"/sg.toml", "--log", dir+"/auth.log", "--db", dir+"/state.db", "--socket", dir+"/ctl.sock")
		d.Stdout, d.Stderr = log, log
		startReady(t, d, dir)
		t.Cleanup(func() { testkit.Stop(t, d, 10*time.Second) })
		others = append(others, ns)
	}

	const server, attacker = "10.200.9.1", "10.200.9.2"
	for _, u := range []string{"admin", "oracle", "test", "guest", "root"} {
		l.guess(server, u, attacker)
	}
	l.waitBan(attacker+"/32", true)
	for _, ns := range others {
		testkit.Eventually(t, 15*time.Second, "the attacker in "+ns+"'s kernel set", func() (bool, string) {
			s := set(ns)
			return strings.Contains(s, attacker), s
		})
	}
	if out, err := l.sg("unban", attacker); err != nil {
		t.Fatalf("unban: %v %s", err, out)
	}
	for _, ns := range others {
		testkit.Eventually(t, 15*time.Second, "the attacker out of "+ns+"'s kernel set", func() (bool, string) {
			s := set(ns)
			return !strings.Contains(s, attacker), s
		})
	}
}
