package store_test

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"sshguard-go/internal/alert"
	"sshguard-go/internal/store"
)

// BenchmarkStateSize records 100,000 bans of a wave with their alerts, as
// the daemon does (4,096 per transaction), and reports the state file's
// size per ban.
//
//	go test ./internal/store -run XXX -bench StateSize -benchtime 1x
func BenchmarkStateSize(b *testing.B) {
	for range b.N {
		path := filepath.Join(b.TempDir(), "state.db")
		if p := os.Getenv("SZDB"); p != "" {
			path = p
		}
		db, err := store.Open(path, time.Second)
		if err != nil {
			b.Fatal(err)
		}
		pol := &alert.Policy{Host: "web-01", Routes: []alert.Route{{Channel: "email", Kinds: alert.Kinds}, {Channel: "webhook", Kinds: alert.Kinds}}}
		now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
		const n = 100000
		var batch []*store.Ban
		flush := func() {
			if _, err := db.RecordBanAlerts(batch, func(b *store.Ban) []byte {
				a := alert.Ban{Prefix: b.Prefix, Attempts: b.Attempts, Users: b.Users, Duration: time.Hour, Nth: b.Count, Reason: b.Reason,
					First: b.Evidence[0], Last: b.Evidence[1]}
				m := pol.BanMessage(a, b.Start)
				m.Ban, m.BanRef = nil, store.BanRef(b) // as the engine writes it
				return m.Marshal()
			}); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
		for i := range n {
			addr := netip.AddrFrom4([4]byte{10, byte(100 + i>>16), byte(i >> 8), byte(i)})
			line := func(k int) string {
				return fmt.Sprintf("Nov 30 12:00:00 web-01 sshd[%d]: Failed password for invalid user u%d from %s port %d ssh2", 2000+i%30000, k, addr, 40000+k)
			}
			batch = append(batch, &store.Ban{Prefix: netip.PrefixFrom(addr, 32), Start: now, Expires: now.Add(time.Hour),
				Reason: "5 failed attempts in 10m0s", Attempts: 5, Users: []string{"u0", "u1", "u2", "u3", "u4"}, Evidence: []string{line(0), line(4)}})
			if len(batch) == 4096 {
				flush()
			}
		}
		flush()
		db.Close()
		st, _ := os.Stat(path)
		b.ReportMetric(float64(st.Size())/1e6, "MB")
		b.ReportMetric(float64(st.Size())/n, "bytes/ban")
	}
}
