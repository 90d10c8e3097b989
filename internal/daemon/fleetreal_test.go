package daemon

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"sshguard-go/internal/ban"
	"sshguard-go/internal/config"
	"sshguard-go/internal/engine"
	"sshguard-go/internal/share"
	"sshguard-go/internal/store"
	"sshguard-go/internal/testkit"
)

// BenchmarkFleetFanOutReal: a ban's way across a fleet whose every host
// has its real gate and state database. n hosts on one embedded NATS
// server, each a Sharer applying the others' bans through the daemon's
// applier into an engine.Guard on a bbolt file of its own, with the
// daemon's default configuration; only the kernel is replaced, by a
// firewall that notes when each element arrives. Host 0 bans 20 addresses
// by hand (engine.Guard.BanMany, origin admin, shared through its outbox),
// one after the other, each once every other host has the one before in
// its firewall. It reports the p50 and p99 from host 0's ban call to the
// element in another host's firewall, and the process's heap in use at
// the end (every host's engine, database and connection).
//
// 10 hosts under make bench-smoke; SSHGUARD_FLEET_REAL=1000 (make
// bench-fleet-scale) a thousand (about a minute here). At a thousand the
// process holds a thousand daemons (3.5 GB of heap) and every ban is a
// thousand bbolt commits with their fsync on one disk: TMPDIR=/dev/shm
// puts the databases on a tmpfs, as a fleet spreads them over a thousand
// disks.
func BenchmarkFleetFanOutReal(b *testing.B) {
	n := 10
	if v := os.Getenv("SSHGUARD_FLEET_REAL"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 2 || n > 2000 {
			b.Fatalf("SSHGUARD_FLEET_REAL=%q: want 2 to 2000 hosts", v)
		}
	}
	for range b.N {
		p50, p99, heap := realFanOut(b, n, 20)
		b.ReportMetric(testkit.MS(p50), "p50-ms")
		b.ReportMetric(testkit.MS(p99), "p99-ms")
		b.ReportMetric(float64(heap)/(1<<20), "heap-MB")
		b.ReportMetric(0, "ns/op")
		fmt.Printf("\nfan-out with every host's real gate and state database: %d hosts, 20 bans: p50 %v, p99 %v, heap %d MB\n",
			n, p50.Round(time.Millisecond), p99.Round(time.Millisecond), heap>>20)
	}
}

// arrivals is what the hosts' firewalls saw: when each element reached
// how many hosts.
type arrivals struct {
	mu      sync.Mutex
	sent    map[netip.Prefix]time.Time
	reached map[netip.Prefix]int
	lat     []time.Duration
}

// noteFW is a host's firewall: it notes each element's arrival (host 0's
// own, the ban's origin, is not timed).
type noteFW struct {
	a    *arrivals
	host int
}

func (f noteFW) Ban(_ context.Context, els []ban.Element) error {
	now := time.Now()
	f.a.mu.Lock()
	defer f.a.mu.Unlock()
	for _, e := range els {
		if at, ok := f.a.sent[e.Prefix]; ok && f.host != 0 {
			f.a.reached[e.Prefix]++
			f.a.lat = append(f.a.lat, now.Sub(at))
		}
	}
	return nil
}

func (noteFW) Unban(context.Context, []netip.Prefix) error { return nil }

// realFanOut runs the fleet of n hosts and m bans from host 0.
func realFanOut(b *testing.B, n, m int) (p50, p99 time.Duration, heap uint64) {
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
	defer func() { srv.Shutdown(); srv.WaitForShutdown() }()
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)

	cfg := config.Default()
	ec := engineConfig(cfg, nil, nil)
	ec.Share, ec.ShareUnban = share.BanMessage, share.UnbanMessage
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	a := &arrivals{sent: map[netip.Prefix]time.Time{}, reached: map[netip.Prefix]int{}}
	dir := b.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var dbs []*store.DB
	defer func() {
		cancel()
		wg.Wait()
		for _, db := range dbs {
			db.Close()
		}
	}()
	var guards []*engine.Guard
	var sharers []*share.Sharer
	for i := range n {
		name := fmt.Sprintf("h%04d", i)
		db, err := store.Open(filepath.Join(dir, name+".db"), time.Second)
		if err != nil {
			b.Fatal(err)
		}
		dbs = append(dbs, db)
		g := engine.New(ec, db, noteFW{a, i}, nil, time.Now, log)
		s := share.NewSharer(share.ShareConfig{URLs: []string{url}, Name: name, Stream: cfg.Fleet.Stream, Share: true, Apply: true,
			MaxAge: time.Duration(cfg.Ban.MaxBanTime), Instance: db.Instance()}, db, applier{g}, log)
		guards, sharers = append(guards, g), append(sharers, s)
		wg.Go(func() { g.Run(ctx) })
		wg.Go(func() { s.Run(ctx) })
		if i%25 == 24 || i == n-1 { // 25 at a time: the server's API is not flooded
			testkit.Eventually(b, 2*time.Minute, "hosts connected", func() (bool, string) {
				for _, s := range sharers[max(0, i-24):] {
					if s.Status().Server == "" {
						return false, s.Status().Name
					}
				}
				return true, ""
			})
		}
	}
	// The first ban, not measured, waits for the others' consumers.
	for i := range m + 1 {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, 7, byte(1 + i)}), 32)
		t0 := time.Now()
		a.mu.Lock()
		a.sent[p] = t0
		a.mu.Unlock()
		if _, errs := guards[0].BanMany(ctx, []engine.Request{{Prefix: p, For: time.Hour, Reason: "fan-out", Origin: engine.Admin}}); errs[0] != nil {
			b.Fatal(errs[0])
		}
		sharers[0].Wake()
		testkit.Eventually(b, 5*time.Minute, "ban "+p.String()+" on every host", func() (bool, string) {
			a.mu.Lock()
			defer a.mu.Unlock()
			return a.reached[p] == n-1, fmt.Sprint(a.reached[p], " of ", n-1)
		})
		if i == 0 {
			a.mu.Lock()
			a.lat = a.lat[:0]
			a.mu.Unlock()
		}
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	a.mu.Lock()
	defer a.mu.Unlock()
	slices.Sort(a.lat)
	return a.lat[len(a.lat)/2], a.lat[min(len(a.lat)-1, len(a.lat)*99/100)], ms.HeapAlloc
}
