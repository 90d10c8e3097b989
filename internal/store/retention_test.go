package store

import (
	"fmt"
	"net/netip"
	"os"
	"testing"
	"time"
)

// TestPrune: history, offenders, logins, known sources and hourly counts
// older than their retention go, in chunks; the history record of a ban
// still in force stays; what is younger stays.
func TestPrune(t *testing.T) {
	d, _ := open(t)
	old, young := now.Add(-100*24*time.Hour), now.Add(-time.Hour)
	var bans []*Ban
	for i := range 2500 { // more than one pruning transaction
		bans = append(bans, &Ban{Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), 32), Start: old, Expires: old.Add(time.Hour)})
	}
	perm := &Ban{Prefix: netip.MustParsePrefix("198.51.100.0/24"), Start: old} // permanent: in force
	recent := &Ban{Prefix: netip.MustParsePrefix("203.0.113.9/32"), Start: young, Expires: now.Add(time.Hour)}
	mustRecord(t, d, append(bans, perm, recent)...)
	for _, at := range []time.Time{old, young} {
		d.RecordLogin(Login{Time: at, User: "alice", Addr: netip.MustParseAddr("192.0.2.1")}, func(LoginHistory, *Login) []byte { return nil })
		var c Counts
		c.Add("failure", "10.0.0.1", "root", true, false)
		d.AddCounts(at, c)
	}
	rt := Retention{History: 90 * 24 * time.Hour, Offenders: 30 * 24 * time.Hour, Logins: 90 * 24 * time.Hour, Counts: 90 * 24 * time.Hour}
	n, err := d.Prune(now, rt)
	if err != nil {
		t.Fatal(err)
	}
	// 2,500 history records and offenders, a login, its 3 marks and an hour of counts.
	if n != 2500+2500+1+1+1 {
		t.Errorf("pruned %d records", n)
	}
	hist, _ := d.History(time.Time{})
	if len(hist) != 2 || hist[0].Prefix != perm.Prefix || hist[1].Prefix != recent.Prefix {
		t.Fatalf("history after pruning: %+v", hist)
	}
	if active, err := d.ActiveBans(now); err != nil || len(active) != 2 {
		t.Fatalf("bans in force after pruning: %+v, %v", active, err)
	}
	if off, _ := d.Offender(bans[0].Prefix); off.Bans != 0 {
		t.Errorf("offender kept past its memory: %+v", off)
	}
	if off, _ := d.Offender(recent.Prefix); off.Bans != 1 {
		t.Errorf("recent offender lost: %+v", off)
	}
	if logins, _ := d.Logins(time.Time{}); len(logins) != 1 {
		t.Errorf("logins %+v", logins)
	}
	if c, _ := d.CountsBetween(old.Add(-time.Hour), now); c.Kinds["failure"] != 1 {
		t.Errorf("counts %+v", c)
	}
	if again, err := d.Prune(now, rt); err != nil || again != 0 {
		t.Errorf("second prune deleted %d (%v)", again, err)
	}
}

// TestCompact: after pruning, compaction gives the space back, and the
// database still holds what was kept.
func TestCompact(t *testing.T) {
	d, path := open(t)
	var bans []*Ban
	for i := range 20000 {
		bans = append(bans, &Ban{Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), 32), Start: now.Add(-200 * 24 * time.Hour),
			Evidence: []string{fmt.Sprintf("line %d with some text to take room in the file", i)}, Expires: now.Add(-199 * 24 * time.Hour)})
	}
	mustRecord(t, d, bans...)
	mustRecord(t, d, &Ban{Prefix: netip.MustParsePrefix("203.0.113.1/32"), Start: now})
	if _, err := d.Prune(now, Retention{History: 90 * 24 * time.Hour, Offenders: 30 * 24 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Compact(path, 100*time.Millisecond); err == nil {
		t.Fatal("compacted a database in use")
	}
	d.Close()
	before, after, err := Compact(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(path); after >= before/4 || st.Size() != after || st.Mode().Perm() != 0o600 {
		t.Fatalf("before %d, after %d, file %d %v", before, after, st.Size(), st.Mode())
	}
	d2, err := Open(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	if active, _ := d2.ActiveBans(now); len(active) != 1 {
		t.Fatalf("after compaction: %+v", active)
	}
}

// TestThinCounts: hours older than the detail horizon keep their 20
// biggest addresses and users and the totals; younger ones keep all.
func TestThinCounts(t *testing.T) {
	d, _ := open(t)
	old, young := now.Add(-40*24*time.Hour), now.Add(-time.Hour)
	for _, at := range []time.Time{old, young} {
		var c Counts
		for i := range 100 {
			for range i + 1 { // address i has i+1 attempts
				c.Add("failure", fmt.Sprintf("10.0.0.%d", i), fmt.Sprintf("user%d", i), true, false)
			}
		}
		d.AddCounts(at, c)
	}
	rt := Retention{Counts: 400 * 24 * time.Hour, CountsDetail: 35 * 24 * time.Hour}
	if n, err := d.Prune(now, rt); err != nil || n != 1 {
		t.Fatalf("thinned %d (%v), want 1 hour", n, err)
	}
	oldC, _ := d.CountsBetween(old.Truncate(time.Hour), old.Add(time.Hour))
	if len(oldC.Addrs) != 21 || oldC.Addrs["10.0.0.99"].Failed != 100 || oldC.Addrs["10.0.0.0"].Failed != 0 || oldC.Addrs["other"].Failed != 3240 ||
		oldC.Kinds["failure"] != 5050 || len(oldC.Users) != 21 || oldC.Users["other"] != 3240 || oldC.Failed != 5050 {
		t.Fatalf("old hour: %d addresses, %v", len(oldC.Addrs), oldC.Addrs)
	}
	youngC, _ := d.CountsBetween(young.Truncate(time.Hour), young.Add(time.Hour))
	if len(youngC.Addrs) != 100 {
		t.Fatalf("young hour thinned: %d addresses", len(youngC.Addrs))
	}
	if n, _ := d.Prune(now, rt); n != 0 {
		t.Fatalf("thinned again: %d", n)
	}
}
