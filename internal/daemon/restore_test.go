package daemon

import (
	"context"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"sshguard-go/internal/engine"
	"sshguard-go/internal/store"
	"sshguard-go/internal/testkit"
)

// stateWithBans writes a state database holding n bans in force (a wave
// of n addresses, as a reboot finds it) and returns its path.
func stateWithBans(b *testing.B, n int) string {
	b.Helper()
	path := filepath.Join(b.TempDir(), "state.db")
	db, err := store.Open(path, time.Second)
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	for lo := 0; lo < n; lo += 4096 {
		var bans []*store.Ban
		for i := lo; i < min(lo+4096, n); i++ {
			p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 32)
			bans = append(bans, &store.Ban{Prefix: p, Start: now, Expires: now.Add(time.Hour), Reason: "5 failed attempts in 10m0s",
				Attempts: 5, Users: []string{"root", "admin"}, Evidence: []string{"Failed password for root from " + p.Addr().String() + " port 22 ssh2"}, Origin: engine.Detected})
		}
		testkit.RecordBans(b, db, bans...)
	}
	db.Close()
	return path
}

// BenchmarkRestore: after a reboot in the middle of a wave, the state
// database holds 100,000 bans in force and the kernel set is empty:
// restored (read from the store, written to the kernel in a fresh network
// namespace, held by the gate) and listed (the control API's Bans), each
// timed. Root only.
//
//	sudo go test ./internal/daemon -run XXX -bench Restore -benchtime 1x
func BenchmarkRestore(b *testing.B) {
	const n = 100000
	path := stateWithBans(b, n)
	for b.Loop() {
		nft := benchNFT(b) // a fresh, empty set: the reboot
		db, err := store.Open(path, time.Second)
		if err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		g := engine.New(engine.Config{FailureWeight: 1}, db, nft, nil, nil, nil)
		got, err := g.Restore(context.Background())
		restore := time.Since(t0)
		if err != nil || got != n {
			b.Fatalf("restored %d of %d: %v", got, n, err)
		}
		if els, err := nft.List(); err != nil || len(els) != n {
			b.Fatalf("%d in the kernel: %v", len(els), err)
		}
		s := &Service{guard: g, db: db}
		t1 := time.Now()
		list, err := s.Bans(context.Background())
		listed := time.Since(t1)
		if err != nil || len(list.Bans) != n {
			b.Fatalf("listed %d: %v", len(list.Bans), err)
		}
		db.Close()
		b.ReportMetric(restore.Seconds(), "restore-s")
		b.ReportMetric(listed.Seconds(), "list-s")
		met := restore < 500*time.Millisecond && listed < time.Second
		b.Logf("%d bans: restored in %v, listed in %v (goal: under 0.5 s and 1 s: met %v)", n, restore.Round(time.Millisecond), listed.Round(time.Millisecond), met)
		// Failing at four times the goal: a loaded machine is slower, a
		// restore that reads each ban's history again (5.8 s) fails.
		if restore > 2*time.Second || listed > 4*time.Second {
			b.Errorf("restored in %v, listed in %v: more than four times the goal", restore, listed)
		}
	}
}
