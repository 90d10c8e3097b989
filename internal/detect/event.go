// Package detect turns log lines into sshd events that say who did what.
//
// A line goes through three steps: the header parser (ParseLine) finds the
// timestamp, host, program tag and pid in any of the supported formats
// (traditional syslog, RFC 3339 syslog, RFC 5424, journalctl short, short-iso
// and json, bare "host prog[pid]: msg", or the bare message); the classifier
// (Classify) recognises the sshd message and reads the client address from
// the position where sshd wrote it; and the Correlator joins the lines of one
// connection so that each guess is counted once and lines that carry no
// address borrow their connection's.
//
// User names, client version strings, disconnect reasons and certificate key
// IDs are attacker-controlled and logged verbatim. The classifier therefore
// never searches the message for "from <ip>" naively: for each shape it knows
// on which side of the address attacker text can appear, and when a line is
// genuinely ambiguous it reports no address rather than a guessed one.
package detect

import (
	"net/netip"
	"strconv"
	"time"
	"unicode/utf8"

	"sshguard-go/internal/textsafe"
)

// Kind is the class of an sshd event.
type Kind uint8

// The kinds of the offline contract.
const (
	KindNone         Kind = iota
	KindFailure           // a failed or refused authentication attempt
	KindProbe             // pre-authentication misbehaviour without credentials
	KindSuccess           // an accepted authentication
	KindSessionOpen       // a session was opened
	KindSessionClose      // a session was closed
	KindTransfer          // an sftp file operation
	KindNotice            // recognised, never counted
)

var kindNames = [...]string{"", "failure", "probe", "success", "session_open", "session_close", "transfer", "notice"}

// String returns the name used in JSON output, e.g. "failure".
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Event is one recognised sshd line.
//
// String fields may share memory with the line they were parsed from; a
// consumer that keeps an Event beyond the line's lifetime in a streaming
// reader does not need to copy them because readers hand out immutable
// strings, but it may want strings.Clone to let large blocks be collected.
type Event struct {
	Time    time.Time // zero when the line carried no timestamp
	Host    string    // the logging host, "" when unknown
	Program string    // sshd, sshd-session, sshd-auth, internal-sftp, sftp-server, or ""
	PID     int       // 0 when unknown

	Kind   Kind
	Reason string // a stable snake_case name of the message shape

	Addr       netip.Addr // the client address, IPv4-mapped IPv6 unmapped, an IPv6 zone kept
	ClientHost string     // the client's name when sshd logged a name instead of an address
	Port       int        // the client port, 0 when not logged
	User       string     // the user name as logged (attacker-controlled for failures)
	Invalid    bool       // sshd said the user does not exist ("invalid user", "illegal user")

	Method string // authentication method for failure/success lines, e.g. "password"
	Key    string // key type and fingerprint after "ssh2: " when present
	Path   string // file path for transfers
	Read   int64  // bytes read (transfer close)
	Wrote  int64  // bytes written (transfer close)

	// Counted is the number of attempts (for failures) or probes (for
	// probes) this line counts for its connection: 0 or 1, except for an
	// rsyslog "message repeated N times" line (up to 1+MaxRepeat) and a
	// PAM tally that names more failures than the connection's lines
	// counted. The lines of one guess count once; see Correlator.
	Counted int

	// Repeat is N of rsyslog's "message repeated N times: [ msg]" (the
	// message stood N more times, bounded by MaxRepeat), else 0.
	Repeat int

	// tally is N+1 of PAM's "PAM N more authentication failures": the
	// failures pam_unix saw on the connection.
	tally int

	// Ambiguous is set when the line contained more than one place where
	// sshd could have written the client address (attacker text imitated
	// it) and the connection did not tell which one is real; Addr is then
	// left empty.
	Ambiguous bool
}

// Client returns the address as text, or the client host name, or "".
func (e *Event) Client() string {
	if e.Addr.IsValid() {
		return e.Addr.String()
	}
	return e.ClientHost
}

// Encoder writes events as JSON. It remembers the last second it
// formatted, because log lines come in runs from the same second. The zero
// value is ready to use; an Encoder is not safe for concurrent use.
type Encoder struct {
	sec  int64
	loc  *time.Location
	head []byte // "2006-01-02T15:04:05" of sec
	zone []byte // "Z" or "+01:00"

	// The last file, host and program, already quoted: they repeat on
	// every line.
	file, host, prog    string
	fileQ, hostQ, progQ []byte
}

// quoted returns the JSON form of s, from cache when s is *last.
func quoted(s string, last *string, q *[]byte) []byte {
	if s != *last || *q == nil {
		*last = s
		*q = AppendJSONString((*q)[:0], s)
	}
	return *q
}

// AppendJSON appends e as one JSON object of the offline contract to dst.
// file and line are the source name and 1-based line number.
func (e *Event) AppendJSON(dst []byte, file string, line int64) []byte {
	var enc Encoder
	return enc.AppendJSON(dst, e, file, line)
}

// AppendJSON appends e as one JSON object of the offline contract to dst.
func (enc *Encoder) AppendJSON(dst []byte, e *Event, file string, line int64) []byte {
	dst = append(dst, `{"file":`...)
	dst = append(dst, quoted(file, &enc.file, &enc.fileQ)...)
	dst = append(dst, `,"line":`...)
	dst = strconv.AppendInt(dst, line, 10)
	if !e.Time.IsZero() {
		dst = append(dst, `,"time":"`...)
		dst = enc.appendTime(dst, e.Time)
		dst = append(dst, '"')
	}
	if e.Host != "" {
		dst = append(dst, `,"host":`...)
		dst = append(dst, quoted(e.Host, &enc.host, &enc.hostQ)...)
	}
	if e.Program != "" {
		dst = append(dst, `,"program":`...)
		dst = append(dst, quoted(e.Program, &enc.prog, &enc.progQ)...)
	}
	if e.PID != 0 {
		dst = append(dst, `,"pid":`...)
		dst = strconv.AppendInt(dst, int64(e.PID), 10)
	}
	dst = append(dst, `,"kind":"`...)
	dst = append(dst, e.Kind.String()...)
	dst = append(dst, '"')
	dst = appendField(dst, "reason", e.Reason)
	if e.Addr.IsValid() {
		dst = append(dst, `,"ip":"`...)
		dst = e.Addr.AppendTo(dst)
		dst = append(dst, '"')
	}
	dst = appendField(dst, "client_host", e.ClientHost)
	if e.Port != 0 {
		dst = append(dst, `,"port":`...)
		dst = strconv.AppendInt(dst, int64(e.Port), 10)
	}
	dst = appendField(dst, "user", e.User)
	dst = appendField(dst, "method", e.Method)
	dst = appendField(dst, "key", e.Key)
	dst = appendField(dst, "path", e.Path)
	if e.Kind == KindTransfer && e.Reason == "sftp_close" {
		dst = append(dst, `,"bytes_read":`...)
		dst = strconv.AppendInt(dst, e.Read, 10)
		dst = append(dst, `,"bytes_written":`...)
		dst = strconv.AppendInt(dst, e.Wrote, 10)
	}
	if e.Repeat != 0 {
		dst = append(dst, `,"repeated":`...)
		dst = strconv.AppendInt(dst, int64(e.Repeat), 10)
	}
	dst = append(dst, `,"counted":`...)
	dst = strconv.AppendInt(dst, int64(e.Counted), 10)
	if e.Ambiguous {
		dst = append(dst, `,"ambiguous":true`...)
	}
	return append(dst, '}')
}

// appendTime appends t as RFC 3339 with the fraction trimmed as
// time.RFC3339Nano does, formatting the date and zone once per second.
func (enc *Encoder) appendTime(dst []byte, t time.Time) []byte {
	sec := t.Unix()
	if sec != enc.sec || t.Location() != enc.loc || enc.head == nil {
		enc.sec, enc.loc = sec, t.Location()
		y, mo, d := t.Date()
		h, mi, sc := t.Clock()
		b := append(enc.head[:0], byte('0'+y/1000%10), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10), '-')
		b = append2(append2(b, int(mo), '-'), d, 'T')
		enc.head = append2(append2(append2(b, h, ':'), mi, ':'), sc, 0)[:19]
		_, off := t.Zone()
		if off == 0 {
			enc.zone = append(enc.zone[:0], 'Z')
		} else {
			sign := byte('+')
			if off < 0 {
				sign, off = '-', -off
			}
			enc.zone = append2(append2(append(enc.zone[:0], sign), off/3600, ':'), off/60%60, 0)[:6]
		}
	}
	dst = append(dst, enc.head...)
	return append(AppendFraction(dst, t.Nanosecond()), enc.zone...)
}

// AppendFraction appends ns nanoseconds as time.RFC3339Nano writes
// them: a dot and the digits without trailing zeros, nothing for 0.
func AppendFraction(dst []byte, ns int) []byte {
	if ns == 0 {
		return dst
	}
	var frac [10]byte
	frac[0] = '.'
	for i := 9; i >= 1; i-- {
		frac[i] = byte('0' + ns%10)
		ns /= 10
	}
	n := 10
	for frac[n-1] == '0' {
		n--
	}
	return append(dst, frac[:n]...)
}

// append2 appends n as two digits and then sep.
func append2(b []byte, n int, sep byte) []byte {
	return append(b, byte('0'+n/10%10), byte('0'+n%10), sep)
}

func appendField(dst []byte, name, v string) []byte {
	if v == "" {
		return dst
	}
	dst = append(dst, ',', '"')
	dst = append(dst, name...)
	dst = append(dst, '"', ':')
	return AppendJSONString(dst, v)
}

const hexDigits = "0123456789abcdef"

// plainJSON marks the bytes that stand for themselves in a JSON string.
var plainJSON = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// AppendJSONString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD,
// so the output is always valid JSON whatever an attacker wrote.
func AppendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if plainJSON[c] {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\t':
				dst = append(dst, '\\', 't')
			case '\r':
				dst = append(dst, '\\', 'r')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
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
