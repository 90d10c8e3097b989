// Package report summarises detected events per client address: counted
// failed attempts and probes, logins, users tried, first and last seen.
// The offline report command prints it; what the daemon and its API count
// must agree with it.
package report

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"net/netip"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"sshguard-go/internal/alert"
	"sshguard-go/internal/ban"
	"sshguard-go/internal/config"
	"sshguard-go/internal/control"
	"sshguard-go/internal/detect"
)

// maxUsers bounds the distinct user names kept per address; the count
// beyond it is still exact in UsersMore.
const maxUsers = 200

// Client is one address's line in a report.
type Client struct {
	Client    string
	Failed    int64 // counted failed attempts
	Probes    int64 // counted probes
	Successes int64
	Users     []string // distinct users tried or logged in, in first-seen order
	usersSet  map[string]struct{}
	UsersMore int64 // distinct users beyond maxUsers
	First     time.Time
	Last      time.Time
	addr      netip.Addr // Client's address, when it is one
}

// Add counts r for c.
func (c *Client) Add(r *detect.Record) { c.add(eventOf(r)) }

// event is what a Summary counts of a record: a third of its size, for
// the batches a Collector hands its workers.
type event struct {
	addr    netip.Addr
	host    string // the client's name when sshd logged no address
	user    string
	time    time.Time
	kind    detect.Kind
	counted int32
}

func eventOf(r *detect.Record) event {
	return event{addr: r.Addr, host: r.ClientHost, user: r.User, time: r.Time, kind: r.Kind, counted: int32(r.Counted)}
}

func (c *Client) add(r event) {
	switch r.kind {
	case detect.KindFailure:
		c.Failed += int64(r.counted)
	case detect.KindProbe:
		c.Probes += int64(r.counted)
	case detect.KindSuccess:
		c.Successes++
	}
	if r.user != "" && (r.kind == detect.KindFailure || r.kind == detect.KindSuccess) && !c.tried(r.user) {
		if len(c.Users) < maxUsers {
			u := strings.Clone(r.user)
			if c.usersSet != nil {
				c.usersSet[u] = struct{}{}
			} else if len(c.Users) == smallUsers {
				// Past a few names a set finds them; most clients try few
				// (a map per client doubled report's time on a wave).
				c.usersSet = make(map[string]struct{}, 2*smallUsers)
				for _, v := range append(c.Users, u) {
					c.usersSet[v] = struct{}{}
				}
			}
			c.Users = append(c.Users, u)
		} else {
			c.UsersMore++ // may count a name twice past the bound; documented as approximate
		}
	}
	if !r.time.IsZero() {
		if c.First.IsZero() || r.time.Before(c.First) {
			c.First = r.time
		}
		if r.time.After(c.Last) {
			c.Last = r.time
		}
	}
}

// smallUsers is how many user names a client's list holds before a set
// is made to look them up.
const smallUsers = 8

// tried reports whether c has u among its users.
func (c *Client) tried(u string) bool {
	if c.usersSet != nil {
		_, ok := c.usersSet[u]
		return ok
	}
	return slices.Contains(c.Users, u)
}

// Summary gathers Clients by address. Its zero value is empty and ready.
type Summary struct {
	byAddr   map[netip.Addr]*Client // clients by address: no string made per event
	byClient map[string]*Client     // clients known by name only
	slab     []Client               // where new clients go: one allocation per slabSize
	slabs    [][]Client             // every slab, the current one last: the clients in memory order
	adopted  bool                   // Merge took clients of another summary: they are in no slab here
	Window                          // the events counted
}

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

// short is d as a person writes it: 2h, not 2h0m0s.
func short(d time.Duration) string {
	t := d.String()
	if strings.HasSuffix(t, "m0s") {
		t = strings.TrimSuffix(t, "0s")
	}
	if strings.HasSuffix(t, "h0m") {
		t = strings.TrimSuffix(t, "0m")
	}
	return t
}

// Holds reports whether t falls inside w.
func (w Window) Holds(t time.Time) bool {
	if w.Since.IsZero() && w.Until.IsZero() {
		return true
	}
	return !t.IsZero() && !t.Before(w.Since) && (w.Until.IsZero() || t.Before(w.Until))
}

// Add counts r for its client (records without one are left out).
func (s *Summary) Add(r *detect.Record) {
	if s.Holds(r.Time) {
		s.add(eventOf(r))
	}
}

func (s *Summary) add(r event) {
	var c *Client
	switch {
	case r.addr.IsValid():
		if c = s.byAddr[r.addr]; c == nil {
			if s.byAddr == nil {
				s.byAddr = map[netip.Addr]*Client{}
			}
			c = s.newClient()
			c.Client, c.addr = r.addr.String(), r.addr
			s.byAddr[r.addr] = c
		}
	case r.host != "":
		if c = s.byClient[r.host]; c == nil {
			if s.byClient == nil {
				s.byClient = map[string]*Client{}
			}
			c = s.newClient()
			c.Client = strings.Clone(r.host)
			s.byClient[c.Client] = c
		}
	default:
		return
	}
	c.add(r)
}

// slabSize is how many clients are allocated at once.
const slabSize = 1024

// newClient returns a zero Client that stays where it is.
func (s *Summary) newClient() *Client {
	if len(s.slab) == cap(s.slab) {
		s.slab = make([]Client, 0, slabSize) // the full one stays, referenced by its clients
		s.slabs = append(s.slabs, nil)
	}
	s.slab = s.slab[:len(s.slab)+1]
	s.slabs[len(s.slabs)-1] = s.slab
	return &s.slab[len(s.slab)-1]
}

// Merge adds the clients of o to s (the summaries of inputs read apart).
func (s *Summary) Merge(o *Summary) {
	for a, oc := range o.byAddr {
		if c := s.byAddr[a]; c != nil {
			c.merge(oc)
		} else {
			if s.byAddr == nil {
				s.byAddr = map[netip.Addr]*Client{}
			}
			s.byAddr[a], s.adopted = oc, true
		}
	}
	for h, oc := range o.byClient {
		if c := s.byClient[h]; c != nil {
			c.merge(oc)
		} else {
			if s.byClient == nil {
				s.byClient = map[string]*Client{}
			}
			s.byClient[h], s.adopted = oc, true
		}
	}
}

// merge adds o's counts and users to c.
func (c *Client) merge(o *Client) {
	c.Failed += o.Failed
	c.Probes += o.Probes
	c.Successes += o.Successes
	c.UsersMore += o.UsersMore
	for _, u := range o.Users {
		if c.tried(u) {
			continue
		}
		if len(c.Users) >= maxUsers {
			c.UsersMore++
			continue
		}
		if c.usersSet != nil {
			c.usersSet[u] = struct{}{}
		}
		c.Users = append(c.Users, u)
	}
	if !o.First.IsZero() && (c.First.IsZero() || o.First.Before(c.First)) {
		c.First = o.First
	}
	if o.Last.After(c.Last) {
		c.Last = o.Last
	}
}

// Sorted returns the clients by failed attempts, then probes, then logins,
// then address (in numeric order; clients known by name only after them, by
// name).
func (s *Summary) Sorted() []*Client {
	keys := s.keys()
	slices.SortFunc(keys, compareKeys)
	return clients(keys)
}

// key is what Sorted orders a client by, held in one array rather than
// reached through the pointers: with hundreds of thousands of clients,
// most tied on the counts, following each pointer to compare cost more
// than the rest of the report.
type key struct {
	w1     uint64 // the counts, packed so that more sorts first, and the family
	hi, lo uint64 // the address's 128 bits (IPv4 mapped)
	c      *Client
}

// Bits of the counts in key.w1; a count past its bits is clamped there
// and compared in full on a tie (compareKeys).
const (
	failedBits  = 23
	probesBits  = 19
	successBits = 19
)

func clamp(n int64, bits uint) (uint64, bool) {
	if max := int64(1)<<bits - 1; n >= max {
		return uint64(max), true
	}
	return uint64(max(n, 0)), false
}

// keyOf is c's sort key: 32 bytes compared as three integers, most of
// the time (a wave's report sorts hundreds of thousands, most tied on
// the counts).
func keyOf(c *Client) key {
	f, fs := clamp(c.Failed, failedBits)
	p, ps := clamp(c.Probes, probesBits)
	sc, ss := clamp(c.Successes, successBits)
	counts := f<<(probesBits+successBits) | p<<successBits | sc
	var sat uint64 // a count clamped: this key compares its counts in full
	if fs || ps || ss {
		sat = 1
	}
	fam := uint64(3) // a name, no address: after the addresses
	k := key{c: c}
	if c.addr.IsValid() {
		b := c.addr.As16()
		k.hi, k.lo = binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
		fam = 2
		if c.addr.Is4() {
			fam = 1 // IPv4 before IPv6, as netip orders them
		}
	}
	k.w1 = (^counts&(1<<61-1))<<3 | sat<<2 | fam
	return k
}

func (s *Summary) keys() []key {
	keys := make([]key, 0, len(s.byAddr)+len(s.byClient))
	if !s.adopted { // the slabs hold every client: read them in order, not the maps at random
		for _, slab := range s.slabs {
			for i := range slab {
				keys = append(keys, keyOf(&slab[i]))
			}
		}
		return keys
	}
	for _, c := range s.byAddr {
		keys = append(keys, keyOf(c))
	}
	for _, c := range s.byClient {
		keys = append(keys, keyOf(c))
	}
	return keys
}

func compareKeys(a, b key) int {
	if (a.w1|b.w1)&4 != 0 { // a count past its bits (rare): the counts in full, then the family
		if c := cmp.Or(cmp.Compare(b.c.Failed, a.c.Failed), cmp.Compare(b.c.Probes, a.c.Probes), cmp.Compare(b.c.Successes, a.c.Successes),
			cmp.Compare(a.w1&3, b.w1&3)); c != 0 {
			return c
		}
	} else if a.w1 != b.w1 {
		if a.w1 < b.w1 {
			return -1
		}
		return 1
	}
	if a.w1&3 == 3 {
		return strings.Compare(a.c.Client, b.c.Client)
	}
	if a.hi != b.hi {
		if a.hi < b.hi {
			return -1
		}
		return 1
	}
	if a.lo != b.lo {
		if a.lo < b.lo {
			return -1
		}
		return 1
	}
	return a.c.addr.Compare(b.c.addr) // zones
}

func clients(keys []key) []*Client {
	list := make([]*Client, len(keys))
	for i := range keys {
		list[i] = keys[i].c
	}
	return list
}

// WriteText writes list as a table, its columns as wide as their widest
// cell plus two spaces (as text/tabwriter lays them out, without holding
// the whole table in it: a wave's report has hundreds of thousands of rows).
func WriteText(w io.Writer, list []*Client) {
	header := [...]string{"ADDRESS", "FAILED", "PROBES", "LOGINS", "FIRST SEEN", "LAST SEEN"}
	var width [len(header)]int
	for i, h := range header {
		width[i] = len(h)
	}
	// The widths, measured without writing the cells out.
	for _, c := range list {
		width[0] = max(width[0], utf8.RuneCountInString(c.Client))
		width[1] = max(width[1], digits(c.Failed))
		width[2] = max(width[2], digits(c.Probes))
		width[3] = max(width[3], digits(c.Successes))
		width[4] = max(width[4], timeWidth(c.First))
		width[5] = max(width[5], timeWidth(c.Last))
	}
	pad := func(b []byte, i int, cell []byte) []byte {
		b = append(b, cell...)
		for n := width[i] + 2 - utf8.RuneCount(cell); n > 0; n-- {
			b = append(b, ' ')
		}
		return b
	}
	var head []byte
	for i, h := range header {
		head = pad(head, i, []byte(h))
	}
	w.Write(append(head, "USERS\n"...))
	inOrder(w, list, jsonPiece, func(b []byte, c *Client, _ bool) []byte {
		var cell [32]byte
		b = pad(b, 0, []byte(c.Client))
		b = pad(b, 1, strconv.AppendInt(cell[:0], c.Failed, 10))
		b = pad(b, 2, strconv.AppendInt(cell[:0], c.Probes, 10))
		b = pad(b, 3, strconv.AppendInt(cell[:0], c.Successes, 10))
		b = pad(b, 4, appendTime(cell[:0], c.First))
		b = pad(b, 5, appendTime(cell[:0], c.Last))
		shown := min(len(c.Users), 5)
		for i, u := range c.Users[:shown] {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendQuote(b, u)
		}
		if n := int64(len(c.Users)-shown) + c.UsersMore; n > 0 {
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

// timeWidth is how wide appendTime writes t: RFC 3339 is 20 characters
// with "Z", 25 with an offset, for years of four digits.
func timeWidth(t time.Time) int {
	if t.IsZero() {
		return 1
	}
	if y := t.Year(); y < 1000 || y > 9999 {
		return len(appendTime(nil, t))
	}
	if _, off := t.Zone(); off == 0 {
		return 20
	}
	return 25
}

// appendTime appends t in RFC 3339, or - when it is unknown.
func appendTime(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(b, '-')
	}
	return t.AppendFormat(b, time.RFC3339)
}

// WriteJSON writes list as a JSON object keyed by address, in list's order.
// Pieces of the list are encoded on every core at once and written in
// order (a wave's report has hundreds of thousands of clients).
func WriteJSON(w io.Writer, list []*Client) {
	w.Write([]byte{'{'})
	inOrder(w, list, jsonPiece, func(b []byte, c *Client, first bool) []byte {
		if !first {
			b = append(b, ',')
		}
		return appendClientJSON(b, c)
	})
	w.Write([]byte("\n}\n"))
}

// jsonPiece is how many clients one piece of WriteJSON's output holds.
const jsonPiece = 4096

// inOrder writes f of every client of list to w, in list's order; pieces
// of n clients are encoded at once on every core, at most two per core in
// memory. first is true for the list's first client.
func inOrder(w io.Writer, list []*Client, n int, f func(b []byte, c *Client, first bool) []byte) {
	workers := runtime.GOMAXPROCS(0)
	pieces := make(chan chan []byte, 2*workers) // in list order; each gets its bytes
	free := make(chan []byte, 3*workers)        // buffers written out, for reuse: no garbage
	go func() {
		defer close(pieces)
		sem := make(chan struct{}, workers)
		for start := 0; start < len(list); start += n {
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
				for i, c := range list[start:min(start+n, len(list))] {
					b = f(b, c, start+i == 0)
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

func appendClientJSON(b []byte, c *Client) []byte {
	b = append(b, "\n  "...)
	b = detect.AppendJSONString(b, c.Client)
	b = append(b, `: {"failed": `...)
	b = strconv.AppendInt(b, c.Failed, 10)
	b = append(b, `, "probes": `...)
	b = strconv.AppendInt(b, c.Probes, 10)
	b = append(b, `, "successes": `...)
	b = strconv.AppendInt(b, c.Successes, 10)
	b = append(b, `, "users": [`...)
	for j, u := range c.Users {
		if j > 0 {
			b = append(b, ", "...)
		}
		b = detect.AppendJSONString(b, u)
	}
	b = append(b, `], "users_more": `...)
	b = strconv.AppendInt(b, c.UsersMore, 10)
	b = append(b, `, "first_seen": `...)
	b = appendJSONTime(b, c.First)
	b = append(b, `, "last_seen": `...)
	b = appendJSONTime(b, c.Last)
	return append(b, '}')
}

func appendJSONTime(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(b, "null"...)
	}
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

// Weights are what a failed attempt and a probe count for (the
// configuration's detection weights).
type Weights struct{ Failure, Probe float64 }

// Attempts is c's weighted attempts.
func (w Weights) Attempts(c *Client) float64 {
	return float64(c.Failed)*w.Failure + float64(c.Probes)*w.Probe
}

// Filter keeps the clients of list whose weighted attempts reach
// threshold and that allowed does not cover; it returns them and how many
// the allowlist left out.
func Filter(list []*Client, threshold float64, w Weights, allowed *ban.Allowlist) (kept []*Client, left int) {
	for _, c := range list {
		if a, err := netip.ParseAddr(c.Client); err == nil && allowed.Covers(netip.PrefixFrom(a.WithZone(""), a.BitLen())) {
			left++
			continue
		}
		if w.Attempts(c) >= threshold {
			kept = append(kept, c)
		}
	}
	return kept, left
}

// Selection is what a report keeps of its clients.
type Selection struct {
	Threshold float64        // weighted attempts at least this (0: all)
	Weights   Weights        // what a failed attempt and a probe weigh
	Allowed   *ban.Allowlist // left out (nil: only the built-in loopback and the like, when a threshold is set)
	Top       int            // the first this many (0: all)
}

// Select keeps what s asks of list (sorted), and says how many
// allowlisted clients it left out.
func (s Selection) Select(list []*Client) (kept []*Client, left int) {
	if s.Threshold > 0 || s.Allowed != nil {
		allowed := s.Allowed
		if allowed == nil {
			allowed = ban.NewAllowlist()
		}
		list, left = Filter(list, s.Threshold, s.Weights, allowed)
	}
	if s.Top > 0 && len(list) > s.Top {
		list = list[:s.Top]
	}
	return list, left
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

// BanRequests are the bans report --ban asks for: list's addresses (not
// the clients known by name only), for d (0: by the ban policy, escalated),
// with the reason "archive: N failed attempts in WINDOW".
func BanRequests(list []*Client, d time.Duration, window string) []control.BanRequest {
	if d == 0 {
		d = -1
	}
	reqs := make([]control.BanRequest, 0, len(list))
	for _, c := range list {
		if c.addr.IsValid() {
			reqs = append(reqs, control.BanRequest{Prefix: netip.PrefixFrom(c.addr.WithZone(""), c.addr.BitLen()), For: d,
				Reason: fmt.Sprintf("archive: %d failed attempts in %s", c.Failed, window)})
		}
	}
	return reqs
}

// Offenders is list for an alert (report --notify).
func Offenders(list []*Client, w Weights) []alert.Offender {
	out := make([]alert.Offender, 0, len(list))
	for _, c := range list {
		out = append(out, alert.Offender{Addr: c.Client, Failed: c.Failed, Probes: c.Probes, Users: c.Users[:min(len(c.Users), 8)], Attempts: w.Attempts(c)})
	}
	return out
}
