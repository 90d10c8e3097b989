package report

import (
	"bytes"
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"sshguard-go/internal/ban"
	"sshguard-go/internal/detect"
)

func rec(kind detect.Kind, ip, user string, counted int, at time.Time) *detect.Record {
	r := &detect.Record{}
	r.Kind, r.Addr, r.User, r.Counted, r.Time = kind, netip.MustParseAddr(ip), user, counted, at
	return r
}

func TestSummary(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	s := Summary{Window: Window{Since: now.Add(-time.Hour)}}
	s.Add(rec(detect.KindFailure, "192.0.2.1", "root", 1, now))
	s.Add(rec(detect.KindFailure, "192.0.2.1", "root", 0, now)) // a second line of the same guess
	s.Add(rec(detect.KindProbe, "192.0.2.2", "", 1, now))
	s.Add(rec(detect.KindProbe, "192.0.2.2", "", 1, now))
	s.Add(rec(detect.KindFailure, "192.0.2.3", "admin", 1, now.Add(-2*time.Hour))) // before Since
	s.Add(rec(detect.KindSuccess, "192.0.2.1", "alice", 0, now))
	list := s.Sorted()
	if len(list) != 2 || list[0].Client != "192.0.2.1" || list[0].Failed != 1 || list[0].Successes != 1 ||
		strings.Join(list[0].Users, ",") != "root,alice" || list[1].Probes != 2 {
		t.Fatalf("summary %+v %+v", list[0], list[1])
	}
	var b strings.Builder
	WriteJSON(&b, list)
	if !strings.Contains(b.String(), `"192.0.2.1": {"failed": 1, "probes": 0, "successes": 1, "users": ["root", "alice"]`) {
		t.Fatalf("JSON %s", b.String())
	}
}

func TestSummaryUntil(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	s := Summary{Window: Window{Since: now.Add(-2 * time.Hour), Until: now.Add(-time.Hour)}}
	s.Add(rec(detect.KindFailure, "192.0.2.1", "root", 1, now.Add(-90*time.Minute)))
	s.Add(rec(detect.KindFailure, "192.0.2.2", "root", 1, now.Add(-30*time.Minute))) // after Until
	s.Add(rec(detect.KindFailure, "192.0.2.3", "root", 1, now.Add(-3*time.Hour)))    // before Since
	if list := s.Sorted(); len(list) != 1 || list[0].Client != "192.0.2.1" {
		t.Fatalf("%+v", list)
	}
}

func TestWindow(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	open := Back(now, 0, 0)
	if !open.Holds(time.Time{}) || !open.Holds(now) {
		t.Fatal("an open window leaves out an event")
	}
	w := Back(now, 2*time.Hour, time.Hour)
	for at, want := range map[time.Duration]bool{-3 * time.Hour: false, -2 * time.Hour: true, -90 * time.Minute: true, -time.Hour: false, 0: false} {
		if got := w.Holds(now.Add(at)); got != want {
			t.Errorf("Holds(now%v) = %v", at, got)
		}
	}
	if w.Holds(time.Time{}) || Back(now, 0, time.Hour).Holds(time.Time{}) {
		t.Error("a bounded window holds an event without a time")
	}
}

// TestWriteTextLayout: the table is laid out as text/tabwriter lays it out
// (its columns as wide as their widest cell plus two spaces), non-ASCII
// names and unknown times included.
func TestWriteTextLayout(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	var s Summary
	for i := range 40 {
		s.Add(rec(detect.KindFailure, fmt.Sprintf("192.0.2.%d", i), fmt.Sprintf("user%d", i%7), 1+i%3, now.Add(time.Duration(i)*time.Minute)))
	}
	for i := range 9 {
		s.Add(rec(detect.KindFailure, "2001:db8:ffff:ffff::1234", fmt.Sprintf("u\"%d", i), 1000, time.Time{}))
	}
	r := &detect.Record{}
	r.Kind, r.User, r.Time, r.ClientHost = detect.KindSuccess, "bjørn", now, "hôte-été.example"
	s.Add(r)
	list := s.Sorted()
	var got, want bytes.Buffer
	WriteText(&got, list)
	tw := tabwriter.NewWriter(&want, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "ADDRESS\tFAILED\tPROBES\tLOGINS\tFIRST SEEN\tLAST SEEN\tUSERS")
	tm := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.Format(time.RFC3339)
	}
	for _, c := range list {
		var users []string
		for _, u := range c.Users[:min(5, len(c.Users))] {
			users = append(users, strconv.Quote(u))
		}
		more := ""
		if n := int64(len(c.Users)-len(users)) + c.UsersMore; n > 0 {
			more = fmt.Sprintf(" +%d more", n)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t%s\t%s%s\n", c.Client, c.Failed, c.Probes, c.Successes, tm(c.First), tm(c.Last), strings.Join(users, ","), more)
	}
	tw.Flush()
	if got.String() != want.String() {
		t.Fatalf("got:\n%s\nwant:\n%s", got.String(), want.String())
	}
	if !strings.Contains(got.String(), "+4 more") || !strings.Contains(got.String(), "hôte-été.example") {
		t.Fatalf("table:\n%s", got.String())
	}
}

func TestCheckFlags(t *testing.T) {
	for _, c := range []struct {
		threshold    float64
		since, until time.Duration
		jobs, top    int
		want         string
	}{
		{10, 24 * time.Hour, time.Hour, 4, 5, ""},
		{0, 0, 0, 1, 0, ""},
		{math.NaN(), 0, 0, 1, 0, "--threshold NaN"},
		{math.Inf(1), 0, 0, 1, 0, "--threshold +Inf"},
		{-3, 0, 0, 1, 0, "--threshold -3"},
		{0, -time.Hour, 0, 1, 0, "--since -1h:"},
		{0, 0, -90 * time.Minute, 1, 0, "--until -1h30m:"},
		{0, time.Hour, 2 * time.Hour, 1, 0, "--since 1h --until 2h: the window is empty"},
		{0, time.Hour, time.Hour, 1, 0, "the window is empty"},
		{0, 0, 0, 0, 0, "-j 0"},
		{0, 0, 0, 1, -1, "--top -1"},
	} {
		err := CheckFlags(c.threshold, c.since, c.until, c.jobs, c.top)
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%+v: %v, want %q", c, err, c.want)
		}
	}
}

// TestSortOrder: the packed keys sort as the rule says: failed, probes,
// logins (most first), then IPv4 before IPv6 by address, zones by name,
// names after addresses; counts past the packed bits still compare in
// full. Checked against the rule written plainly, on random clients.
func TestSortOrder(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 4))
	var s Summary
	seen := map[string]bool{}
	for len(seen) < 5000 {
		var a netip.Addr
		switch rnd.IntN(4) {
		case 0:
			a = netip.AddrFrom4([4]byte{10, byte(rnd.IntN(3)), byte(rnd.IntN(256)), byte(rnd.IntN(256))})
		case 1:
			a = netip.MustParseAddr(fmt.Sprintf("2001:db8::%x", rnd.IntN(4000)))
		case 2:
			a = netip.MustParseAddr(fmt.Sprintf("fe80::%x%%eth%d", rnd.IntN(3), rnd.IntN(2)))
		}
		huge := []int64{0, 1, 2, 1<<23 - 2, 1 << 23, 1<<23 + 5, 1 << 40}
		c := s.newClient()
		c.Failed, c.Probes, c.Successes = huge[rnd.IntN(len(huge))], huge[rnd.IntN(3)]+int64(rnd.IntN(2))<<19, int64(rnd.IntN(2))
		if a.IsValid() {
			c.Client, c.addr = a.String(), a
			if s.byAddr == nil {
				s.byAddr = map[netip.Addr]*Client{}
			}
			s.byAddr[a] = c
		} else {
			c.Client = fmt.Sprint("host-", rnd.IntN(100000))
			if s.byClient == nil {
				s.byClient = map[string]*Client{}
			}
			s.byClient[c.Client] = c
		}
		seen[c.Client] = true
	}
	got := s.Sorted()
	want := slices.Clone(got)
	slices.SortFunc(want, func(a, b *Client) int {
		if c := cmp.Or(cmp.Compare(b.Failed, a.Failed), cmp.Compare(b.Probes, a.Probes), cmp.Compare(b.Successes, a.Successes)); c != 0 {
			return c
		}
		switch av, bv := a.addr.IsValid(), b.addr.IsValid(); {
		case av && bv:
			return a.addr.Compare(b.addr)
		case av:
			return -1
		case bv:
			return 1
		}
		return strings.Compare(a.Client, b.Client)
	})
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("at %d: %s (%d/%d/%d), want %s (%d/%d/%d)", i, got[i].Client, got[i].Failed, got[i].Probes, got[i].Successes,
				want[i].Client, want[i].Failed, want[i].Probes, want[i].Successes)
		}
	}
}

// TestWidths: the widths WriteText measures are those it writes.
func TestWidths(t *testing.T) {
	for _, tm := range []time.Time{{}, time.Date(2026, 11, 30, 1, 2, 3, 4, time.UTC), time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("x", 5*3600+1800)),
		time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("utc-ish", 0)), time.Date(999, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(12026, 1, 1, 0, 0, 0, 0, time.UTC)} {
		if w := timeWidth(tm); w != len(appendTime(nil, tm)) {
			t.Errorf("%v: width %d, written %q", tm, w, appendTime(nil, tm))
		}
	}
	for _, n := range []int64{0, 9, 10, 99, 100, 123456789, -1, -10} {
		if d := digits(n); d != len(strconv.FormatInt(n, 10)) {
			t.Errorf("%d: %d digits", n, d)
		}
	}
}

// TestSelectAndBan: the threshold by weight, the allowlist (and the
// built-in loopback) left out and counted, the top N; the bans asked for
// the addresses only, by policy unless a length is given.
func TestSelectAndBan(t *testing.T) {
	var s Summary
	add := func(client string, failed, probes int64) {
		c := s.newClient()
		c.Client, c.Failed, c.Probes = client, failed, probes
		if a, err := netip.ParseAddr(client); err == nil {
			c.addr = a
			if s.byAddr == nil {
				s.byAddr = map[netip.Addr]*Client{}
			}
			s.byAddr[a] = c
		} else {
			if s.byClient == nil {
				s.byClient = map[string]*Client{}
			}
			s.byClient[client] = c
		}
	}
	add("203.0.113.1", 10, 0)
	add("203.0.113.2", 4, 4) // 4 + 4*0.5 = 6
	add("203.0.113.3", 2, 0)
	add("127.0.0.1", 50, 0)
	add("198.51.100.9", 30, 0)
	add("scanner.example", 20, 0)
	w := Weights{Failure: 1, Probe: 0.5}
	kept, left := Selection{Threshold: 6, Weights: w}.Select(s.Sorted())
	if len(kept) != 4 || left != 1 { // loopback left out by the built-in allowlist
		t.Fatalf("threshold: %d kept, %d left", len(kept), left)
	}
	kept, left = Selection{Threshold: 6, Weights: w, Allowed: ban.NewAllowlist(netip.MustParsePrefix("198.51.100.0/24")), Top: 2}.Select(s.Sorted())
	if len(kept) != 2 || left != 2 || kept[0].Client != "scanner.example" || kept[1].Client != "203.0.113.1" {
		t.Fatalf("allowlist and top: %d kept (%v), %d left", len(kept), kept, left)
	}
	if all, left := (Selection{}).Select(s.Sorted()); len(all) != 6 || left != 0 {
		t.Fatalf("no selection: %d, %d", len(all), left)
	}
	reqs := BanRequests(kept, 0, WindowText(30*24*time.Hour))
	if len(reqs) != 1 || reqs[0].Prefix != netip.MustParsePrefix("203.0.113.1/32") || reqs[0].For != -1 ||
		reqs[0].Reason != "archive: 10 failed attempts in the last 30d" {
		t.Fatalf("%+v", reqs)
	}
	if r := BanRequests(kept, time.Hour, WindowText(0)); r[0].For != time.Hour || !strings.HasSuffix(r[0].Reason, "in all") {
		t.Fatalf("%+v", r)
	}
}
