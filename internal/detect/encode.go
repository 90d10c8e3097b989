package detect

import (
	"strconv"
	"time"
	"unicode/utf8"
)

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
	if e.TakesBackProbe {
		dst = append(dst, `,"takes_back_probe":true`...)
	}
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
