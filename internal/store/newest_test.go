package store

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestNewestInForce: the newest n bans in force and their total are what
// every ban in force, sorted newest first (at one start by key), gives,
// whatever n, with expired and permanent bans and many at one start.
func TestNewestInForce(t *testing.T) {
	d, _ := open(t)
	rng := rand.New(rand.NewPCG(1, 2))
	var bans []*Ban
	for i := range 500 {
		b := &Ban{Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), 32),
			Start: now.Add(-time.Duration(rng.IntN(50)) * time.Minute), Reason: fmt.Sprint("r", i), Users: []string{"u"}}
		switch rng.IntN(4) {
		case 0: // expired
			b.Expires = now.Add(-time.Minute)
		case 1: // permanent
		default:
			b.Expires = now.Add(time.Hour)
		}
		bans = append(bans, b)
	}
	if _, err := d.RecordBans(bans, nil, nil); err != nil {
		t.Fatal(err)
	}
	all, _, err := d.InForce(now)
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(all, func(a, b Ban) int {
		if c := b.Start.Compare(a.Start); c != 0 {
			return c
		}
		return strings.Compare(a.Prefix.String(), b.Prefix.String()) // the key's order
	})
	if len(all) < 300 || len(all) > 450 {
		t.Fatalf("%d of 500 in force: the test's mix is off", len(all))
	}
	for _, n := range []int{0, 1, 7, 100, len(all), len(all) + 5} {
		total, got, _, err := d.NewestInForce(now, n)
		if err != nil {
			t.Fatal(err)
		}
		want := all[:min(n, len(all))]
		if total != len(all) || len(got) != len(want) {
			t.Fatalf("n %d: total %d, %d bans; want %d, %d", n, total, len(got), len(all), len(want))
		}
		for i := range want {
			if got[i].Prefix != want[i].Prefix || !got[i].Start.Equal(want[i].Start) || got[i].Reason != want[i].Reason ||
				!got[i].Expires.Equal(want[i].Expires) || !slices.Equal(got[i].Users, want[i].Users) {
				t.Fatalf("n %d, %d: %+v, want %+v", n, i, got[i], want[i])
			}
		}
	}
}

// BenchmarkNewestInForce: the API's list of the newest 100 of 100,000
// bans in force (B/op: what one request holds), beside reading them all.
func BenchmarkNewestInForce(b *testing.B) {
	d, _ := open(b)
	var bans []*Ban
	for i := range 100_000 {
		bans = append(bans, &Ban{Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 32),
			Start: now.Add(time.Duration(i) * time.Millisecond), Expires: now.Add(time.Hour), Reason: "5 failed attempts in 10m", Users: []string{"root"}})
	}
	if _, err := d.RecordBans(bans, nil, nil); err != nil {
		b.Fatal(err)
	}
	b.Run("newest100", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if total, got, _, err := d.NewestInForce(now, 100); err != nil || total != 100_000 || len(got) != 100 {
				b.Fatal(total, len(got), err)
			}
		}
	})
	b.Run("all", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if got, _, err := d.InForce(now); err != nil || len(got) != 100_000 {
				b.Fatal(len(got), err)
			}
		}
	})
}

// TestNewestLogins: the newest n logins at or after since, newest first,
// as the tail of Logins(since) reversed.
func TestNewestLogins(t *testing.T) {
	d, _ := open(t)
	var ls []Login
	for i := range 200 {
		ls = append(ls, Login{Time: now.Add(time.Duration(i) * time.Minute), User: fmt.Sprint("u", i), Addr: netip.MustParseAddr("192.0.2.1")})
	}
	if _, err := d.RecordLogins(ls, func(LoginHistory, *Login) []byte { return nil }); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		since time.Time
		n     int
	}{{now, 5}, {now, 500}, {now.Add(190 * time.Minute), 50}, {now.Add(time.Hour), 0}, {now.Add(300 * time.Minute), 5}} {
		all, err := d.Logins(c.since)
		if err != nil {
			t.Fatal(err)
		}
		slices.Reverse(all)
		want := all[:min(c.n, len(all))]
		got, err := d.NewestLogins(c.since, c.n)
		if err != nil || len(got) != len(want) {
			t.Fatalf("since %v, %d: %d logins (%v), want %d", c.since, c.n, len(got), err, len(want))
		}
		for i := range want {
			if got[i].User != want[i].User || !got[i].Time.Equal(want[i].Time) {
				t.Fatalf("since %v, %d: %d is %+v, want %+v", c.since, c.n, i, got[i], want[i])
			}
		}
	}
}
