package detect

import (
	"sshguard-go/internal/textsafe"
	"strconv"
)

// Record is an Event with where it came from.
type Record struct {
	Event
	Source string // file name, "-" for stdin, "journald"
	Line   int64  // 1-based line number in Source
	Text   string // the raw line, kept as evidence
}

// detach copies r's strings out of the block of input they share, so that
// a held record keeps its line, not the whole block (up to 1 MiB).
func (r *Record) detach() {
	for _, s := range []*string{&r.Text, &r.Host, &r.Program, &r.ClientHost, &r.User, &r.Method, &r.Key, &r.Path} {
		*s = clone(*s)
	}
}

// AppendText appends r as one readable line (scan without --json).
func (r *Record) AppendText(b []byte) []byte {
	if r.Time.IsZero() {
		b = append(b, "-                   "...)
	} else {
		b = r.Time.AppendFormat(b, "2006-01-02 15:04:05")
	}
	b = append(b, ' ')
	b = appendPadded(b, r.Kind.String(), 13)
	b = appendPadded(b, r.Reason, 28)
	c := r.Client()
	if c == "" {
		c = "?"
	}
	if r.Port != 0 {
		if r.Addr.Is6() {
			c = "[" + c + "]"
		}
		c += ":" + strconv.Itoa(r.Port)
	}
	b = appendPadded(b, c, 24)
	if r.User != "" {
		b = append(b, "user="...)
		b = strconv.AppendQuote(b, r.User)
		b = append(b, ' ')
	}
	if r.Method != "" { // as the log has it: made safe for the terminal
		b = append(b, "method="...)
		b = textsafe.Append(b, r.Method)
		b = append(b, ' ')
	}
	if r.Path != "" {
		b = append(b, "path="...)
		b = strconv.AppendQuote(b, r.Path)
		b = append(b, ' ')
	}
	if r.Counted > 0 {
		b = append(b, "counted "...)
	}
	b = textsafe.Append(b, r.Source)
	b = append(b, ':')
	return strconv.AppendInt(b, r.Line, 10)
}

func appendPadded(b []byte, s string, n int) []byte {
	start := len(b)
	b = textsafe.Append(b, s)
	for i := len(b) - start; i < n; i++ {
		b = append(b, ' ')
	}
	return append(b, ' ')
}
