package report

import (
	"cmp"
	"encoding/binary"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"sshguard-go/internal/detect"
)

// Summary gathers what the events tell of each client. Its zero value is
// empty and ready.
//
// A wave's archive names hundreds of thousands of clients, most of them
// once, so a client is a record of plain numbers (no pointer, no string
// of its own): the user names are interned, times kept as seconds and
// offset, addresses as their 128 bits. The garbage collector has nothing
// to follow in them, and a Client with strings is made only for the
// clients a caller asks for (List.Clients).
type Summary struct {
	pages  [][]rec           // the clients, in first-seen order, pageSize a page
	n      int32             // how many
	byAddr addrTable         // clients by address (without a zone) -> position
	byRaw  map[string]int32  // clients known by name, and zoned addresses, by their text
	names  []string          // their texts, by rec.name-1
	users  []string          // user names, by id
	ids    map[string]uint32 // user name -> id
	more   [][]uint32        // the users after the first of a client, by rec.more-1
	Window                   // the events counted
}

// rec is one client's counts.
type rec struct {
	hi, lo                    uint64 // the address (IPv4 mapped into IPv6)
	failed, probes, successes int64
	usersMore                 int64 // distinct users beyond maxUsers
	first, last               stamp
	user0                     uint32 // the first user's id + 1 (0: none)
	more                      uint32 // index + 1 in Summary.more (0: no second user)
	name                      uint32 // index + 1 in Summary.names: a name, or a zoned address's text
	taken                     int32  // probes a failure of their connection took back (detect.Event.TakesBackProbe)
	fam                       uint8  // famName, fam4, fam6
	timed                     bool   // first and last are known
}

// A client's kind, in the order a report lists ties: IPv4 before IPv6
// (as netip orders them), names after addresses.
const (
	fam4    = 1
	fam6    = 2
	famName = 3
)

// stamp is a time as a report writes it: the instant and the offset of
// its zone at that instant (RFC 3339 shows nothing more of a zone).
type stamp struct {
	sec  int64
	nsec int32
	off  int32 // seconds east of UTC
}

func stampOf(t time.Time) stamp {
	_, off := t.Zone()
	return stamp{sec: t.Unix(), nsec: int32(t.Nanosecond()), off: int32(off)}
}

func (st stamp) before(o stamp) bool {
	return st.sec < o.sec || st.sec == o.sec && st.nsec < o.nsec
}

// time is st as a time.Time in a zone of its offset.
func (st stamp) time() time.Time {
	loc := time.UTC
	if st.off != 0 {
		loc = time.FixedZone("", int(st.off))
	}
	return time.Unix(st.sec, int64(st.nsec)).In(loc)
}

// maxUsers bounds the distinct user names kept per client; the count
// beyond it is still counted in UsersMore (a name past the bound may be
// counted twice: documented as approximate).
const maxUsers = 200

// Client is one client's line in a report.
type Client struct {
	Client    string // the address, or the name sshd logged
	Failed    int64  // counted failed attempts
	Probes    int64  // counted probes
	Successes int64
	Users     []string // distinct users tried or logged in, in first-seen order
	UsersMore int64    // distinct users beyond maxUsers
	First     time.Time
	Last      time.Time
}

// Add counts r for its client (records without one are left out).
func (s *Summary) Add(r *detect.Record) {
	if s.Holds(r.Time) {
		e := eventOf(r)
		s.add(&e)
	}
}

// event is what a Summary counts of a record: a quarter of its size, for
// the batches a Collector hands its counting goroutine.
type event struct {
	addr    netip.Addr
	host    string // the client's name when sshd logged no address
	user    string
	time    time.Time
	kind    detect.Kind
	taken   bool // the line takes back its connection's probe
	counted int32
}

func eventOf(r *detect.Record) event {
	return event{addr: r.Addr, host: r.ClientHost, user: r.User, time: r.Time, kind: r.Kind, taken: r.TakesBackProbe, counted: int32(r.Counted)}
}

func (s *Summary) add(e *event) {
	var i int32
	switch {
	case e.addr.IsValid():
		i = s.findAddr(e.addr)
	case e.host != "":
		i = s.raw(e.host, netip.Addr{})
	default:
		return
	}
	c := s.at(i)
	switch e.kind {
	case detect.KindFailure:
		c.failed += int64(e.counted)
		if e.taken {
			c.taken++
		}
	case detect.KindProbe:
		c.probes += int64(e.counted)
	case detect.KindSuccess:
		c.successes++
	}
	if e.user != "" && (e.kind == detect.KindFailure || e.kind == detect.KindSuccess) {
		s.addUser(c, s.id(e.user))
	}
	if !e.time.IsZero() {
		st := stampOf(e.time)
		if !c.timed {
			c.first, c.last, c.timed = st, st, true
		} else if st.before(c.first) {
			c.first = st
		} else if c.last.before(st) {
			c.last = st
		}
	}
}

// findAddr returns the position of the client a, added when new.
func (s *Summary) findAddr(a netip.Addr) int32 {
	if a.Zone() != "" {
		return s.raw(a.String(), a)
	}
	b := a.As16()
	fam := uint8(fam6)
	if a.Is4() {
		fam = fam4
	}
	hi, lo := binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
	i, ok := s.byAddr.find(hi, lo, fam, s.n, func(i int32) bool {
		c := s.at(i)
		return c.lo == lo && c.hi == hi && c.fam == fam && c.name == 0
	})
	if !ok {
		s.newRec(a, "")
	}
	return i
}

// raw finds the client known by text (a name, or a zoned address a).
func (s *Summary) raw(text string, a netip.Addr) int32 {
	if i, ok := s.byRaw[text]; ok {
		return i
	}
	if s.byRaw == nil {
		s.byRaw = map[string]int32{}
	}
	text = strings.Clone(text)
	i := s.newRec(a, text)
	s.byRaw[text] = i
	return i
}

// newRec adds a client with address a (or none) and text (for names and
// zoned addresses), and returns its position.
func (s *Summary) newRec(a netip.Addr, text string) int32 {
	c := rec{fam: famName}
	if a.IsValid() {
		b := a.As16()
		c.hi, c.lo = binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
		c.fam = fam6
		if a.Is4() {
			c.fam = fam4
		}
	}
	if text != "" {
		s.names = append(s.names, text)
		c.name = uint32(len(s.names))
	}
	return s.push(c)
}

// push adds c after the clients and returns its position.
func (s *Summary) push(c rec) int32 {
	if int(s.n)%pageSize == 0 {
		s.pages = append(s.pages, make([]rec, pageSize))
	}
	*s.at(s.n) = c
	s.n++
	return s.n - 1
}

// pageSize is how many clients are allocated at once: a wave's clients
// are never copied to grow an array (80 MB moved at a time, during which
// the garbage collector waits).
const pageSize = 4096

// at is the client at position i.
func (s *Summary) at(i int32) *rec { return &s.pages[i/pageSize][i%pageSize] }

// id interns a user name.
func (s *Summary) id(u string) uint32 {
	if id, ok := s.ids[u]; ok {
		return id
	}
	if s.ids == nil {
		s.ids = map[string]uint32{}
	}
	u = strings.Clone(u)
	s.users = append(s.users, u)
	id := uint32(len(s.users) - 1)
	s.ids[u] = id
	return id
}

// addUser adds the user id to c's, unless it is there already.
func (s *Summary) addUser(c *rec, id uint32) {
	switch {
	case c.user0 == 0:
		c.user0 = id + 1
		return
	case c.user0 == id+1:
		return
	case c.more == 0:
		s.more = append(s.more, []uint32{id})
		c.more = uint32(len(s.more))
		return
	}
	more := &s.more[c.more-1]
	if slices.Contains(*more, id) {
		return
	}
	if len(*more)+1 >= maxUsers {
		c.usersMore++
		return
	}
	*more = append(*more, id)
}

// eachUser calls f with each of c's user ids, in first-seen order.
func (s *Summary) eachUser(c *rec, f func(id uint32)) {
	if c.user0 == 0 {
		return
	}
	f(c.user0 - 1)
	if c.more != 0 {
		for _, id := range s.more[c.more-1] {
			f(id)
		}
	}
}

// addrOf is c's address (the zero Addr for a name).
func (s *Summary) addrOf(c *rec) netip.Addr {
	switch {
	case c.name != 0 && c.fam != famName:
		a, _ := netip.ParseAddr(s.names[c.name-1]) // a zoned address: its text holds the zone
		return a
	case c.fam == fam4:
		return netip.AddrFrom4([4]byte{byte(c.lo >> 24), byte(c.lo >> 16), byte(c.lo >> 8), byte(c.lo)})
	case c.fam == fam6:
		var b [16]byte
		binary.BigEndian.PutUint64(b[:8], c.hi)
		binary.BigEndian.PutUint64(b[8:], c.lo)
		return netip.AddrFrom16(b)
	}
	return netip.Addr{}
}

// Len is how many clients s holds.
func (s *Summary) Len() int { return int(s.n) }

// Sorted returns the clients by failed attempts, then probes, then logins,
// then address (in numeric order; clients known by name only after them, by
// name).
func (s *Summary) Sorted() []*Client { return s.List().Clients() }

// List is the clients of a Summary in report order (or a selection of
// them): what the writers, the threshold and the bans read, without a
// Client made for each.
type List struct {
	s     *Summary
	order []int32 // positions in s
}

// List returns s's clients in Sorted's order, sorting on every core.
func (s *Summary) List() *List {
	keys := make([]key, s.n)
	for i := range s.n {
		keys[i] = s.keyOf(i)
	}
	// The usual case (no count past its bits, an address) is compared
	// here, in the function the sort calls: a call fewer per comparison.
	sortKeys(keys, func(a, b key) int {
		if (a.w1|b.w1)&4 == 0 && a.w1&3 != famName {
			switch {
			case a.w1 != b.w1:
				return cmp.Compare(a.w1, b.w1)
			case a.hi != b.hi:
				return cmp.Compare(a.hi, b.hi)
			case a.lo != b.lo:
				return cmp.Compare(a.lo, b.lo)
			}
		}
		return s.compareRare(a, b)
	}, runtime.GOMAXPROCS(0))
	l := &List{s: s, order: make([]int32, len(keys))}
	for i, k := range keys {
		l.order[i] = k.i
	}
	return l
}

// Len is how many clients l holds.
func (l *List) Len() int { return len(l.order) }

// Clients makes l's clients, in order.
func (l *List) Clients() []*Client {
	out := make([]*Client, len(l.order))
	for i, j := range l.order {
		out[i] = l.s.client(l.s.at(j))
	}
	return out
}

// client makes c's Client.
func (s *Summary) client(c *rec) *Client {
	out := &Client{Client: s.text(c), Failed: c.failed, Probes: c.probes, Successes: c.successes, UsersMore: c.usersMore}
	s.eachUser(c, func(id uint32) { out.Users = append(out.Users, s.users[id]) })
	if c.timed {
		out.First, out.Last = c.first.time(), c.last.time()
	}
	return out
}

// text is how c is written: its address or name.
func (s *Summary) text(c *rec) string {
	if c.name != 0 {
		return s.names[c.name-1]
	}
	return s.addrOf(c).String()
}

// appendText appends s.text(c) without making a string of it.
func (s *Summary) appendText(b []byte, c *rec) []byte {
	if c.name != 0 {
		return append(b, s.names[c.name-1]...)
	}
	return s.addrOf(c).AppendTo(b)
}

// key is what List orders a client by, held in one array rather than
// reached through the records: with hundreds of thousands of clients,
// most tied on the counts, following each to compare cost more than the
// rest of the report.
type key struct {
	w1     uint64 // the counts, packed so that more sorts first, and the family
	hi, lo uint64 // the address's 128 bits (IPv4 mapped)
	i      int32  // the client's position
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

// keyOf is the sort key of the client at i: 32 bytes compared as three
// integers, most of the time.
func (s *Summary) keyOf(i int32) key {
	c := s.at(i)
	f, fs := clamp(c.failed, failedBits)
	p, ps := clamp(c.probes, probesBits)
	sc, ss := clamp(c.successes, successBits)
	counts := f<<(probesBits+successBits) | p<<successBits | sc
	var sat uint64 // a count clamped: this key compares its counts in full
	if fs || ps || ss {
		sat = 1
	}
	return key{w1: (^counts&(1<<61-1))<<3 | sat<<2 | uint64(c.fam), hi: c.hi, lo: c.lo, i: i}
}

// compareRare orders the keys List's comparison leaves: a count past its
// bits (compared in full, then the family), names (by name), and equal
// addresses (by zone).
func (s *Summary) compareRare(a, b key) int {
	if (a.w1|b.w1)&4 != 0 {
		ac, bc := s.at(a.i), s.at(b.i)
		if c := cmp.Or(cmp.Compare(bc.failed, ac.failed), cmp.Compare(bc.probes, ac.probes), cmp.Compare(bc.successes, ac.successes),
			cmp.Compare(a.w1&3, b.w1&3)); c != 0 {
			return c
		}
	} else if a.w1 != b.w1 {
		return cmp.Compare(a.w1, b.w1)
	}
	if a.w1&3 == famName {
		return strings.Compare(s.names[s.at(a.i).name-1], s.names[s.at(b.i).name-1])
	}
	return cmp.Or(cmp.Compare(a.hi, b.hi), cmp.Compare(a.lo, b.lo), strings.Compare(s.zone(s.at(a.i)), s.zone(s.at(b.i))))
}

// zone is the zone of c's address ("" for none).
func (s *Summary) zone(c *rec) string {
	if c.name == 0 {
		return ""
	}
	return s.addrOf(c).Zone()
}

// sortKeys sorts keys on up to cores goroutines: split around a pivot,
// the parts sorted at once (no merge, no second array).
func sortKeys(keys []key, compare func(a, b key) int, cores int) {
	if cores <= 1 || len(keys) < 16384 {
		slices.SortFunc(keys, compare)
		return
	}
	// The pivot: the median of 31 keys spread over the array.
	var sample [31]key
	for i := range sample {
		sample[i] = keys[i*(len(keys)-1)/(len(sample)-1)]
	}
	slices.SortFunc(sample[:], compare)
	pivot := sample[len(sample)/2]
	p := 0 // keys[:p] sort before the pivot
	for j := range keys {
		if compare(keys[j], pivot) < 0 {
			keys[p], keys[j] = keys[j], keys[p]
			p++
		}
	}
	var wg sync.WaitGroup
	wg.Go(func() { sortKeys(keys[:p], compare, cores/2) })
	sortKeys(keys[p:], compare, cores-cores/2)
	wg.Wait()
}
