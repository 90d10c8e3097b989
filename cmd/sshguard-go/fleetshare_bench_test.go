package main

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"testing"
	"time"

	"sshguard-go/internal/ban"
	"sshguard-go/internal/control"
	"sshguard-go/internal/roottest"
	"sshguard-go/internal/testkit"
)

// BenchmarkFleetKernelLatency: Debian's nats-server in a hub namespace,
// daemons a and b (this binary) in namespaces of their own with their
// nftables tables; a ban by hand on a (its control socket) until the
// element is in b's kernel set (read with netlink in b's namespace), over
// 200 bans: p50 and p99. The goal is p99 under 50 ms (measured again,
// with other addresses, when missed: see testkit.Goal).
func BenchmarkFleetKernelLatency(b *testing.B) {
	roottest.Require(b, "ip", "nft", "nats-server")
	self, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		hub, _ := roottest.NetNS(b, "sgbh")
		run := func(args ...string) {
			if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
				b.Fatalf("%v: %v %s", args, err, out)
			}
		}
		run("ip", "-n", hub, "link", "set", "lo", "up")
		nats := exec.Command("ip", "netns", "exec", hub, "nats-server", "-js", "-sd", b.TempDir(), "-a", "0.0.0.0", "-p", "4222")
		if err := nats.Start(); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { testkit.Stop(b, nats, 10*time.Second) })
		var socks []string
		var bFd *os.File
		for i, name := range []string{"a", "b"} {
			ns, fd := roottest.NetNS(b, "sgb"+name)
			roottest.Link(b, ns, hub, fmt.Sprintf("10.213.%d.2/24", i), fmt.Sprintf("10.213.%d.1/24", i))
			dir := b.TempDir()
			os.WriteFile(dir+"/sg.toml", []byte(fmt.Sprintf("[audit]\nlog = \"\"\n[fleet]\nnats_url = \"nats://10.213.%d.1:4222\"\nname = %q\n", i, name)), 0o600)
			os.WriteFile(dir+"/auth.log", nil, 0o644)
			d := selfIn(ns, self, "run", "--config", dir+"/sg.toml", "--log", dir+"/auth.log", "--db", dir+"/state.db", "--socket", dir+"/ctl.sock")
			startReady(b, d, dir)
			b.Cleanup(func() { testkit.Stop(b, d, 10*time.Second) })
			waitControl(b, dir)
			socks = append(socks, dir+"/ctl.sock")
			bFd = fd
		}
		ca, err := control.Dial(socks[0])
		if err != nil {
			b.Fatal(err)
		}
		set, err := ban.NewNFTSet(ban.NFTConfig{NetNSFd: int(bFd.Fd())})
		if err != nil {
			b.Fatal(err)
		}
		in := func(p netip.Prefix) bool {
			els, err := set.List()
			if err != nil {
				b.Fatal(err)
			}
			return slices.ContainsFunc(els, func(e ban.Element) bool { return e.Prefix == p })
		}
		// The first ban waits for both to be connected.
		first := netip.MustParsePrefix("198.51.100.1/32")
		ca.Ban(context.Background(), control.BanRequest{Prefix: first, For: time.Hour})
		testkit.Eventually(b, 20*time.Second, "the first shared ban", func() (bool, string) { return in(first), "" })
		tries := 0
		testkit.Goal(b, 3, func() (bool, string) {
			lat := testkit.BanLatency(b, 200*tries, 200, 0, func(p netip.Prefix) error { // new addresses each time
				_, err := ca.Ban(context.Background(), control.BanRequest{Prefix: p, For: time.Hour})
				return err
			}, in)
			tries++
			return testkit.LatencyGoal(b, lat, 50*time.Millisecond)
		})
	}
}
