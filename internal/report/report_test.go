package report

import (
	"bytes"
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"sshguard-go/internal/ban"
	"sshguard-go/internal/detect"
)

func record(kind detect.Kind, ip, user string, counted int, at time.Time) *detect.Record {
	r := &detect.Record{}
	r.Kind, r.Addr, r.User, r.Counted, r.Time = kind, netip.MustParseAddr(ip), user, counted, at
	return r
}

func TestSummary(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	s := Summary{Window: Window{Since: now.Add(-time.Hour)}}
	s.Add(record(detect.KindFailure, "192.0.2.1", "root", 1, now))
	s.Add(record(detect.KindFailure, "192.0.2.1", "root", 0, now)) // a second line of the same guess
	s.Add(record(detect.KindProbe, "192.0.2.2", "", 1, now))
	s.Add(record(detect.KindProbe, "192.0.2.2", "", 1, now))
	s.Add(record(detect.KindFailure, "192.0.2.3", "admin", 1, now.Add(-2*time.Hour))) // before Since
	s.Add(record(detect.KindSuccess, "192.0.2.1", "alice", 0, now))
	list := s.Sorted()
	if len(list) != 2 || list[0].Client != "192.0.2.1" || list[0].Failed != 1 || list[0].Successes != 1 ||
		strings.Join(list[0].Users, ",") != "root,alice" || list[1].Probes != 2 {
		t.Fatalf("summary %+v %+v", list[0], list[1])
	}
	var b strings.Builder
	WriteJSON(&b, s.List())
	if !strings.Contains(b.String(), `"192.0.2.1": {"failed": 1, "probes": 0, "successes": 1, "users": ["root", "alice"]`) {
		t.Fatalf("JSON %s", b.String())
	}
}

func TestSummaryUntil(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	s := Summary{Window: Window{Since: now.Add(-2 * time.Hour), Until: now.Add(-time.Hour)}}
	s.Add(record(detect.KindFailure, "192.0.2.1", "root", 1, now.Add(-90*time.Minute)))
	s.Add(record(detect.KindFailure, "192.0.2.2", "root", 1, now.Add(-30*time.Minute))) // after Until
	s.Add(record(detect.KindFailure, "192.0.2.3", "root", 1, now.Add(-3*time.Hour)))    // before Since
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
		s.Add(record(detect.KindFailure, fmt.Sprintf("192.0.2.%d", i), fmt.Sprintf("user%d", i%7), 1+i%3, now.Add(time.Duration(i)*time.Minute)))
	}
	for i := range 9 {
		s.Add(record(detect.KindFailure, "2001:db8:ffff:ffff::1234", fmt.Sprintf("u\"%d", i), 1000, time.Time{}))
	}
	r := &detect.Record{}
	r.Kind, r.User, r.Time, r.ClientHost = detect.KindSuccess, "bjørn", now, "hôte-été.example"
	s.Add(r)
	list := s.Sorted()
	var got, want bytes.Buffer
	WriteText(&got, s.List())
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
// full. Checked against the rule written plainly, on random clients,
// enough of them for the sort to split them across 4 goroutines.
func TestSortOrder(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 4))
	var s Summary
	for s.Len() < 40000 {
		var i int32
		switch rnd.IntN(4) {
		case 0:
			i = s.findAddr(netip.AddrFrom4([4]byte{10, byte(rnd.IntN(3)), byte(rnd.IntN(256)), byte(rnd.IntN(256))}))
		case 1:
			i = s.findAddr(netip.MustParseAddr(fmt.Sprintf("2001:db8::%x", rnd.IntN(4000))))
		case 2:
			i = s.findAddr(netip.MustParseAddr(fmt.Sprintf("fe80::%x%%eth%d", rnd.IntN(3), rnd.IntN(2))))
		default:
			i = s.raw(fmt.Sprint("host-", rnd.IntN(100000)), netip.Addr{})
		}
		huge := []int64{0, 1, 2, 1<<23 - 2, 1 << 23, 1<<23 + 5, 1 << 40}
		c := s.at(i)
		c.failed, c.probes, c.successes = huge[rnd.IntN(len(huge))], huge[rnd.IntN(3)]+int64(rnd.IntN(2))<<19, int64(rnd.IntN(2))
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(4))
	got := s.Sorted()
	want := slices.Clone(got)
	slices.SortFunc(want, func(a, b *Client) int {
		if c := cmp.Or(cmp.Compare(b.Failed, a.Failed), cmp.Compare(b.Probes, a.Probes), cmp.Compare(b.Successes, a.Successes)); c != 0 {
			return c
		}
		aa, aerr := netip.ParseAddr(a.Client)
		ba, berr := netip.ParseAddr(b.Client)
		switch {
		case aerr == nil && berr == nil:
			return aa.Compare(ba)
		case aerr == nil:
			return -1
		case berr == nil:
			return 1
		}
		return strings.Compare(a.Client, b.Client)
	})
	for i := range got {
		if got[i].Client != want[i].Client {
			t.Fatalf("at %d: %s (%d/%d/%d), want %s (%d/%d/%d)", i, got[i].Client, got[i].Failed, got[i].Probes, got[i].Successes,
				want[i].Client, want[i].Failed, want[i].Probes, want[i].Successes)
		}
	}
}

// TestStampFormat: stamps are written as time.Time.AppendFormat writes
// them in RFC 3339 and RFC3339Nano, whatever the zone, the fraction and
// the year, and the widths WriteText measures are those it writes.
func TestStampFormat(t *testing.T) {
	rnd := rand.New(rand.NewPCG(5, 6))
	zones := []*time.Location{time.UTC, time.FixedZone("x", 5*3600+1800), time.FixedZone("utc-ish", 0), time.FixedZone("", -30),
		time.FixedZone("lmt", -(17*60 + 30)), time.FixedZone("", -9*3600), time.FixedZone("", 14*3600)}
	if ny, err := time.LoadLocation("America/New_York"); err == nil {
		zones = append(zones, ny)
	}
	times := []time.Time{time.Date(2026, 11, 30, 1, 2, 3, 4, time.UTC), time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(999, 12, 31, 23, 59, 59, 0, time.UTC), time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(12026, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(1969, 12, 31, 23, 59, 59, 500, time.UTC), time.Date(-5, 3, 1, 0, 0, 0, 0, time.UTC)}
	for range 2000 {
		times = append(times, time.Unix(rnd.Int64N(4e9)-1e9, rnd.Int64N(1e9)*int64(rnd.IntN(2))))
	}
	var f stampFormat
	for _, tm := range times {
		for _, z := range zones {
			tm := tm.In(z)
			st := stampOf(tm)
			for _, layout := range []string{time.RFC3339, time.RFC3339Nano} {
				want := tm.AppendFormat(nil, layout)
				if got := f.append(nil, st, true, layout == time.RFC3339Nano); string(got) != string(want) {
					t.Fatalf("%v in %s: %q, want %q", tm, layout, got, want)
				}
			}
			if w := stampWidth(st, true); w != len(tm.AppendFormat(nil, time.RFC3339)) {
				t.Errorf("%v: width %d, written %q", tm, w, tm.AppendFormat(nil, time.RFC3339))
			}
		}
	}
	if got := f.append(nil, stamp{}, false, false); string(got) != "-" || stampWidth(stamp{}, false) != 1 {
		t.Errorf("an unknown time: %q", got)
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
		var i int32
		if a, err := netip.ParseAddr(client); err == nil {
			i = s.findAddr(a)
		} else {
			i = s.raw(client, netip.Addr{})
		}
		s.at(i).failed, s.at(i).probes = failed, probes
	}
	add("203.0.113.1", 10, 0)
	add("203.0.113.2", 4, 4) // 4 + 4*0.5 = 6
	add("203.0.113.3", 2, 0)
	add("127.0.0.1", 50, 0)
	add("198.51.100.9", 30, 0)
	add("scanner.example", 20, 0)
	w := Weights{Failure: 1, Probe: 0.5}
	kept, left := Selection{Threshold: 6, Weights: w}.Select(s.List())
	if kept.Len() != 4 || left != 1 { // loopback left out by the built-in allowlist
		t.Fatalf("threshold: %d kept, %d left", kept.Len(), left)
	}
	kept, left = Selection{Threshold: 6, Weights: w, Allowed: ban.NewAllowlist(netip.MustParsePrefix("198.51.100.0/24")), Top: 2}.Select(s.List())
	if kc := kept.Clients(); len(kc) != 2 || left != 2 || kc[0].Client != "scanner.example" || kc[1].Client != "203.0.113.1" {
		t.Fatalf("allowlist and top: %d kept (%v), %d left", kept.Len(), kept.Clients(), left)
	}
	if all, left := (Selection{}).Select(s.List()); all.Len() != 6 || left != 0 {
		t.Fatalf("no selection: %d, %d", all.Len(), left)
	}
	self := netip.MustParseAddr("198.51.100.4")
	reqs := BanRequests(kept, 0, WindowText(30*24*time.Hour), self)
	if len(reqs) != 1 || reqs[0].Prefix != netip.MustParsePrefix("203.0.113.1/32") || reqs[0].For != 0 || reqs[0].Origin != "archive" || reqs[0].Self != self ||
		reqs[0].Reason != "archive: 10 failed attempts in the last 30d" {
		t.Fatalf("%+v", reqs)
	}
	if r := BanRequests(kept, time.Hour, WindowText(0), netip.Addr{}); r[0].For != time.Hour || !strings.HasSuffix(r[0].Reason, "in all") {
		t.Fatalf("%+v", r)
	}
}

// TestProbeTakenBackWeighsAsTheDaemon: OpenSSH 9.2's connections that
// offered a refused key, then closed while authenticating, weigh one
// failure each at --threshold, as the daemon weighs them (they weighed
// 1.5: four crossed 5), or the probe when probes weigh more; the lines
// counted are still listed.
func TestProbeTakenBackWeighsAsTheDaemon(t *testing.T) {
	var s Summary
	var sc detect.Scanner
	sc.SetRef(time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC))
	data, err := os.ReadFile("../../testdata/samples/openssh-9.2-key-refused.log")
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		sc.Line("auth.log", int64(i+1), l, s.Add)
	}
	sc.Flush(s.Add)
	if c := s.Sorted(); len(c) != 1 || c[0].Client != "10.77.0.6" || c[0].Failed != 4 || c[0].Probes != 4 {
		t.Fatalf("summary %+v", c)
	}
	for _, c := range []struct {
		w         Weights
		threshold float64
		kept      int
	}{{Weights{1, 0.5}, 5, 0}, {Weights{1, 0.5}, 4, 1}, {Weights{1, 0}, 4, 1}, {Weights{0.5, 1}, 4, 1}, {Weights{0.5, 1}, 4.5, 0}} {
		if kept, _ := (Selection{Threshold: c.threshold, Weights: c.w}).Select(s.List()); kept.Len() != c.kept {
			t.Errorf("weights %+v, threshold %g: %d kept, want %d", c.w, c.threshold, kept.Len(), c.kept)
		}
	}
}

// TestAddrTable: addresses that differ in one part only (the last bits
// of an IPv4 range, the interface IDs of one IPv6 /64, the prefixes
// before a fixed ID) are each found again at their own position; IPv4
// and the same bits as IPv4-mapped IPv6 are two clients; the table
// stays at most 70% full and probes stay short.
func TestAddrTable(t *testing.T) {
	var s Summary
	var addrs []netip.Addr
	for i := range 30000 {
		addrs = append(addrs,
			netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}),
			netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 8: byte(i >> 24), 9: byte(i >> 16), 14: byte(i >> 8), 15: byte(i)}),
			netip.AddrFrom16([16]byte{0x20, 0x02, byte(i >> 8), byte(i), 15: 1}))
	}
	addrs = append(addrs, netip.MustParseAddr("::ffff:10.0.0.1"), netip.MustParseAddr("fe80::1%eth0"))
	for round := range 2 {
		for i, a := range addrs {
			if got := s.findAddr(a); got != int32(i) {
				t.Fatalf("round %d: %v at %d, want %d", round, a, got, i)
			}
		}
	}
	if s.Len() != len(addrs) {
		t.Fatalf("%d clients, want %d", s.Len(), len(addrs))
	}
	tab := &s.byAddr
	if 10*tab.n > 7*len(tab.slots) {
		t.Fatalf("%d keys in %d slots", tab.n, len(tab.slots))
	}
	longest, run := 0, 0 // the longest run of used slots bounds every probe
	for _, sl := range append(tab.slots, tab.slots...) {
		if sl.i == 0 {
			run = 0
			continue
		}
		run++
		longest = max(longest, run)
	}
	if longest > 200 {
		t.Fatalf("a run of %d used slots", longest)
	}
	t.Logf("%d keys, %d slots, longest run %d", tab.n, len(tab.slots), longest)
}

// TestSummaryAgainstReference: a Summary counts as the rule written
// plainly does (a map of clients by their text), over random events:
// IPv4, IPv6, IPv4-mapped and zoned addresses, names, every kind, users
// past the bound of 200, times in several zones and unknown times.
func TestSummaryAgainstReference(t *testing.T) {
	rnd := rand.New(rand.NewPCG(7, 8))
	zones := []*time.Location{time.UTC, time.FixedZone("", 3600), time.FixedZone("x", -5*3600-1800), time.Local}
	base := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	events := func(n, users int) []*detect.Record {
		var out []*detect.Record
		for range n {
			r := &detect.Record{}
			switch rnd.IntN(6) {
			case 0, 1:
				r.Addr = netip.AddrFrom4([4]byte{192, 0, 2, byte(rnd.IntN(200))})
			case 2:
				r.Addr = netip.MustParseAddr(fmt.Sprintf("2001:db8::%x", rnd.IntN(300)))
			case 3:
				r.Addr = netip.MustParseAddr(fmt.Sprintf("::ffff:192.0.2.%d", rnd.IntN(20)))
			case 4:
				r.Addr = netip.MustParseAddr(fmt.Sprintf("fe80::%x%%eth%d", rnd.IntN(5), rnd.IntN(2)))
			default:
				if rnd.IntN(10) > 0 {
					r.ClientHost = fmt.Sprintf("host-%d.example", rnd.IntN(50))
				}
			}
			r.Kind = []detect.Kind{detect.KindFailure, detect.KindProbe, detect.KindSuccess, detect.KindSessionClose}[rnd.IntN(4)]
			r.Counted = rnd.IntN(3)
			if rnd.IntN(5) > 0 {
				r.User = fmt.Sprint("u", rnd.IntN(users))
			}
			if rnd.IntN(20) > 0 {
				r.Time = base.Add(time.Duration(rnd.Int64N(3 * 24 * 3600e9))).In(zones[rnd.IntN(len(zones))])
			}
			out = append(out, r)
		}
		return out
	}
	reference := func(recs []*detect.Record) map[string]*Client {
		ref := map[string]*Client{}
		for _, r := range recs {
			k := r.ClientHost
			if r.Addr.IsValid() {
				k = r.Addr.String()
			}
			if k == "" {
				continue
			}
			c := ref[k]
			if c == nil {
				c = &Client{Client: k}
				ref[k] = c
			}
			switch r.Kind {
			case detect.KindFailure:
				c.Failed += int64(r.Counted)
			case detect.KindProbe:
				c.Probes += int64(r.Counted)
			case detect.KindSuccess:
				c.Successes++
			}
			if r.User != "" && (r.Kind == detect.KindFailure || r.Kind == detect.KindSuccess) && !slices.Contains(c.Users, r.User) {
				if len(c.Users) < maxUsers {
					c.Users = append(c.Users, r.User)
				} else {
					c.UsersMore++
				}
			}
			if !r.Time.IsZero() {
				if c.First.IsZero() || r.Time.Before(c.First) {
					c.First = r.Time
				}
				if r.Time.After(c.Last) {
					c.Last = r.Time
				}
			}
		}
		return ref
	}
	check := func(name string, got []*Client, ref map[string]*Client) {
		t.Helper()
		if len(got) != len(ref) {
			t.Fatalf("%s: %d clients, want %d", name, len(got), len(ref))
		}
		for _, c := range got {
			w := ref[c.Client]
			if w == nil {
				t.Fatalf("%s: %s is no client", name, c.Client)
			}
			_, off := c.First.Zone()
			_, woff := w.First.Zone()
			if c.Failed != w.Failed || c.Probes != w.Probes || c.Successes != w.Successes || c.UsersMore != w.UsersMore ||
				!slices.Equal(c.Users, w.Users) || !c.First.Equal(w.First) || !c.Last.Equal(w.Last) || off != woff {
				t.Fatalf("%s: %+v, want %+v", name, c, w)
			}
		}
	}
	all := events(60000, 400) // some clients try more than 200 users
	var s Summary
	for _, r := range all {
		s.Add(r)
	}
	ref := reference(all)
	check("one summary", s.Sorted(), ref)
	if slices.IndexFunc(s.Sorted(), func(c *Client) bool { return c.UsersMore > 0 }) < 0 {
		t.Fatal("no client went past the bound of users")
	}

}

// TestAllowlist: the configuration's host names are left out offline,
// its addresses and prefixes and the --allow ones kept; an --allow value
// that is no address or prefix is refused, naming the flag.
func TestAllowlist(t *testing.T) {
	a, err := Allowlist([]string{"office.example", "10.0.0.0/8"}, []string{"192.0.2.7"})
	if err != nil || a == nil || !a.Covers(netip.MustParsePrefix("10.1.2.3/32")) || !a.Covers(netip.MustParsePrefix("192.0.2.7/32")) ||
		a.Covers(netip.MustParsePrefix("192.0.2.8/32")) {
		t.Fatalf("%v, %v", a, err)
	}
	if a, err := Allowlist([]string{"office.example"}, nil); a != nil || err != nil {
		t.Fatalf("only a host name: %v, %v", a, err)
	}
	if _, err := Allowlist(nil, []string{"10.0.0.0/33"}); err == nil || !strings.Contains(err.Error(), `--allow: "10.0.0.0/33"`) {
		t.Fatalf("a bad --allow: %v", err)
	}
}
