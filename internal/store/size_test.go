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
			if _, err := db.RecordBans(batch, func(b *store.Ban) []byte {
				a := alert.Ban{Prefix: b.Prefix, Attempts: b.Attempts, Users: b.Users, Duration: time.Hour, Nth: b.Count, Reason: b.Reason,
					First: b.Evidence[0], Last: b.Evidence[1]}
				m := pol.BanMessage(a, b.Start)
				m.Ban, m.BanRef = nil, store.BanRef(b) // as the engine writes it
				return m.Marshal()
			}, nil); err != nil {
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

// BenchmarkYear simulates a year of a busy server: 5,000 bans a day (a
// third of them repeat offenders), each with its ban alert, 20 logins a
// day, the hourly counts; once a day the daemon's housekeeping (expired
// bans, retention of 90 days of history and logins, 30 days of offender
// memory, 400 days of counts; the newest 10,000 alerts). It reports the
// file size at days 30, 90, 180 and 365: flat after the retention horizon.
//
//	go test ./internal/store -run XXX -bench Year -benchtime 1x
func BenchmarkYear(b *testing.B) {
	for range b.N {
		path := filepath.Join(b.TempDir(), "state.db")
		db, err := store.Open(path, time.Second)
		if err != nil {
			b.Fatal(err)
		}
		pol := &alert.Policy{Host: "web-01", Routes: []alert.Route{{Channel: "email", Kinds: alert.Kinds}}}
		rt := store.Retention{History: 90 * 24 * time.Hour, Offenders: 30 * 24 * time.Hour, Logins: 90 * 24 * time.Hour, Counts: 400 * 24 * time.Hour, CountsDetail: 35 * 24 * time.Hour}
		day0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		size := func() float64 { st, _ := os.Stat(path); return float64(st.Size()) / 1e6 }
		const perDay = 5000
		for day := range 365 {
			at := day0.Add(time.Duration(day) * 24 * time.Hour)
			bans := make([]*store.Ban, perDay)
			for i := range bans {
				n := day*perDay + i
				if i%3 == 0 && day > 0 {
					n = (day-1)*perDay + i // yesterday's offender again
				}
				addr := netip.AddrFrom4([4]byte{byte(1 + n>>24), byte(n >> 16), byte(n >> 8), byte(n)})
				start := at.Add(time.Duration(i) * 17 * time.Second)
				bans[i] = &store.Ban{Prefix: netip.PrefixFrom(addr, 32), Start: start, Expires: start.Add(time.Hour), Reason: "5 failed attempts in 10m0s",
					Attempts: 5, Users: []string{"root", "admin", "test"}, Evidence: []string{
						fmt.Sprintf("Jan  1 00:00:00 web-01 sshd[%d]: Failed password for root from %s port 40000 ssh2", 1000+i, addr),
						fmt.Sprintf("Jan  1 00:00:09 web-01 sshd[%d]: Failed password for test from %s port 40004 ssh2", 1000+i, addr)}}
			}
			if _, err := db.RecordBans(bans, func(b *store.Ban) []byte {
				m := pol.BanMessage(alert.Ban{Prefix: b.Prefix, Duration: time.Hour, Nth: b.Count}, b.Start)
				m.Ban, m.BanRef = nil, store.BanRef(b)
				return m.Marshal()
			}, nil); err != nil {
				b.Fatal(err)
			}
			for i := range 20 {
				db.RecordLogin(store.Login{Time: at.Add(time.Duration(i) * time.Hour), User: fmt.Sprintf("user%d", i%5),
					Addr: netip.AddrFrom4([4]byte{192, 0, 2, byte(day)})}, func(store.LoginHistory, *store.Login) []byte { return nil })
			}
			for h := range 24 {
				var c store.Counts
				for k := range 1000 {
					c.Add("failure", fmt.Sprintf("10.%d.%d.%d", h, k/250, k%250), "root", true, false)
				}
				db.AddCounts(at.Add(time.Duration(h)*time.Hour), c)
			}
			// The day's housekeeping: every alert delivered, then pruned.
			var ids []uint64
			db.Pending(func(id uint64, _ []byte) error { ids = append(ids, id); return nil })
			db.UpdateAlerts(ids, func(_ uint64, data []byte) ([]byte, bool, error) { return data, true, nil })
			if _, err := db.PruneAlerts(10000); err != nil {
				b.Fatal(err)
			}
			if _, err := db.Prune(at.Add(24*time.Hour), rt); err != nil {
				b.Fatal(err)
			}
			switch day + 1 {
			case 30, 90, 180, 365:
				b.ReportMetric(size(), fmt.Sprintf("MB-day%d", day+1))
			}
		}
		db.Close()
	}
}
