package daemon

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"sshguard-go/internal/control"
	"sshguard-go/internal/testkit"
)

// natsCluster is three NATS servers with JetStream and routes between
// them in the test's process, on loopback ports and store directories
// that survive a restart of any of them.
type natsCluster struct {
	t     testing.TB
	nodes []*natsServer
}

// freePorts are n loopback ports free at the time of asking.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var ports []int
	var ls []net.Listener
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}

// startCluster starts three servers n1, n2 and n3 with routes to each
// other and JetStream on, except on those named in noJetStream.
func startCluster(t testing.TB, noJetStream ...string) *natsCluster {
	t.Helper()
	ports := freePorts(t, 6)
	var routes []string
	for i := range 3 {
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", ports[3+i]))
	}
	c := &natsCluster{t: t}
	for i := range 3 {
		n := &natsServer{t: t, opts: server.Options{ServerName: fmt.Sprintf("n%d", i+1), Host: "127.0.0.1", Port: ports[i],
			JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true,
			Cluster: server.ClusterOpts{Name: "sshguard", Host: "127.0.0.1", Port: ports[3+i]},
			Routes:  server.RoutesFromStr(strings.Join(routes, ","))}}
		c.nodes = append(c.nodes, n)
	}
	for _, n := range c.nodes {
		n.opts.JetStream = !slices.Contains(noJetStream, n.opts.ServerName)
	}
	t.Cleanup(c.stopAll)
	c.startAll()
	return c
}

// startAll starts the servers that are down, together (a JetStream
// cluster needs a majority to elect its leaders), and waits until the
// cluster answers JetStream requests.
func (c *natsCluster) startAll() {
	c.t.Helper()
	for _, n := range c.nodes {
		if n.srv == nil {
			opts := n.opts
			s, err := server.NewServer(&opts)
			if err != nil {
				c.t.Fatal(err)
			}
			go s.Start()
			n.srv = s
		}
	}
	for _, n := range c.nodes {
		if !n.srv.ReadyForConnections(10 * time.Second) {
			c.t.Fatal("NATS server not ready")
		}
	}
	c.waitJetStream()
}

func (c *natsCluster) stopAll() {
	for _, n := range c.nodes {
		n.stop()
	}
}

func (c *natsCluster) urls() string {
	var out []string
	for _, n := range c.nodes {
		out = append(out, n.url())
	}
	return strings.Join(out, ",")
}

// node is the server named name.
func (c *natsCluster) node(name string) *natsServer {
	for _, n := range c.nodes {
		if n.opts.ServerName == name {
			return n
		}
	}
	c.t.Fatalf("no server %q", name)
	return nil
}

// waitJetStream waits until the cluster has a JetStream meta leader.
func (c *natsCluster) waitJetStream() {
	c.t.Helper()
	nc, err := nats.Connect(c.urls())
	if err != nil {
		c.t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	testkit.Eventually(c.t, 30*time.Second, "the JetStream cluster answers", func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := js.AccountInfo(ctx)
		return err == nil, fmt.Sprint(err)
	})
}

// oneReplica makes the stream of bans and the summaries' bucket with one
// replica each.
func (c *natsCluster) oneReplica() {
	c.t.Helper()
	nc, err := nats.Connect(c.urls())
	if err != nil {
		c.t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "SSHGUARD_BANS", Subjects: []string{"sshguard.bans.>"}, Replicas: 1}); err != nil {
		c.t.Fatal(err)
	}
	if _, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "SSHGUARD_SUMMARIES", Replicas: 1}); err != nil {
		c.t.Fatal(err)
	}
}

// streamInfo is the stream's state as the cluster reports it.
func (c *natsCluster) streamInfo(stream string) (*jetstream.StreamInfo, error) {
	nc, err := nats.Connect(c.urls())
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, stream)
	if err != nil {
		return nil, err
	}
	return st.CachedInfo(), nil
}

// clusterHost starts a daemon named name given every server of c, with
// fleet.replicas = 3.
func clusterHost(t testing.TB, c *natsCluster, name string) *harness {
	t.Helper()
	h := newHarness(t)
	writeConfig(t, h.dir, fmt.Sprintf("[detection]\nthreshold = 3\n[audit]\nlog = \"\"\n[fleet]\nnats_url = %q\nname = %q\nreplicas = 3\n", c.urls(), name))
	h.logf("Server listening on 0.0.0.0 port 22.")
	h.start()
	return h
}

// waitReplicas waits until h sees the stream on 3 servers, a leader and
// both other replicas current, and returns the leader.
func (h *harness) waitReplicas() string {
	h.t.Helper()
	var leader string
	testkit.Eventually(h.t, 30*time.Second, "the stream on 3 current replicas", func() (bool, string) {
		st := h.fleet()
		c := st.Cluster
		if c == nil || c.Replicas != 3 || c.Leader == "" || len(c.Peers) != 2 {
			return false, fmt.Sprintf("%+v %+v", st, c)
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

// clusterPrefix is the i-th address of the wave.
func clusterPrefix(i int) netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, byte(i / 250), byte(1 + i%250)}), 32)
}

// banWave bans addresses [from, to) on h by hand, one call each, calling
// mid once half-way; it returns the slowest call.
func (h *harness) banWave(from, to int, mid func()) time.Duration {
	h.t.Helper()
	var slowest time.Duration
	for i := from; i < to; i++ {
		if i == from+(to-from)/2 && mid != nil {
			mid()
		}
		t0 := time.Now()
		if _, err := h.client().Ban(context.Background(), control.BanRequest{Prefix: clusterPrefix(i), For: time.Hour, Reason: "wave"}); err != nil {
			h.t.Fatalf("ban %d: %v", i, err)
		}
		slowest = max(slowest, time.Since(t0))
	}
	return slowest
}

// waitApplied waits until h applied n of from's bans, none twice. A ban
// delivered again (its acknowledgement lost with a server that went: the
// stream delivers at least once) is refused by the gate as in force
// already, and counted so: that is no ban applied twice.
func (h *harness) waitApplied(from string, n int64, timeout time.Duration) {
	h.t.Helper()
	testkit.Eventually(h.t, timeout, fmt.Sprintf("%d bans of %s applied", n, from), func() (bool, string) {
		st := h.fleet()
		got := st.Received[from]
		if got["applied"] > n {
			h.t.Fatalf("a ban applied twice: %+v", got)
		}
		return got["applied"] == n, fmt.Sprintf("%+v, lag %d, server %q, error %q", got, st.Lag, st.Server, st.LastError)
	})
}

// TestFleetCluster: three NATS servers with routes, three hosts given all
// three URLs and fleet.replicas = 3. Host a bans 1,000 addresses (100
// with -short): half while the stream's leader is shut down mid-wave
// (and later started again), half while all three servers are down.
// Every ban reaches every host, none twice (each host applied exactly
// that many, the stream holds each once), and local banning never
// waited: a's second half was all in force while no server was up.
func TestFleetCluster(t *testing.T) {
	total := 1000
	if testing.Short() {
		total = 100
	}
	half := total / 2
	c := startCluster(t)
	c.oneReplica() // made before with one replica: the hosts change it
	a := clusterHost(t, c, "a")
	b := clusterHost(t, c, "b")
	d := clusterHost(t, c, "c")
	leader := a.waitReplicas()
	testkit.Eventually(t, 30*time.Second, "the bucket on 3 replicas", func() (bool, string) {
		info, err := c.streamInfo("KV_SSHGUARD_SUMMARIES")
		if err != nil {
			return false, err.Error()
		}
		return info.Config.Replicas == 3, fmt.Sprintf("%+v", info.Config)
	})
	if p := a.fleet().ReplicasProblem; p != "" {
		t.Errorf("replicas: %s", p)
	}
	for _, h := range []*harness{b, d} {
		testkit.Eventually(t, 10*time.Second, "connected", func() (bool, string) {
			st := h.fleet()
			return st.Server != "" && st.Replicas == 3, fmt.Sprintf("%+v", st)
		})
	}

	// The first half; the stream's leader is shut down in its middle.
	var killed time.Time
	slow1 := a.banWave(0, half, func() {
		killed = time.Now()
		c.node(leader).stop()
	})
	for _, h := range []*harness{b, d} {
		h.waitApplied("a", int64(half), 60*time.Second)
	}
	t.Logf("%d bans, stream leader %s shut down after %d: every host had all %v after the shutdown (slowest local ban %v)",
		half, leader, half/2, time.Since(killed).Round(time.Millisecond), slow1)
	testkit.Eventually(t, 10*time.Second, "another leader", func() (bool, string) {
		nl := a.fleet().Cluster
		return nl != nil && nl.Leader != "" && nl.Leader != leader, fmt.Sprintf("%+v", nl)
	})
	c.startAll() // the old leader back: it catches up
	a.waitReplicas()

	// The second half with every server down: banning goes on, the
	// outbox holds the bans.
	c.stopAll()
	t0 := time.Now()
	slow2 := a.banWave(half, total, nil)
	for i := half; i < total; i++ {
		if !a.fw.has(clusterPrefix(i).String()) {
			t.Fatalf("%v not in a's firewall with the servers down", clusterPrefix(i))
		}
	}
	local := time.Since(t0)
	if st := a.fleet(); st.Pending != half || st.Server != "" {
		t.Fatalf("servers down: %+v", st)
	}
	t.Logf("%d bans in force on a with every server down in %v (slowest %v)", half, local.Round(time.Millisecond), slow2)
	t1 := time.Now()
	c.startAll()
	for _, h := range []*harness{b, d} {
		h.waitApplied("a", int64(total), 60*time.Second)
	}
	t.Logf("all %d on every host %v after the servers' restart", total, time.Since(t1).Round(time.Millisecond))
	testkit.Eventually(t, 10*time.Second, "a's outbox empty", func() (bool, string) {
		st := a.fleet()
		return st.Pending == 0 && st.Published == int64(total), fmt.Sprintf("%+v", st)
	})

	// Each ban in force everywhere, from a, and in the stream once.
	for _, h := range []*harness{b, d} {
		bans := h.bans()
		for i := range total {
			p := clusterPrefix(i)
			if bi, ok := bans[p.String()]; !ok || bi.Origin != "fleet:a" || !h.fw.has(p.String()) {
				t.Fatalf("%v on %s: %+v", p, h.dir, bi)
			}
		}
	}
	testkit.Eventually(t, 10*time.Second, "the stream's count", func() (bool, string) {
		info, err := c.streamInfo("SSHGUARD_BANS")
		if err != nil {
			return false, err.Error()
		}
		return info.State.Msgs == uint64(total), fmt.Sprintf("%+v", info.State)
	})
}

// TestFleetReplicasOnceTheServersAreUp: a host started while only two of
// the cluster's three servers run JetStream asks for 3 replicas, is
// refused (two servers cannot keep three: "no suitable peers"), says so,
// and asks again until the third server has JetStream: the stream and the
// bucket end on 3 replicas and the problem is gone, with no restart of
// the host. (CI met this: three hosts started while the cluster was still
// forming were each refused once and never asked again.)
func TestFleetReplicasOnceTheServersAreUp(t *testing.T) {
	c := startCluster(t, "n3")
	c.oneReplica()
	a := clusterHost(t, c, "a")
	testkit.Eventually(t, 30*time.Second, "the refusal said", func() (bool, string) {
		st := a.fleet()
		return strings.Contains(st.ReplicasProblem, "stream SSHGUARD_BANS keeps 1 replicas") &&
			strings.Contains(st.ReplicasProblem, "bucket SSHGUARD_SUMMARIES keeps 1 replicas"), fmt.Sprintf("%+v %+v", st, st.Cluster)
	})
	n3 := c.node("n3")
	n3.stop()
	n3.opts.JetStream = true
	c.startAll()
	a.waitReplicas()
	testkit.Eventually(t, 30*time.Second, "the bucket on 3 replicas, no problem left", func() (bool, string) {
		info, err := c.streamInfo("KV_SSHGUARD_SUMMARIES")
		if err != nil {
			return false, err.Error()
		}
		p := a.fleet().ReplicasProblem
		return info.Config.Replicas == 3 && p == "", fmt.Sprintf("%+v; problem %q", info.Config, p)
	})
}
