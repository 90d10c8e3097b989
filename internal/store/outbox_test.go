package store

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"testing"
	"time"
)

func TestOutboxPendingAndPrune(t *testing.T) {
	d, path := open(t)
	b := &Ban{Prefix: netip.MustParsePrefix("192.0.2.1/32"), Start: now}
	if ids, err := d.RecordBans([]*Ban{b}, func(b *Ban) []byte { return fmt.Appendf(nil, `{"nth":%d}`, b.Count) }, nil); err != nil || ids[0] != 1 {
		t.Fatalf("ids %v, %v", ids, err)
	}
	if ids, err := d.RecordBans([]*Ban{{Prefix: b.Prefix, Start: now}}, func(*Ban) []byte { return nil }, nil); ids[0] != 0 || err != nil {
		t.Fatalf("no alert: id %d, %v", ids[0], err)
	}
	for i := 0; i < 9; i++ {
		d.Enqueue([]byte(fmt.Sprintf(`{"i":%d}`, i)))
	}
	var first string
	d.Pending(func(id uint64, data []byte) error {
		if id == 1 {
			first = string(data)
		}
		return nil
	})
	if first != `{"nth":1}` {
		t.Fatalf("the ban's alert %q (its Count must be set in the transaction)", first)
	}
	// Deliver all but alert 2; keep 3: alert 2 survives as pending.
	var all []uint64
	for id := uint64(1); id <= 10; id++ {
		all = append(all, id)
	}
	if err := d.UpdateAlerts(all, func(id uint64, _ []byte) ([]byte, bool, error) { return []byte(`{}`), id != 2, nil }); err != nil {
		t.Fatal(err)
	}
	if n, err := d.PruneAlerts(3); n != 7 || err != nil {
		t.Fatalf("pruned %d, %v", n, err)
	}
	d.Close()
	d, err := Open(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var ids []uint64
	var pending []bool
	d.Alerts(0, func(id uint64, _ []byte, p bool) bool {
		ids, pending = append(ids, id), append(pending, p)
		return true
	})
	if fmt.Sprint(ids) != "[10 9 2]" || fmt.Sprint(pending) != "[false false true]" {
		t.Fatalf("kept %v pending %v", ids, pending)
	}
}

func TestLoginHistory(t *testing.T) {
	d, _ := open(t)
	var got []LoginHistory
	rec := func(user, addr string, at time.Time) {
		_, err := d.RecordLogin(Login{Time: at, User: user, Addr: netip.MustParseAddr(addr)}, func(h LoginHistory, _ *Login) []byte {
			got = append(got, h)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	rec("alice", "198.51.100.4", now)
	rec("alice", "198.51.100.4", now.Add(time.Minute))
	rec("alice", "198.51.100.77", now.Add(2*time.Minute))
	rec("alice", "2001:db8:1:2::5", now.Add(3*time.Minute))
	rec("alice", "2001:db8:1:2::6", now.Add(4*time.Minute))
	rec("bob", "198.51.100.4", now.Add(5*time.Minute))
	want := []LoginHistory{
		{},
		{LastFromAddr: now, SeenNet: true, SeenUser: true},
		{SeenNet: true, SeenUser: true},
		{SeenUser: true},
		{SeenNet: true, SeenUser: true},
		{},
	}
	for i := range want {
		if !got[i].LastFromAddr.Equal(want[i].LastFromAddr) || got[i].SeenNet != want[i].SeenNet || got[i].SeenUser != want[i].SeenUser {
			t.Errorf("login %d: history %+v, want %+v", i, got[i], want[i])
		}
	}
	logins, err := d.Logins(now.Add(90 * time.Second))
	if err != nil || len(logins) != 4 || logins[0].Addr.String() != "198.51.100.77" {
		t.Fatalf("logins since: %+v %v", logins, err)
	}
}

func TestHourlyCounts(t *testing.T) {
	d, _ := open(t)
	var c Counts
	c.Add("failure", "192.0.2.1", "root", true, false)
	c.Add("failure", "192.0.2.1", "admin", true, false)
	c.Add("failure", "192.0.2.1", "admin", false, false) // a line of a guess already counted
	c.Add("probe", "192.0.2.2", "", false, true)
	c.Add("success", "192.0.2.3", "alice", false, false)
	c.Bans, c.Conns, c.DayConns = 1, 3, 2
	d.AddCounts(now, c)
	d.AddCounts(now.Add(10*time.Minute), c)
	d.AddCounts(now.Add(2*time.Hour), c)
	sum, err := d.CountsBetween(now, now.Add(time.Hour))
	if err != nil || sum.Kinds["failure"] != 6 || sum.Addrs["192.0.2.1"] != (Tries{4, 0}) || sum.Addrs["192.0.2.2"] != (Tries{0, 2}) ||
		sum.Users["root"] != 2 || sum.Users["alice"] != 0 || sum.Failed != 4 || sum.Probes != 2 || sum.Logins() != 2 || sum.Bans != 2 || sum.Conns != 6 || sum.DayConns != 4 {
		t.Fatalf("counts %+v %v", sum, err)
	}
	// Bounded: keys beyond MaxCountKeys are counted as "other".
	var big Counts
	for i := 0; i < MaxCountKeys+10; i++ {
		big.Add("failure", fmt.Sprintf("10.0.%d.%d", i/256, i%256), "", true, false)
	}
	if len(big.Addrs) != MaxCountKeys+1 || big.Addrs["other"] != (Tries{10, 0}) {
		t.Fatalf("%d addresses, other %v", len(big.Addrs), big.Addrs["other"])
	}
	// An hour written before probes were kept apart: its weighted number
	// reads as failed attempts.
	var old Counts
	if err := json.Unmarshal([]byte(`{"kinds":{"failure":3},"addrs":{"192.0.2.9":2.5}}`), &old); err != nil || old.Addrs["192.0.2.9"] != (Tries{3, 0}) {
		t.Fatalf("legacy hour: %+v %v", old, err)
	}
}
