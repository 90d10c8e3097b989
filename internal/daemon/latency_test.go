package daemon

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
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

// timedFW passes bans to the kernel and reports when each is in the set
// (the netlink batch was acknowledged).
type timedFW struct {
	*ban.NFTSet
	done chan netip.Prefix
}

func (f timedFW) Ban(ctx context.Context, els []ban.Element) error {
	err := f.NFTSet.Ban(ctx, els)
	for _, e := range els {
		f.done <- e.Prefix
	}
	return err
}

// benchNFT returns an NFTSet with its table, in a fresh network namespace.
func benchNFT(b *testing.B) *ban.NFTSet {
	roottest.Require(b, "ip")
	_, nsf := roottest.NetNS(b, "sgb")
	nft, err := ban.NewNFTSet(ban.NFTConfig{NetNSFd: int(nsf.Fd())})
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
	fw := timedFW{nft, make(chan netip.Prefix, 1)}
	eng := engine.New(engine.Config{FailureWeight: 1, Window: ban.WindowConfig{Threshold: 1}}, db, fw, nil, nil, nil)

	logPath := filepath.Join(dir, "auth.log")
	w, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var sc detect.Scanner
	ready := make(chan struct{})
	ft := &source.FileTail{Path: logPath, Ready: func() { close(ready) }}
	go ft.Run(ctx, func(line string, _ source.Position) {
		sc.Line("bench", 0, line, func(r *detect.Record) { eng.Handle(ctx, r) })
	})
	<-ready

	const bans = 1000
	lat := make([]time.Duration, 0, bans)
	b.ResetTimer()
	for i := 0; i < bans; i++ {
		ip := fmt.Sprintf("10.0.%d.%d", i/250, i%250+1)
		line := fmt.Sprintf("2026-11-24T12:00:00.000000+00:00 h sshd[%d]: Failed password for root from %s port 4000 ssh2\n", 1000+i, ip)
		start := time.Now()
		if _, err := w.WriteString(line); err != nil {
			b.Fatal(err)
		}
		select {
		case <-fw.done:
			lat = append(lat, time.Since(start))
		case <-time.After(5 * time.Second):
			b.Fatalf("ban %d not seen in 5 s", i)
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
	b.ReportMetric(ms(lat[len(lat)*99/100]), "p99-ms")
	b.ReportMetric(ms(lat[len(lat)-1]), "max-ms")
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
