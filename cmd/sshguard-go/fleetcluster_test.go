package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"sshguard-go/internal/control"
	"sshguard-go/internal/roottest"
	"sshguard-go/internal/share"
	"sshguard-go/internal/testkit"
)

// e2eServer is one Debian nats-server of the cluster, in a namespace of
// its own joined to the hub.
type e2eServer struct {
	name, ns, conf, log string
	cmd                 *exec.Cmd
}

func (s *e2eServer) start(t *testing.T) {
	t.Helper()
	log, err := os.OpenFile(s.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	s.cmd = exec.Command("ip", "netns", "exec", s.ns, "nats-server", "-c", s.conf)
	s.cmd.Stdout, s.cmd.Stderr = log, log
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
}

// kill ends the server at once (SIGKILL: no goodbye to the cluster).
func (s *e2eServer) kill() {
	if s.cmd != nil {
		s.cmd.Process.Signal(syscall.SIGKILL)
		s.cmd.Wait()
		s.cmd = nil
	}
}

// TestFleetClusterEndToEnd: three Debian nats-servers (a JetStream
// cluster with routes), each in a namespace of its own, and daemons a and
// b in namespaces of their own with their nftables tables, given all three
// URLs and fleet.replicas = 3; all joined through a hub namespace that
// routes. Host a bans 1,000 addresses by hand: the stream's leader is
// killed (SIGKILL) in the middle of the first 500 and started again; its
// link is then taken down (a partition) in the middle of the next 500 and
// brought up again. Every ban reaches b's kernel set, applied once.
func TestFleetClusterEndToEnd(t *testing.T) {
	roottest.Require(t, "ip", "nft", "nats-server")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	hub, _ := roottest.NetNS(t, "sgch")
	for _, args := range [][]string{{"-n", hub, "link", "set", "lo", "up"}} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v %s", args, err, out)
		}
	}
	if out, err := exec.Command("ip", "netns", "exec", hub, "sysctl", "-qw", "net.ipv4.ip_forward=1").CombinedOutput(); err != nil {
		t.Fatalf("forwarding: %v %s", err, out)
	}
	leaf := func(prefix string, i int) (ns, addr string) {
		ns, _ = roottest.NetNS(t, prefix)
		addr = fmt.Sprintf("10.213.%d.2", i)
		roottest.Link(t, ns, hub, addr+"/24", fmt.Sprintf("10.213.%d.1/24", i))
		for _, args := range [][]string{{"-n", ns, "link", "set", "lo", "up"}, {"-n", ns, "route", "add", "default", "via", fmt.Sprintf("10.213.%d.1", i)}} {
			if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
				t.Fatalf("ip %v: %v %s", args, err, out)
			}
		}
		return ns, addr
	}
	dir := t.TempDir()
	var servers []*e2eServer
	var urls, routes []string
	addrs := map[string]string{}
	for i := 1; i <= 3; i++ {
		ns, addr := leaf("sgcs", i)
		s := &e2eServer{name: fmt.Sprintf("nats-%d", i), ns: ns, conf: fmt.Sprintf("%s/nats-%d.conf", dir, i), log: fmt.Sprintf("%s/nats-%d.log", dir, i)}
		servers = append(servers, s)
		addrs[s.name] = addr
		urls = append(urls, "nats://"+addr+":4222")
		routes = append(routes, "nats-route://"+addr+":6222")
	}
	for i, s := range servers {
		conf := fmt.Sprintf("server_name: %s\nlisten: 0.0.0.0:4222\njetstream { store_dir: %q }\ncluster {\n  name: sshguard\n  listen: 0.0.0.0:6222\n  routes: [\n    %s\n  ]\n}\n",
			s.name, fmt.Sprintf("%s/js-%d", dir, i+1), strings.Join(routes, "\n    "))
		if err := os.WriteFile(s.conf, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		s.start(t)
		t.Cleanup(s.kill)
	}
	byName := func(name string) *e2eServer {
		for _, s := range servers {
			if s.name == name {
				return s
			}
		}
		t.Fatalf("no server %q", name)
		return nil
	}

	type host struct {
		ns, dir string
		c       *control.Client
	}
	hosts := map[string]*host{}
	for i, name := range []string{"a", "b"} {
		ns, _ := leaf("sgc"+name, 10+i)
		hd := t.TempDir()
		conf := fmt.Sprintf("[ban]\nallow = []\n[audit]\nlog = \"\"\n[fleet]\nnats_url = %q\nname = %q\nreplicas = 3\n", strings.Join(urls, ","), name)
		os.WriteFile(hd+"/sg.toml", []byte(conf), 0o600)
		os.WriteFile(hd+"/auth.log", nil, 0o644)
		log, _ := os.Create(hd + "/daemon.log")
		t.Cleanup(func() { log.Close() })
		d := selfIn(ns, self, "run", "--config", hd+"/sg.toml", "--log", hd+"/auth.log", "--db", hd+"/state.db", "--socket", hd+"/ctl.sock")
		d.Stdout, d.Stderr = log, log
		startReady(t, d, hd)
		t.Cleanup(func() { testkit.Stop(t, d, 10*time.Second) })
		var c *control.Client
		testkit.Eventually(t, 10*time.Second, "control socket", func() (bool, string) {
			var err error
			c, err = control.Dial(hd + "/ctl.sock")
			return err == nil, fmt.Sprint(err)
		})
		hosts[name] = &host{ns: ns, dir: hd, c: c}
	}
	a, b := hosts["a"], hosts["b"]
	status := func(h *host) share.Status {
		raw, err := h.c.Fleet(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		var st share.Status
		json.Unmarshal(raw, &st)
		return st
	}
	logs := func() string {
		var out strings.Builder
		for _, h := range hosts {
			l, _ := os.ReadFile(h.dir + "/daemon.log")
			fmt.Fprintf(&out, "--- %s\n%s", h.dir, l)
		}
		return out.String()
	}
	// waitReplicas waits for the stream on 3 current replicas and returns
	// its leader.
	waitReplicas := func() string {
		var leader string
		testkit.Eventually(t, 60*time.Second, "the stream on 3 current replicas", func() (bool, string) {
			c := status(a).Cluster
			if c == nil || c.Replicas != 3 || c.Leader == "" || len(c.Peers) != 2 {
				return false, fmt.Sprintf("%+v", c)
			}
			for _, p := range c.Peers {
				if !p.Current || p.Offline {
					return false, fmt.Sprintf("%+v", c)
				}
			}
			leader = c.Leader
			return true, ""
		})
		return leader
	}
	prefix := func(i int) netip.Prefix {
		return netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, byte(i / 250), byte(1 + i%250)}), 32)
	}
	wave := func(from, to int, mid func()) {
		for i := from; i < to; i++ {
			if i == from+(to-from)/2 {
				mid()
			}
			if _, err := a.c.Ban(context.Background(), control.BanRequest{Prefix: prefix(i), For: time.Hour, Reason: "wave"}); err != nil {
				t.Fatalf("ban %d: %v", i, err)
			}
		}
	}
	waitApplied := func(n int64) {
		testkit.Eventually(t, 120*time.Second, fmt.Sprintf("b applied %d", n), func() (bool, string) {
			// A ban delivered again (its acknowledgement lost with a
			// server killed) is refused by the gate as "already": applied
			// once all the same. More applied than made is a ban twice.
			got := status(b).Received["a"]
			if got["applied"] > n {
				t.Fatalf("applied twice: %+v", got)
			}
			return got["applied"] == n, fmt.Sprintf("%+v %+v", status(b), status(a))
		})
	}

	const total = 1000
	leader := waitReplicas()
	var t0 time.Time
	wave(0, total/2, func() { t0 = time.Now(); byName(leader).kill() })
	waitApplied(total / 2)
	t.Logf("%d bans, the stream leader %s killed after %d: all on b %v after the kill", total/2, leader, total/4, time.Since(t0).Round(time.Millisecond))
	byName(leader).start(t)
	leader = waitReplicas()

	// A partition: the leader's link down in the middle of the wave.
	s := byName(leader)
	out, err := exec.Command("ip", "-n", s.ns, "-o", "link", "show", "type", "veth").Output()
	_, dev, _ := strings.Cut(strings.TrimSpace(string(out)), ": ")
	dev, _, _ = strings.Cut(dev, "@")
	if err != nil || dev == "" {
		t.Fatalf("veth of %s: %v %q", s.ns, err, out)
	}
	wave(total/2, total, func() {
		t0 = time.Now()
		if out, err := exec.Command("ip", "-n", s.ns, "link", "set", dev, "down").CombinedOutput(); err != nil {
			t.Fatalf("partition: %v %s", err, out)
		}
	})
	waitApplied(total)
	t.Logf("%d bans, the stream leader %s cut off after %d: all on b %v after the cut", total/2, leader, total*3/4, time.Since(t0).Round(time.Millisecond))
	if out, err := exec.Command("ip", "-n", s.ns, "link", "set", dev, "up").CombinedOutput(); err != nil {
		t.Fatalf("heal: %v %s", err, out)
	}
	// The server cut off catching up is the cluster's own business: said,
	// not judged.
	t1 := time.Now()
	for time.Since(t1) < 30*time.Second {
		c := status(a).Cluster
		if c != nil && len(c.Peers) == 2 && c.Peers[0].Current && c.Peers[1].Current {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("healed for %v: %+v", time.Since(t1).Round(time.Second), status(a).Cluster)

	// Every ban in b's kernel set.
	set, _ := exec.Command("ip", "netns", "exec", b.ns, "nft", "list", "set", "inet", "sshguard-go", "ip4_32").CombinedOutput()
	for i := range total {
		if !strings.Contains(string(set), prefix(i).Addr().String()+" ") && !strings.Contains(string(set), prefix(i).Addr().String()+",") {
			t.Fatalf("%v not in b's kernel set:\n%s\n%s", prefix(i), set, logs())
		}
	}
	if st := status(a); st.Pending != 0 || st.Published != total {
		t.Errorf("a: %+v", st)
	}
}
