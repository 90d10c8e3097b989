package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"sshguard-go/internal/control"
	"sshguard-go/internal/fleet"
	"sshguard-go/internal/share"
	"sshguard-go/internal/testkit"
)

// natsServer is a real NATS server with JetStream in the test's process,
// on a port and a store directory that survive a restart.
type natsServer struct {
	t    testing.TB
	opts server.Options
	srv  *server.Server
}

func startNATS(t testing.TB) *natsServer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	n := &natsServer{t: t, opts: server.Options{Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true}}
	n.start()
	t.Cleanup(n.stop)
	return n
}

func (n *natsServer) start() {
	n.t.Helper()
	opts := n.opts
	s, err := server.NewServer(&opts)
	if err != nil {
		n.t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		n.t.Fatal("NATS server not ready")
	}
	n.srv = s
}

func (n *natsServer) stop() {
	if n.srv != nil {
		n.srv.Shutdown()
		n.srv.WaitForShutdown()
		n.srv = nil
	}
}

func (n *natsServer) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", n.opts.Port) }

// fleetHost starts a daemon named name in the fleet of n, with extra
// configuration.
func fleetHost(t testing.TB, n *natsServer, name, extra string, opts ...Option) *harness {
	t.Helper()
	h := newHarness(t)
	h.opts = append(h.opts, opts...)
	writeConfig(t, h.dir, fmt.Sprintf("[detection]\nthreshold = 3\n[audit]\nlog = \"\"\n%s\n[fleet]\nnats_url = %q\nname = %q\n", extra, n.url(), name))
	h.logf("Server listening on 0.0.0.0 port 22.")
	h.start()
	return h
}

// bans is h's bans in force by prefix.
func (h *harness) bans() map[string]control.BanInfo {
	h.t.Helper()
	list, err := h.client().Bans(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	out := map[string]control.BanInfo{}
	for _, b := range list.Bans {
		out[b.Prefix.String()] = b
	}
	return out
}

// waitBan waits until h has (or has not) a ban of prefix.
func (h *harness) waitBan(prefix string, want bool) control.BanInfo {
	h.t.Helper()
	var b control.BanInfo
	testkit.Eventually(h.t, 10*time.Second, fmt.Sprintf("ban of %s %v", prefix, want), func() (bool, string) {
		var ok bool
		b, ok = h.bans()[prefix]
		st := h.fleet()
		return ok == want, fmt.Sprintf("%+v", st)
	})
	return b
}

func (h *harness) fleet() share.Status {
	raw, err := h.client().Fleet(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	var st share.Status
	json.Unmarshal(raw, &st)
	return st
}

func (h *harness) attack(ip string) {
	for i := range 3 {
		h.logf("Failed password for root from %s port %d ssh2", ip, 40000+i)
	}
}

// TestFleetShares: a ban on one host appears on the others (origin
// fleet:a, the remaining time); unban propagates; an allowlist refuses it
// on its host only; a /8 from a remote host is refused; with the NATS
// server down banning goes on and what was queued is published once it is
// back; a host that joins later replays what is in force; nothing is
// applied twice.
func TestFleetShares(t *testing.T) {
	n := startNATS(t)
	a := fleetHost(t, n, "a", "")
	b := fleetHost(t, n, "b", "[ban]\nallow = [\"203.0.113.60\"]")
	c := fleetHost(t, n, "c", "")

	a.attack("203.0.113.50")
	ab := a.waitBan("203.0.113.50/32", true)
	for _, h := range []*harness{b, c} {
		got := h.waitBan("203.0.113.50/32", true)
		if got.Origin != "fleet:a" || !strings.HasPrefix(got.Reason, "fleet: a: ") || got.Expires.Sub(ab.Expires).Abs() > 2*time.Second {
			t.Errorf("shared ban %+v, a's %+v", got, ab)
		}
	}
	if bb := b.bans()["203.0.113.50/32"]; a.bans()["203.0.113.50/32"].Origin != "detected" || bb.Origin != "fleet:a" {
		t.Errorf("origins: a %q, b %q", a.bans()["203.0.113.50/32"].Origin, bb.Origin)
	}

	// Allowlisted on b: c bans it, b refuses and counts it.
	a.attack("203.0.113.60")
	c.waitBan("203.0.113.60/32", true)
	testkit.Eventually(t, 10*time.Second, "b refuses the allowlisted one", func() (bool, string) {
		st := b.fleet()
		return st.Received["a"]["refused_allowlist"] == 1, fmt.Sprintf("%+v", st)
	})
	if _, ok := b.bans()["203.0.113.60/32"]; ok {
		t.Fatal("b banned an address of its allowlist")
	}

	// A /8 by hand on a: refused elsewhere.
	if _, err := a.client().Ban(context.Background(), control.BanRequest{Prefix: netip.MustParsePrefix("10.0.0.0/8"), For: time.Hour, Force: true}); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, "c refuses the /8", func() (bool, string) {
		st := c.fleet()
		return st.Received["a"]["refused_wide"] == 1, fmt.Sprintf("%+v", st)
	})

	// Unban on a: lifted on c (and on b, which had it too).
	if _, err := a.client().Unban(context.Background(), netip.MustParsePrefix("203.0.113.50/32")); err != nil {
		t.Fatal(err)
	}
	c.waitBan("203.0.113.50/32", false)
	b.waitBan("203.0.113.50/32", false)

	// The NATS server goes down: a bans on; its bans wait and go out later.
	n.stop()
	a.attack("203.0.113.70")
	a.waitBan("203.0.113.70/32", true)
	testkit.Eventually(t, 5*time.Second, "a's ban queued", func() (bool, string) {
		st := a.fleet()
		return st.Pending >= 1 && st.Server == "", fmt.Sprintf("%+v", st)
	})
	n.start()
	c.waitBan("203.0.113.70/32", true)
	b.waitBan("203.0.113.70/32", true)

	// c is away while a bans, and catches up when it is back.
	c.halt()
	a.attack("203.0.113.80")
	a.waitBan("203.0.113.80/32", true)
	c.start()
	c.waitBan("203.0.113.80/32", true)

	// d joins: it replays the stream and ends with what is in force.
	d := fleetHost(t, n, "d", "")
	d.waitBan("203.0.113.70/32", true)
	d.waitBan("203.0.113.60/32", true)
	testkit.Eventually(t, 10*time.Second, "d replayed all", func() (bool, string) {
		st := d.fleet()
		return st.Lag == 0 && st.Received["a"]["refused_wide"] == 1, fmt.Sprintf("%+v", st)
	})
	if _, ok := d.bans()["203.0.113.50/32"]; ok {
		t.Error("d applied a ban that was lifted before it joined")
	}
	// Nothing twice: c applied a's bans once each (its counts restart
	// with it: .80 since; the database has .60, .70 and .80 from a).
	if st := c.fleet(); st.Received["a"]["applied"] != 1 || st.Published != 0 {
		t.Errorf("c: %+v", st)
	}
	var fromA int
	for _, bi := range c.bans() {
		if bi.Origin == "fleet:a" {
			fromA++
		}
	}
	if fromA != 3 {
		t.Errorf("c has %d bans from a, want 3 (.60, .70, .80)", fromA)
	}
	if st := a.fleet(); st.Published != 6 { // .50, .60, the /8, the unban of .50, .70, .80
		t.Errorf("a published %d", st.Published)
	}
}

// TestFleetwideCounting: three hosts, a slow attacker making 2 attempts on
// each (below every host's threshold of 3): with count_fleetwide and a
// fleet threshold of 6 it is banned on all three; without, on none.
func TestFleetwideCounting(t *testing.T) {
	for _, on := range []bool{false, true} {
		t.Run(fmt.Sprint("count_fleetwide=", on), func(t *testing.T) {
			n := startNATS(t)
			extra := ""
			if on {
				extra = "count_fleetwide = true\nfleet_threshold = 6\nfleet_window = \"1h\"\n"
			}
			var hosts []*harness
			for _, name := range []string{"a", "b", "c"} {
				h := newHarness(t)
				writeConfig(t, h.dir, fmt.Sprintf("[detection]\nthreshold = 3\n[audit]\nlog = \"\"\n[fleet]\nnats_url = %q\nname = %q\n%s",
					n.url(), name, extra))
				h.logf("Server listening on 0.0.0.0 port 22.")
				h.start()
				hosts = append(hosts, h)
			}
			if on { // every host subscribed to the others' attempts
				testkit.Eventually(t, 10*time.Second, "connected", func() (bool, string) {
					for _, h := range hosts {
						if st := h.fleet(); st.Server == "" || st.Fleetwide == nil || !st.Fleetwide.Listening {
							return false, fmt.Sprintf("%+v", st)
						}
					}
					return true, ""
				})
			}
			for i, h := range hosts {
				for j := range 2 {
					h.logf("Failed password for root from 198.51.100.99 port %d ssh2", 41000+10*i+j)
				}
			}
			if !on {
				for _, h := range hosts { // each has read and judged its lines
					testkit.Eventually(t, 10*time.Second, "the attempts read", func() (bool, string) {
						return h.d.guard.Tracked() == 1, fmt.Sprint(h.d.guard.Tracked())
					})
				}
				for _, h := range hosts {
					if _, ok := h.bans()["198.51.100.99/32"]; ok {
						t.Fatal("banned with fleet-wide counting off")
					}
				}
				return
			}
			for _, h := range hosts {
				h.waitBan("198.51.100.99/32", true)
			}
			// Banned once, by one host, shared to the others.
			origins := map[string]int{}
			for _, h := range hosts {
				origins[h.bans()["198.51.100.99/32"].Origin]++
			}
			if origins["fleetwide"] < 1 {
				t.Errorf("origins %v", origins)
			}
		})
	}
}

// TestFleetCredentials: a server that asks for a token: a host with the
// wrong one is not connected (and says why) yet bans locally; those with
// the right one share.
func TestFleetCredentials(t *testing.T) {
	n := startNATS(t)
	n.stop()
	n.opts.Authorization = "s3cret-fleet-token"
	n.start()
	dir := t.TempDir()
	good, bad := filepath.Join(dir, "good"), filepath.Join(dir, "bad")
	os.WriteFile(good, []byte("s3cret-fleet-token\n"), 0o600)
	os.WriteFile(bad, []byte("guess\n"), 0o600)
	// fleetHost's [fleet] table comes last: the token goes after it.
	withToken := func(name, file string) *harness {
		h := newHarness(t)
		writeConfig(t, h.dir, fmt.Sprintf("[detection]\nthreshold = 3\n[audit]\nlog = \"\"\n[fleet]\nnats_url = %q\nname = %q\ntoken_file = %q\n",
			n.url(), name, file))
		h.logf("Server listening on 0.0.0.0 port 22.")
		h.start()
		return h
	}
	a, b, x := withToken("a", good), withToken("b", good), withToken("x", bad)
	x.attack("203.0.113.90")
	x.waitBan("203.0.113.90/32", true) // banning goes on without the fleet
	testkit.Eventually(t, 10*time.Second, "x says why it is not connected", func() (bool, string) {
		st := x.fleet()
		return st.Server == "" && st.Pending == 1, fmt.Sprintf("%+v", st)
	})
	a.attack("203.0.113.91")
	b.waitBan("203.0.113.91/32", true)
	if _, ok := b.bans()["203.0.113.90/32"]; ok {
		t.Error("a host with a wrong token shared a ban")
	}
}

// TestFleetSummariesKV: hosts sharing bans put their summaries in the
// key-value bucket; the fleet view built from it (fleet serve --nats)
// lists them with their day, asking no host.
func TestFleetSummariesKV(t *testing.T) {
	every := func(d *Daemon) { d.summaryEvery = 200 * time.Millisecond }
	n := startNATS(t)
	a := fleetHost(t, n, "a", "", every)
	fleetHost(t, n, "b", "", every)
	a.attack("203.0.113.40")
	src, err := fleet.WatchSummaries(t.Context(), []string{n.url()})
	if err != nil {
		t.Fatal(err)
	}
	fl := fleet.NewView(src, time.Second)
	today := time.Now().Format(time.DateOnly)
	var s *fleet.Summary
	testkit.Eventually(t, 10*time.Second, "both hosts in the view", func() (bool, string) {
		s, _ = fl.Summary(t.Context(), today)
		b, _ := json.Marshal(s)
		return s.Answered == 2 && s.Total.Failed >= 3, string(b)
	})
	if s.Hosts[0].Name != "a" || s.Hosts[0].Day.Failed < 3 || s.Hosts[1].Name != "b" || len(s.Days) != fleet.Days {
		t.Errorf("%+v", s)
	}
}
