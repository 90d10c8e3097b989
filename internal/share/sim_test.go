package share

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"sshguard-go/internal/store"
	"sshguard-go/internal/testkit"
)

// The fleet at scale, simulated in one process: n hosts, each a real
// Sharer with its own NATS connection to one embedded server, its real
// Counter, and an applier standing for its gate and firewall that notes
// what reaches it.
//
// BenchmarkFleetScale measures, per fleet size:
//   - ban fan-out: bans published one after the other by one host (its
//     outbox in a real store), the time from the outbox to every other
//     host's applier, p50 and p99;
//   - a wave of 100,000 addresses spread over the fleet (each on two
//     hosts, one attempt of weight 2 on each: the fleet's threshold of 4
//     from a quorum of 2) with fleet-wide counting all-to-all and
//     partitioned (16 partitions): messages and payload bytes received
//     per host (mean and max, nats.Conn statistics, heartbeats and
//     bans included), the fleet-wide bans decided, the wall time and the
//     process's CPU time (server and all hosts) of the wave.
//
// Under -benchtime 1x (make bench-smoke) only 10 hosts run; with
// SSHGUARD_FLEET_SCALE=1 (make bench-fleet-scale) 10, 100 and 1,000
// (or the sizes it lists: SSHGUARD_FLEET_SCALE=100,1000), and a Markdown
// table is printed, each size's rows also as soon as they are measured.
// SSHGUARD_FLEET_FANOUT_ONLY=1 runs the fan-out alone (counting off),
// SSHGUARD_FLEET_WAVE_ONLY=1 the partitioned wave alone.

const simWave = 100000

func BenchmarkFleetScale(b *testing.B) {
	sizes := []int{10}
	switch e := os.Getenv("SSHGUARD_FLEET_SCALE"); e {
	case "":
	case "1":
		sizes = []int{10, 100, 1000}
	default: // sizes, comma-separated
		sizes = nil
		for f := range strings.SplitSeq(e, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 2 || n > 5000 {
				b.Fatalf("SSHGUARD_FLEET_SCALE=%q: want 1, or sizes from 2 to 5000, comma-separated", e)
			}
			sizes = append(sizes, n)
		}
	}
	var rows []string
	for _, n := range sizes {
		b.Run(fmt.Sprintf("hosts=%d", n), func(b *testing.B) {
			for range b.N {
				row := simFleetSize(b, n)
				fmt.Fprint(os.Stderr, row) // at once: the full table takes long
				rows = append(rows, row)
			}
		})
	}
	fmt.Println("\n| hosts | ban fan-out p50 / p99 | counting | msgs received per host, mean / max | bytes received per host, mean / max | fleet-wide decisions | wave time | CPU (whole process) |")
	fmt.Println("|---|---|---|---|---|---|---|---|")
	for _, r := range rows {
		fmt.Print(r)
	}
}

// simFleetSize runs both fleets of n hosts and returns their table rows.
func simFleetSize(b *testing.B, n int) string {
	srv := simServer(b)
	defer func() { srv.Shutdown(); srv.WaitForShutdown() }()
	url := srv.ClientURL()
	if os.Getenv("SSHGUARD_FLEET_FANOUT_ONLY") != "" { // hosts sharing bans, not counting
		f := startSimFleet(b, url, n, false, false)
		p50, p99 := f.fanOut(b, 20)
		f.stop()
		b.ReportMetric(float64(p99.Milliseconds()), "fanout-p99-ms")
		return fmt.Sprintf("| %d | %v / %v | (fan-out only, counting off) | | | | | |\n", n, p50.Round(time.Millisecond), p99.Round(time.Millisecond))
	}
	if os.Getenv("SSHGUARD_FLEET_WAVE_ONLY") != "" { // the partitioned wave alone, on a fleet just started
		f := startSimFleet(b, url, n, false, true)
		part := f.wave(b)
		f.stop()
		return fmt.Sprintf("| %d | | partitioned (16), wave alone | %s |\n", n, part.row())
	}
	f := startSimFleet(b, url, n, false, true)
	p50, p99 := f.fanOut(b, 20)
	part := f.wave(b)
	f.stop()
	a := startSimFleet(b, url, n, true, true)
	all := a.wave(b)
	a.stop()
	fan := fmt.Sprintf("%v / %v", p50.Round(time.Millisecond), p99.Round(time.Millisecond))
	b.ReportMetric(float64(p99.Milliseconds()), "fanout-p99-ms")
	b.ReportMetric(part.bytesMean, "part-B/host")
	b.ReportMetric(all.bytesMean, "all-B/host")
	return fmt.Sprintf("| %d | %s | all-to-all | %s |\n| %d | | partitioned (16) | %s |\n", n, fan, all.row(), n, part.row())
}

func simServer(b *testing.B) *server.Server {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: b.TempDir(), NoLog: true, NoSigs: true,
		MaxPending: 256 << 20})
	if err != nil {
		b.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		b.Fatal("NATS server not ready")
	}
	return srv
}

// simApplier is a host's gate and firewall: it notes when each ban
// reached it and counts the fleet-wide decisions.
type simApplier struct {
	f       *simFleet
	decided atomic.Int64
}

func (a *simApplier) BanRemote(_ context.Context, bans []Remote) ([]string, []error) {
	now := time.Now()
	for _, r := range bans {
		a.f.arrived(r.Prefix, now)
	}
	return make([]string, len(bans)), make([]error, len(bans))
}

func (a *simApplier) UnbanRemote(context.Context, netip.Prefix, string) (bool, error) {
	return true, nil
}

func (a *simApplier) BanHere(context.Context, netip.Prefix, string) (string, error) {
	a.decided.Add(1)
	return "", nil
}

type simFleet struct {
	hosts    []*Sharer // the first real hosts
	apps     []*simApplier
	counters []*Counter   // every host's
	conns    []*nats.Conn // every host's
	real     int
	pubDB    *store.DB
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	allToAll bool

	mu      sync.Mutex
	sent    map[netip.Prefix]time.Time
	lat     []time.Duration
	reached map[netip.Prefix]int
}

func (f *simFleet) arrived(p netip.Prefix, at time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if t, ok := f.sent[p]; ok {
		f.lat = append(f.lat, at.Sub(t))
		f.reached[p]++
	}
}

// startSimFleet starts n hosts against url and waits until each counts.
func startSimFleet(b *testing.B, url string, n int, allToAll, count bool) *simFleet {
	dir := b.TempDir()
	pubDB, err := store.Open(filepath.Join(dir, "host-0.db"), time.Second)
	if err != nil {
		b.Fatal(err)
	}
	shared, err := store.Open(filepath.Join(dir, "others.db"), time.Second) // an outbox that stays empty
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	f := &simFleet{pubDB: pubDB, cancel: cancel, allToAll: allToAll, sent: map[netip.Prefix]time.Time{}, reached: map[netip.Prefix]int{}}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	// All-to-all at more than 100 hosts: 10 hosts count for real; the
	// others publish their attempts from a real Counter and subscribe to
	// the fleet's attempts without decoding them (one process cannot hold
	// 1,000 full fleet windows of the wave): what they receive is the same.
	f.real = n
	if allToAll && n > 100 {
		f.real = 10
	}
	for i := range n {
		db := shared
		if i == 0 {
			db = pubDB
		}
		name := fmt.Sprintf("h%04d", i)
		c := NewCounter(CountConfig{Name: name, Threshold: 4, Window: time.Hour, Quorum: 2, HostCap: 3,
			MaxTracked: 4 * simWave, Partitions: DefaultPartitions, AllToAll: allToAll})
		f.counters = append(f.counters, c)
		if i >= f.real {
			continue
		}
		if !count {
			c = nil
		}
		app := &simApplier{f: f}
		s := NewSharer(ShareConfig{URLs: []string{url}, Name: name, Stream: "SIM", Share: true, Apply: true, MaxAge: time.Hour,
			Instance: name}, db, app, log)
		s.Counter = c
		f.hosts, f.apps = append(f.hosts, s), append(f.apps, app)
	}
	// Started 25 at a time, so that the server's API is not flooded.
	for i, s := range f.hosts {
		f.wg.Go(func() { s.Run(ctx) })
		if i%25 == 24 || i == len(f.hosts)-1 {
			f.waitCounting(b, f.hosts[max(0, i-24):i+1])
		}
	}
	for _, s := range f.hosts {
		f.conns = append(f.conns, simConn(s))
	}
	for _, c := range f.counters[f.real:] {
		nc, err := nats.Connect(url)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := nc.Subscribe(attemptsPrefix+">", func(*nats.Msg) {}); err != nil {
			b.Fatal(err)
		}
		f.conns = append(f.conns, nc)
		f.wg.Go(func() {
			defer nc.Close()
			tick := time.NewTicker(countEvery)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
					c.flush(nc)
				}
			}
		})
	}
	// Every host's consumer of bans in place.
	js, _ := jetstream.New(simConn(f.hosts[0]))
	testkit.Eventually(b, 5*time.Minute, "consumers of bans", func() (bool, string) {
		st, err := js.Stream(context.Background(), "SIM")
		if err != nil {
			return false, err.Error()
		}
		info, err := st.Info(context.Background())
		if err != nil {
			return false, err.Error()
		}
		return info.State.Consumers >= f.real, fmt.Sprint(info.State.Consumers) // the fleet before may have left its own
	})
	b.Cleanup(func() { pubDB.Close(); shared.Close() })
	return f
}

func simConn(s *Sharer) *nats.Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nc
}

func (f *simFleet) waitCounting(b *testing.B, hosts []*Sharer) {
	testkit.Eventually(b, 2*time.Minute, "hosts counting", func() (bool, string) {
		for _, s := range hosts {
			if s.Counter == nil {
				if simConn(s) == nil || !simConn(s).IsConnected() {
					return false, s.cfg.Name
				}
				continue
			}
			st := s.Counter.Status()
			if !st.Listening {
				return false, s.cfg.Name + " " + s.Status().LastError
			}
			if want := "partitioned"; !f.allToAll && !strings.HasPrefix(st.Mode, want) {
				b.Fatalf("%s: mode %q", s.cfg.Name, st.Mode)
			}
		}
		return true, ""
	})
}

// fanOut publishes m bans from host 0, one after the other, each once
// every other host has the one before, and returns the p50 and p99 of the
// time from the outbox to the others' appliers.
func (f *simFleet) fanOut(b *testing.B, m int) (p50, p99 time.Duration) {
	n := len(f.hosts)
	for i := range m + 1 { // the first, not measured, warms the consumers
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}), 32)
		now := time.Now()
		ban := &store.Ban{Prefix: p, Start: now, Expires: now.Add(time.Hour), Count: 1, Reason: "sim", Origin: "detected"}
		f.mu.Lock()
		f.sent[p] = now
		f.mu.Unlock()
		if _, err := f.pubDB.RecordBans([]*store.Ban{ban}, nil, BanMessage); err != nil {
			b.Fatal(err)
		}
		f.hosts[0].Wake()
		testkit.Eventually(b, time.Minute, "ban "+p.String()+" everywhere", func() (bool, string) {
			f.mu.Lock()
			defer f.mu.Unlock()
			return f.reached[p] == n-1, fmt.Sprint(f.reached[p])
		})
		if i == 0 {
			f.mu.Lock()
			f.lat = f.lat[:0]
			f.mu.Unlock()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	slices.Sort(f.lat)
	return f.lat[len(f.lat)/2], f.lat[min(len(f.lat)-1, len(f.lat)*99/100)]
}

type waveResult struct {
	msgsMean, msgsMax, bytesMean, bytesMax float64
	decided, counted, want, dropped        int64
	throttled, refused                     int64
	sampled                                int // hosts counting for real, when not all
	wall, cpu                              time.Duration
}

func (r waveResult) row() string {
	counted := ""
	if r.sampled > 0 {
		counted = fmt.Sprintf(" (by the %d hosts counting for real)", r.sampled)
	}
	if r.counted < r.want || r.dropped > 0 {
		counted += fmt.Sprintf(" (%.1f%% of the attempts counted; not published %d, throttled %d, refused %d)",
			100*float64(r.counted)/float64(r.want), r.dropped, r.throttled, r.refused)
	}
	return fmt.Sprintf("%s / %s | %s / %s | %s%s | %v | %v", human(r.msgsMean), human(r.msgsMax), humanBytes(r.bytesMean), humanBytes(r.bytesMax),
		human(float64(r.decided)), counted, r.wall.Round(100*time.Millisecond), r.cpu.Round(100*time.Millisecond))
}

// wave spreads simWave addresses over the fleet, each on two hosts (one
// attempt of weight 2 on each), at most 4,000 attempts per host per
// flush (under the publisher's bound), and waits until every attempt
// published was counted where it goes.
func (f *simFleet) wave(b *testing.B) waveResult {
	n := len(f.counters)
	before := make([]uint64, 2*n)
	for i, nc := range f.conns {
		st := nc.Stats()
		before[2*i], before[2*i+1] = st.InMsgs, st.InBytes
	}
	received := func() int64 {
		var t int64
		for _, s := range f.hosts {
			st := s.Counter.Status()
			t += st.Received
		}
		return t
	}
	base := received()
	cpu0 := cpuTime()
	start := time.Now()
	per := make([][]netip.Prefix, n)
	for i := range simWave {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 32)
		h := i % n
		per[h] = append(per[h], p)
		per[(h+1+i/n%(n-1))%n] = append(per[(h+1+i/n%(n-1))%n], p)
	}
	const round = 4000
	for off := 0; ; off += round {
		more := false
		now := time.Now()
		for h, ps := range per {
			if off >= len(ps) {
				continue
			}
			more = true
			for _, p := range ps[off:min(off+round, len(ps))] {
				f.counters[h].Local(p, now, 2)
			}
		}
		if !more {
			break
		}
		// Each host's batch published before the next round (the
		// publisher's bound is 5,000 per flush).
		testkit.Eventually(b, time.Minute, "the round published", func() (bool, string) {
			for _, c := range f.counters {
				c.mu.Lock()
				left := len(c.buf)
				c.mu.Unlock()
				if left > 0 {
					return false, c.cfg.Name
				}
			}
			return true, ""
		})
	}
	// Everything published counted where it goes: each attempt by the
	// n-1 others (all-to-all) or once (partitioned, its own host's too).
	want := int64(2 * simWave)
	if f.allToAll {
		want = 0
		for h := range f.real {
			want += int64(2*simWave - len(per[h]))
		}
	}
	got := settle(want, func() int64 { return received() - base })
	r := waveResult{wall: time.Since(start), cpu: cpuTime() - cpu0, counted: got, want: want}
	if got < want && !f.allToAll {
		f.partitionsState(b)
	}
	if f.real < n {
		r.sampled = f.real
	}
	for _, c := range f.counters {
		st := c.Status()
		r.dropped += st.Dropped
		for _, v := range st.Throttled {
			r.throttled += v
		}
		for _, v := range st.Refused {
			r.refused += v
		}
	}
	for i, nc := range f.conns {
		st := nc.Stats()
		m, by := float64(st.InMsgs-before[2*i]), float64(st.InBytes-before[2*i+1])
		r.msgsMean += m / float64(n)
		r.bytesMean += by / float64(n)
		r.msgsMax, r.bytesMax = max(r.msgsMax, m), max(r.bytesMax, by)
	}
	wantBans := int64(simWave)
	if f.allToAll {
		wantBans *= int64(f.real) // every host decides every address
	}
	r.decided = settle(wantBans, func() int64 {
		var t int64
		for _, a := range f.apps {
			t += a.decided.Load()
		}
		return t
	})
	return r
}

// settle waits until cur reaches want or stops growing for 30 s (what a
// slow host's subscription dropped never comes; a fleet of 1,000 in one
// process stalls for seconds on the way), and returns it.
func settle(want int64, cur func() int64) int64 {
	last, since := int64(-1), time.Now()
	for {
		v := cur()
		if v >= want || time.Since(since) > 30*time.Second {
			return v
		}
		if v != last {
			last, since = v, time.Now()
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (f *simFleet) stop() {
	f.cancel()
	f.wg.Wait()
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func human(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.1fk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}

func humanBytes(v float64) string {
	switch {
	case v >= 1<<30:
		return fmt.Sprintf("%.2f GiB", v/(1<<30))
	case v >= 1<<20:
		return fmt.Sprintf("%.1f MiB", v/(1<<20))
	case v >= 1<<10:
		return fmt.Sprintf("%.0f KiB", v/(1<<10))
	}
	return fmt.Sprintf("%.0f B", v)
}

// partitionsState prints, when a partitioned wave was not all counted,
// what the server says of each partition's consumer and what the hosts
// saw: where the attempts stopped.
func (f *simFleet) partitionsState(b *testing.B) {
	ctx := context.Background()
	js, _ := jetstream.New(simConn(f.hosts[0]))
	st, err := js.Stream(ctx, countStreamName("SIM"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "count stream:", err)
		return
	}
	info, _ := st.Info(ctx)
	fmt.Fprintf(os.Stderr, "count stream: %d messages, %d consumers\n", info.State.Msgs, info.State.Consumers)
	for i := range DefaultPartitions {
		c, err := st.Consumer(ctx, fmt.Sprintf("count-%d", i))
		if err != nil {
			fmt.Fprintf(os.Stderr, "partition %d: %v\n", i, err)
			continue
		}
		ci := c.CachedInfo()
		fmt.Fprintf(os.Stderr, "partition %d: pending %d, delivered %d, waiting pulls %d, pins %+v\n", i, ci.NumPending, ci.Delivered.Consumer, ci.NumWaiting, ci.PriorityGroups)
	}
	counting := 0
	for _, h := range f.hosts {
		if h.Counter.Status().Received > 0 {
			counting++
		}
	}
	fmt.Fprintf(os.Stderr, "hosts that counted attempts: %d\n", counting)
}
