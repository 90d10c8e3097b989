// Package report summarises detected events per client address: counted
// failed attempts and probes, logins, users tried, first and last seen.
// The offline report command prints it; what the daemon and its API count
// must agree with it.
package report

import (
	"fmt"
	"io"
	"math"
	"net/netip"
	"runtime"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"sshguard-go/internal/alert"
	"sshguard-go/internal/ban"
	"sshguard-go/internal/config"
	"sshguard-go/internal/control"
	"sshguard-go/internal/detect"
)

// Window holds the times from Since (when set) up to, not including, Until
// (when set). A window with either bound holds no zero time: an event whose
// time is unknown is not known to fall inside it.
type Window struct{ Since, Until time.Time }

// Back is the window from since before now up to until before now; a zero
// duration leaves its bound open.
func Back(now time.Time, since, until time.Duration) (w Window) {
	if since > 0 {
		w.Since = now.Add(-since)
	}
	if until > 0 {
		w.Until = now.Add(-until)
	}
	return w
}

// CheckFlags refuses the values of scan's and report's flags that would
// make a report quietly empty or whole: a threshold that is not a finite
// count (NaN passes every "> 0" test), a negative or empty window, no jobs.
func CheckFlags(threshold float64, since, until time.Duration, jobs, top int) error {
	switch {
	case math.IsNaN(threshold) || math.IsInf(threshold, 0) || threshold < 0:
		return fmt.Errorf("--threshold %v: give a number of attempts, 0 or more", threshold)
	case since < 0:
		return fmt.Errorf("--since %s: give how long ago, a positive duration (e.g. 24h)", short(since))
	case until < 0:
		return fmt.Errorf("--until %s: give how long ago, a positive duration (e.g. 1h)", short(until))
	case since > 0 && until >= since:
		return fmt.Errorf("--since %s --until %s: the window is empty, it ends before it starts (--since 24h --until 1h is from a day ago to an hour ago)", short(since), short(until))
	case jobs < 1:
		return fmt.Errorf("-j %d: read at least 1 input at a time", jobs)
	case top < 0:
		return fmt.Errorf("--top %d: give 0 (all) or more", top)
	}
	return nil
}

// short is d as the flags take it: 2h, 2d, not 2h0m0s or 48h0m0s.
func short(d time.Duration) string { return config.Duration(d).String() }

// Holds reports whether t falls inside w.
func (w Window) Holds(t time.Time) bool {
	if w.Since.IsZero() && w.Until.IsZero() {
		return true
	}
	return !t.IsZero() && !t.Before(w.Since) && (w.Until.IsZero() || t.Before(w.Until))
}

// WriteText writes l as a table, its columns as wide as their widest
// cell plus two spaces (as text/tabwriter lays them out, without holding
// the whole table in it: a wave's report has hundreds of thousands of rows).
func WriteText(w io.Writer, l *List) {
	header := [...]string{"ADDRESS", "FAILED", "PROBES", "LOGINS", "FIRST SEEN", "LAST SEEN"}
	var width [len(header)]int
	for i, h := range header {
		width[i] = len(h)
	}
	// The widths, measured without writing the cells out (the addresses
	// written into a scratch buffer, not made into strings), a share of
	// the clients on each core.
	s := l.s
	shares := make([][len(header)]int, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for k := range shares {
		wg.Go(func() {
			var cell []byte
			w := &shares[k]
			for _, j := range l.order[k*len(l.order)/len(shares) : (k+1)*len(l.order)/len(shares)] {
				c := s.at(j)
				cell = s.appendText(cell[:0], c)
				w[0] = max(w[0], utf8.RuneCount(cell))
				w[1] = max(w[1], digits(c.failed))
				w[2] = max(w[2], digits(c.probes))
				w[3] = max(w[3], digits(c.successes))
				w[4] = max(w[4], stampWidth(c.first, c.timed))
				w[5] = max(w[5], stampWidth(c.last, c.timed))
			}
		})
	}
	wg.Wait()
	for _, w := range shares {
		for i := range width {
			width[i] = max(width[i], w[i])
		}
	}
	pad := func(b []byte, i, from int) []byte {
		for n := width[i] + 2 - utf8.RuneCount(b[from:]); n > 0; n-- {
			b = append(b, ' ')
		}
		return b
	}
	var head []byte
	for i, h := range header {
		n := len(head)
		head = pad(append(head, h...), i, n)
	}
	w.Write(append(head, "USERS\n"...))
	l.inOrder(w, func(b []byte, c *rec, _ bool, f *stampFormat) []byte {
		n := len(b)
		b = pad(s.appendText(b, c), 0, n)
		n = len(b)
		b = pad(strconv.AppendInt(b, c.failed, 10), 1, n)
		n = len(b)
		b = pad(strconv.AppendInt(b, c.probes, 10), 2, n)
		n = len(b)
		b = pad(strconv.AppendInt(b, c.successes, 10), 3, n)
		n = len(b)
		b = pad(f.append(b, c.first, c.timed, false), 4, n)
		n = len(b)
		b = pad(f.append(b, c.last, c.timed, false), 5, n)
		shown := 0
		s.eachUser(c, func(id uint32) {
			if shown < 5 {
				if shown > 0 {
					b = append(b, ',')
				}
				b = strconv.AppendQuote(b, s.users[id])
			}
			shown++
		})
		if n := int64(max(shown-5, 0)) + c.usersMore; n > 0 {
			b = append(b, " +"...)
			b = strconv.AppendInt(b, n, 10)
			b = append(b, " more"...)
		}
		return append(b, '\n')
	})
}

// digits is how wide n is written in decimal.
func digits(n int64) int {
	w := 1
	if n < 0 {
		w, n = 2, -n
	}
	for ; n >= 10; n /= 10 {
		w++
	}
	return w
}

// stampWidth is how wide stampFormat writes st in RFC 3339: 20
// characters with "Z", 25 with an offset, for years of four digits; 1
// for "-", an unknown time.
func stampWidth(st stamp, known bool) int {
	if !known {
		return 1
	}
	if !st.fourDigitYear() {
		return len(st.time().AppendFormat(nil, time.RFC3339))
	}
	if st.off == 0 {
		return 20
	}
	return 25
}

// WriteJSON writes l as a JSON object keyed by address, in l's order.
func WriteJSON(w io.Writer, l *List) {
	w.Write([]byte{'{'})
	s := l.s
	l.inOrder(w, func(b []byte, c *rec, first bool, f *stampFormat) []byte {
		if !first {
			b = append(b, ',')
		}
		b = append(b, "\n  "...)
		if c.name != 0 {
			b = detect.AppendJSONString(b, s.names[c.name-1])
		} else { // an address needs no escaping
			b = append(s.addrOf(c).AppendTo(append(b, '"')), '"')
		}
		b = append(b, `: {"failed": `...)
		b = strconv.AppendInt(b, c.failed, 10)
		b = append(b, `, "probes": `...)
		b = strconv.AppendInt(b, c.probes, 10)
		b = append(b, `, "successes": `...)
		b = strconv.AppendInt(b, c.successes, 10)
		b = append(b, `, "users": [`...)
		n := 0
		s.eachUser(c, func(id uint32) {
			if n > 0 {
				b = append(b, ", "...)
			}
			b = detect.AppendJSONString(b, s.users[id])
			n++
		})
		b = append(b, `], "users_more": `...)
		b = strconv.AppendInt(b, c.usersMore, 10)
		b = append(b, `, "first_seen": `...)
		b = f.appendJSON(b, c.first, c.timed)
		b = append(b, `, "last_seen": `...)
		b = f.appendJSON(b, c.last, c.timed)
		return append(b, '}')
	})
	w.Write([]byte("\n}\n"))
}

// piece is how many clients one piece of the writers' output holds.
const piece = 4096

// inOrder writes f of every client of l to w, in l's order; pieces of
// clients are written at once on every core, at most two per core in
// memory, and copied out in order. first is true for l's first client.
func (l *List) inOrder(w io.Writer, f func(b []byte, c *rec, first bool, sf *stampFormat) []byte) {
	workers := runtime.GOMAXPROCS(0)
	pieces := make(chan chan []byte, 2*workers) // in list order; each gets its bytes
	free := make(chan []byte, 3*workers)        // buffers written out, for reuse: no garbage
	go func() {
		defer close(pieces)
		sem := make(chan struct{}, workers)
		for start := 0; start < len(l.order); start += piece {
			out := make(chan []byte, 1)
			pieces <- out
			sem <- struct{}{}
			go func() {
				defer func() { <-sem }()
				var b []byte
				select {
				case b = <-free:
				default:
				}
				var sf stampFormat
				for i, j := range l.order[start:min(start+piece, len(l.order))] {
					b = f(b, l.s.at(j), start+i == 0, &sf)
				}
				out <- b
			}()
		}
	}()
	for out := range pieces {
		b := <-out
		w.Write(b)
		select {
		case free <- b[:0]:
		default:
		}
	}
}

// stampFormat writes stamps in RFC 3339 as time.Time.AppendFormat does,
// the dates of the days it wrote kept (8 of them, by the day's number):
// the clients of a report are written by the million, most of them from
// a few days, in address order.
type stampFormat struct {
	days [8]struct {
		day  int64 // days since 1970, in the zone's local time; valid with ok
		date [11]byte
		ok   bool
	}
}

// append appends st in RFC 3339 (with nanos: RFC3339Nano), or "-" when
// it is not known.
func (f *stampFormat) append(b []byte, st stamp, known, nanos bool) []byte {
	if !known {
		return append(b, '-')
	}
	local := st.sec + int64(st.off)
	day := local / 86400
	if local%86400 < 0 {
		day--
	}
	if !st.fourDigitYear() { // as time writes them
		layout := time.RFC3339
		if nanos {
			layout = time.RFC3339Nano
		}
		return st.time().AppendFormat(b, layout)
	}
	d := &f.days[day&7]
	if !d.ok || d.day != day {
		time.Unix(day*86400, 0).UTC().AppendFormat(d.date[:0], "2006-01-02T")
		d.day, d.ok = day, true
	}
	b = append(b, d.date[:]...)
	sec := local - day*86400
	b = append2(b, int(sec/3600))
	b = append(b, ':')
	b = append2(b, int(sec/60%60))
	b = append(b, ':')
	b = append2(b, int(sec%60))
	if nanos {
		b = detect.AppendFraction(b, int(st.nsec))
	}
	if st.off == 0 {
		return append(b, 'Z')
	}
	zone := st.off / 60 // minutes, as time writes it
	if zone < 0 {
		b = append(b, '-')
		zone = -zone
	} else {
		b = append(b, '+')
	}
	b = append2(b, int(zone/60))
	b = append(b, ':')
	return append2(b, int(zone%60))
}

// The local times, in seconds since 1970, of the years 1000 and 10000.
var (
	year1000  = time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	year10000 = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
)

// fourDigitYear reports whether st's year, in its zone, has four digits.
func (st stamp) fourDigitYear() bool {
	local := st.sec + int64(st.off)
	return local >= year1000 && local < year10000
}

// appendJSON appends st in RFC3339Nano between quotes, or null.
func (f *stampFormat) appendJSON(b []byte, st stamp, known bool) []byte {
	if !known {
		return append(b, "null"...)
	}
	b = append(b, '"')
	b = f.append(b, st, true, true)
	return append(b, '"')
}

// append2 appends n (0..99) in two digits.
func append2(b []byte, n int) []byte {
	return append(b, byte('0'+n/10), byte('0'+n%10))
}

// Weights are what a failed attempt and a probe count for (the
// configuration's detection weights).
type Weights struct{ Failure, Probe float64 }

// attempts is c's weighted attempts.
func (w Weights) attempts(c *rec) float64 {
	return float64(c.failed)*w.Failure + float64(c.probes)*w.Probe
}

// Allowlist is what a report leaves out: the configuration's ban.allow
// (its host names are not resolved offline: left out) and the addresses
// and prefixes given (--allow); nil when there are none.
func Allowlist(configured, given []string) (*ban.Allowlist, error) {
	var entries []netip.Prefix
	for _, a := range configured {
		if p, err := config.ParsePrefix(a); err == nil {
			entries = append(entries, p)
		}
	}
	for _, a := range given {
		p, err := config.ParsePrefix(a)
		if err != nil {
			return nil, fmt.Errorf("--allow: %w", err)
		}
		entries = append(entries, p)
	}
	if len(entries) == 0 {
		return nil, nil
	}
	return ban.NewAllowlist(entries...), nil
}

// Selection is what a report keeps of its clients.
type Selection struct {
	Threshold float64        // weighted attempts at least this (0: all)
	Weights   Weights        // what a failed attempt and a probe weigh
	Allowed   *ban.Allowlist // left out (nil: only the built-in loopback and the like, when a threshold is set)
	Top       int            // the first this many (0: all)
}

// Select keeps what sel asks of l, in l's order, and says how many
// allowlisted clients it left out.
func (sel Selection) Select(l *List) (kept *List, left int) {
	kept = l
	if sel.Threshold > 0 || sel.Allowed != nil {
		allowed := sel.Allowed
		if allowed == nil {
			allowed = ban.NewAllowlist()
		}
		kept = &List{s: l.s}
		for _, j := range l.order {
			c := l.s.at(j)
			if c.fam != famName {
				a := l.s.addrOf(c).WithZone("")
				if allowed.Covers(netip.PrefixFrom(a, a.BitLen())) {
					left++
					continue
				}
			}
			if sel.Weights.attempts(c) >= sel.Threshold {
				kept.order = append(kept.order, j)
			}
		}
	}
	if sel.Top > 0 && len(kept.order) > sel.Top {
		kept = &List{s: l.s, order: kept.order[:sel.Top]}
	}
	return kept, left
}

// WindowText names the window of --since d for a message: "the last
// 24h", or "all" when d is 0.
func WindowText(d time.Duration) string {
	if d <= 0 {
		return "all"
	}
	text, _ := config.Duration(d).MarshalText() // as the configuration writes it: 30d, 1h
	return "the last " + string(text)
}

// BanRequests are the bans report --ban asks for: l's addresses (not
// the clients known by name only), for d (0: by the ban policy, escalated),
// with the reason "archive: N failed attempts in WINDOW", origin archive,
// never self (the address of the caller's own SSH session) without force.
func BanRequests(l *List, d time.Duration, window string, self netip.Addr) []control.BanRequest {
	reqs := make([]control.BanRequest, 0, len(l.order))
	for _, j := range l.order {
		c := l.s.at(j)
		if c.fam != famName {
			a := l.s.addrOf(c).WithZone("")
			reqs = append(reqs, control.BanRequest{Prefix: netip.PrefixFrom(a, a.BitLen()), For: max(d, 0), Origin: "archive", Self: self,
				Reason: fmt.Sprintf("archive: %d failed attempts in %s", c.failed, window)})
		}
	}
	return reqs
}

// Offenders is l for an alert (report --notify).
func Offenders(l *List, w Weights) []alert.Offender {
	out := make([]alert.Offender, 0, len(l.order))
	for _, j := range l.order {
		r := l.s.at(j)
		c := l.s.client(r)
		out = append(out, alert.Offender{Addr: c.Client, Failed: c.Failed, Probes: c.Probes, Users: c.Users[:min(len(c.Users), 8)], Attempts: w.attempts(r)})
	}
	return out
}
