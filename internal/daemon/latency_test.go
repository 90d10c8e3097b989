package daemon

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"sshguard-go/internal/ban"
	"sshguard-go/internal/detect"
	"sshguard-go/internal/engine"
	"sshguard-go/internal/roottest"
	"sshguard-go/internal/source"
	"sshguard-go/internal/store"
	"sshguard-go/internal/testkit"
)

// banWatch is a benchmark's firewall: the real NFTSet, which tells when
// an element a benchmark waits for is in the kernel set (its netlink
// batch acknowledged). The others (a load's bans) pass untold.
type banWatch struct {
	*ban.NFTSet
	mu   sync.Mutex
	want map[netip.Prefix]chan time.Time
}

func newBanWatch(nft *ban.NFTSet) *banWatch {
	return &banWatch{NFTSet: nft, want: map[netip.Prefix]chan time.Time{}}
}

func (f *banWatch) Ban(ctx context.Context, els []ban.Element) error {
	if err := f.NFTSet.Ban(ctx, els); err != nil {
		return err
	}
	now := time.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, e := range els {
		if c, ok := f.want[e.Prefix]; ok {
			c <- now
			delete(f.want, e.Prefix)
		}
	}
	return nil
}

// expect returns what receives the time p is in the kernel set.
func (f *banWatch) expect(p netip.Prefix) <-chan time.Time {
	c := make(chan time.Time, 1)
	f.mu.Lock()
	f.want[p] = c
	f.mu.Unlock()
	return c
}

// banRun is how measureBans goes: n bans, gap between them; a ban not
// in the set within limit ends the run; so does within passing (0: no
// bound), with the bans measured so far.
type banRun struct {
	n                  int
	gap, limit, within time.Duration
}

// measureBans appends failed passwords to the log at path, one at a time,
// each from a new address of 198.18.0.0/15 (at most 2,048, two in a /24)
// and stamped now, and returns for each the time from its write to its
// element being in the kernel set (fw, to a ban threshold of 1). A ban
// not there within r.limit counts as r.limit (at least that) and ends
// the run, late true: the daemon is stuck, the next would wait as long.
// Every ban-latency benchmark measures through it.
func measureBans(b *testing.B, path string, fw *banWatch, r banRun) (lat []time.Duration, late bool) {
	b.Helper()
	w, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	lat = make([]time.Duration, 0, r.n)
	deadline := time.Now().Add(r.within)
	for i := 0; i < r.n && (r.within == 0 || time.Now().Before(deadline)); i++ {
		// At most two in a /24: a network's horizon bans it at 20.
		addr := netip.AddrFrom4([4]byte{198, 18 + byte(i>>8&1), byte(i), 1 + byte(i>>9)})
		done := fw.expect(netip.PrefixFrom(addr, 32))
		line := fmt.Sprintf("%s bench sshd[%d]: Failed password for root from %s port 4000 ssh2\n",
			time.Now().UTC().Format("2006-01-02T15:04:05.000000-07:00"), 1000+i, addr)
		start := time.Now()
		if _, err := w.WriteString(line); err != nil {
			b.Fatal(err)
		}
		select {
		case at := <-done:
			lat = append(lat, at.Sub(start))
		case <-time.After(r.limit):
			return append(lat, r.limit), true
		}
		if r.gap > 0 {
			time.Sleep(r.gap) // the pace of the bans, not a wait for a condition
		}
	}
	return lat, false
}

// benchNFT returns an NFTSet with its table, in a fresh network namespace.
func benchNFT(b *testing.B) *ban.NFTSet {
	roottest.Require(b, "ip")
	_, nsf := roottest.NetNS(b, "sgb")
	return benchNFTIn(b, int(nsf.Fd()))
}

// benchNFTIn returns an NFTSet with its table in the network namespace
// open as fd.
func benchNFTIn(b *testing.B, fd int) *ban.NFTSet {
	nft, err := ban.NewNFTSet(ban.NFTConfig{NetNSFd: fd})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { nft.Close() })
	if err := nft.Ensure(); err != nil {
		b.Fatal(err)
	}
	return nft
}

// BenchmarkBanLatency measures, over 1,000 bans, the time from appending
// the threshold-crossing line to the log to the element being in the
// kernel set, through the daemon's own parts: FileTail (inotify), Scanner,
// engine.Guard, NFTSet in a fresh network namespace, BoltDB. Root only.
//
//	sudo go test ./internal/daemon -run XXX -bench BanLatency -benchtime 1x
func BenchmarkBanLatency(b *testing.B) {
	for _, pre := range []int{0, 100000} {
		b.Run(fmt.Sprintf("set=%d", pre), func(b *testing.B) { banLatency(b, pre) })
	}
}

// banLatency runs the measurement with pre bans already in the set.
func banLatency(b *testing.B, pre int) {
	nft := benchNFT(b)
	if pre > 0 {
		els := make([]ban.Element, pre)
		for i := range els {
			els[i] = ban.Element{Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{172, 16 + byte(i>>16), byte(i >> 8), byte(i)}), 32), Timeout: time.Hour}
		}
		if err := nft.Ban(context.Background(), els); err != nil {
			b.Fatal(err)
		}
	}
	dir := b.TempDir()
	db, _ := testkit.OpenDB(b)
	fw := newBanWatch(nft)
	eng := engine.New(engine.Config{FailureWeight: 1, Window: ban.WindowConfig{Threshold: 1}}, db, fw, nil, nil, nil)

	logPath := filepath.Join(dir, "auth.log")
	if err := os.WriteFile(logPath, nil, 0o644); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var sc detect.Scanner
	ready := make(chan struct{})
	ft := &source.FileTail{Path: logPath, Ready: func() { close(ready) }}
	go ft.Run(ctx, func(line string, _ source.Position) {
		sc.Line("bench", 0, line, func(r *detect.Record) { eng.Handle(ctx, r) })
	})
	<-ready

	b.ResetTimer()
	lat, late := measureBans(b, logPath, fw, banRun{n: 1000, limit: 5 * time.Second})
	b.StopTimer()
	if late {
		b.Fatalf("ban %d of 1000 not in the kernel set within 5 s", len(lat))
	}
	testkit.ReportQuantiles(b, lat)
	b.ReportMetric(0, "ns/op")
}

// BenchmarkRestore100k measures a start after a reboot with 100,000 active
// bans in the database: read them and write them to an empty kernel set.
//
//	sudo go test ./internal/daemon -run XXX -bench Restore100k -benchtime 1x
func BenchmarkRestore100k(b *testing.B) {
	nft := benchNFT(b)
	db, _ := testkit.OpenDB(b)
	now := time.Now()
	bans := make([]*store.Ban, 0, 100000)
	for i := 0; i < 100000; i++ {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		bans = append(bans, &store.Ban{Prefix: netip.PrefixFrom(a, 32), Start: now, Expires: now.Add(time.Hour), Reason: "bench"})
	}
	if _, err := db.RecordBans(bans, nil, nil); err != nil {
		b.Fatal(err)
	}
	eng := engine.New(engine.Config{FailureWeight: 1}, db, nft, nil, nil, nil)
	b.ResetTimer()
	start := time.Now()
	n, err := eng.Restore(context.Background())
	elapsed := time.Since(start)
	b.StopTimer()
	if err != nil || n != 100000 {
		b.Fatalf("restored %d, %v", n, err)
	}
	b.ReportMetric(elapsed.Seconds(), "restore-s")
	b.ReportMetric(0, "ns/op")
}
