package report

import (
	"io"
	"runtime"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"sshguard-go/internal/detect"
)

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
