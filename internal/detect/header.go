package detect

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Header is what precedes the sshd message on a log line.
type Header struct {
	Time    time.Time // zero when the line has no timestamp
	Host    string
	Program string // "" when the line is a bare message (journalctl -o cat)
	PID     int
	Msg     string
	// Untrusted is set (with ok false from Parse) for a journal entry
	// that names an sshd program but was not written by sshd: any local
	// user can log with `logger -t sshd`, and journald's trusted fields
	// (_COMM, _UID) tell. The unit tells nothing: where pam_systemd does
	// not move a session to its own scope, users' shells stay in the ssh
	// service's unit.
	Untrusted bool
	// TransfersOnly is set for a journal entry of an sftp server, which
	// runs as the user: it vouches for its own lines (transfers) only.
	TransfersOnly bool
}

// HeaderParser parses line headers. It is not safe for concurrent use: it
// caches the last timestamp, which makes runs of lines from the same second
// cheap. The zero value parses year-less timestamps relative to time.Now in
// time.Local.
type HeaderParser struct {
	// Ref is the reference time for year-less syslog timestamps: a
	// timestamp is put in Ref's year unless that would place it more than
	// a day after Ref, in which case it belongs to the year before (a
	// December line read in January). Zero means time.Now() at first use.
	// For a file, its modification time is the best reference.
	Ref time.Time
	// Loc is the time zone of year-less timestamps; nil means time.Local.
	Loc *time.Location
	// Now, when set, is read for every new year-less stamp and replaces
	// Ref: a daemon that runs across New Year follows the clock.
	Now func() time.Time

	lastStamp string // guards lastTime: the raw year-less stamp it was made from
	lastTime  time.Time
	isoSec    string // the "2006-01-02T15:04:05" and zone text isoTime was made from
	isoZone   string
	isoTime   time.Time
	zoneOff   int
	zone      *time.Location
}

// programs are the tags whose lines are sshd's.
func knownProgram(p string) bool {
	switch p {
	case "sshd", "sshd-session", "sshd-auth", "internal-sftp", "sftp-server":
		return true
	}
	return false
}

// Parse splits line into its header and message. It returns false when the
// line belongs to a program other than sshd's, or is not a log line at all.
// A line with no recognisable header is returned whole as a bare message
// with an empty Program.
func (p *HeaderParser) Parse(line string) (Header, bool) {
	var h Header
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	if line == "" {
		return h, false
	}
	switch c := line[0]; {
	case c == '{':
		return p.parseJSON(line)
	case c == '<':
		return p.parsePRI(line)
	case c >= 'A' && c <= 'W':
		if t, rest, ok := p.parseBSD(line); ok {
			h.Time = t
			return p.parseTagged(h, rest, true)
		}
		// journalctl -o short-full: "Sat 2026-11-28 07:01:02 UTC host ..."
		if len(line) > 24 && line[3] == ' ' && line[8] == '-' {
			if t, rest, ok := p.parseSpacedISO(line[4:]); ok {
				if sp := strings.IndexByte(rest, ' '); sp > 0 && isZoneName(rest[:sp]) {
					h.Time = t
					return p.parseTagged(h, rest[sp+1:], true)
				}
			}
		}
	case c >= '0' && c <= '9' && len(line) > 20 && line[4] == '-' && line[10] == 'T':
		if sp := strings.IndexByte(line, ' '); sp > 0 {
			if t, ok := p.parseISO(line[:sp]); ok {
				h.Time = t
				rest := line[sp+1:]
				// A container runtime's log (CRI): "<time> stderr F <line>".
				if len(rest) > 9 && (strings.HasPrefix(rest, "stderr ") || strings.HasPrefix(rest, "stdout ")) &&
					(rest[7] == 'F' || rest[7] == 'P') && rest[8] == ' ' {
					return p.parseTagged(h, rest[9:], false)
				}
				return p.parseTagged(h, rest, true)
			}
		}
	case c >= '0' && c <= '9' && len(line) > 20 && line[4] == '-' && (line[10] == ' ' || line[10] == '_'):
		// "2026-11-28 07:01:02[.frac] host ..." and socklog's
		// "2026-11-28_07:01:02.25000 auth.info: ...".
		if t, rest, ok := p.parseSpacedISO(line); ok {
			h.Time = t
			return p.parseTagged(h, rest, true)
		}
	case c >= '1' && c <= '9' && len(line) > 12 && line[10] == '.':
		// journalctl -o short-unix: "1795849262.123456 host ...".
		if t, rest, ok := parseUnix(line); ok {
			h.Time = t
			return p.parseTagged(h, rest, true)
		}
	}
	return p.parseTagged(h, line, false)
}

// parseBSD parses a traditional syslog stamp at the start of line, its
// day padded ("Nov  3") or not ("Nov 3"), and returns the rest.
func (p *HeaderParser) parseBSD(line string) (time.Time, string, bool) {
	switch {
	case len(line) >= 16 && line[3] == ' ' && line[6] == ' ' && line[9] == ':':
		return p.parseBSDStamp(line)
	case len(line) >= 15 && line[3] == ' ' && line[5] == ' ' && line[8] == ':':
		return p.parseBSDStamp(line[:4] + " " + line[4:])
	}
	return time.Time{}, "", false
}

// parseSpacedISO parses "2026-11-28 07:01:02[.frac]" (or with '_' between
// date and time) and returns the rest after the space that follows.
func (p *HeaderParser) parseSpacedISO(s string) (time.Time, string, bool) {
	if len(s) < 20 {
		return time.Time{}, "", false
	}
	end := 19
	if s[end] == '.' {
		end++
		for end < len(s) && s[end] >= '0' && s[end] <= '9' {
			end++
		}
	}
	if end >= len(s) || s[end] != ' ' {
		return time.Time{}, "", false
	}
	rest := s[end+1:]
	if sp := strings.IndexByte(rest, ' '); sp > 0 && isOffset(rest[:sp]) && rest[:sp] != "Z" {
		// "2026-11-28 07:01:02.123456789 +0000 UTC msg" (Go's
		// time.Time.String): the offset, then its zone name.
		off := rest[:sp]
		rest = rest[sp+1:]
		if sp := strings.IndexByte(rest, ' '); sp > 0 && isZoneName(rest[:sp]) && !strings.ContainsAny(rest[:sp], "+-0123456789") {
			rest = rest[sp+1:]
		}
		t, ok := p.parseISO(s[:end] + off)
		return t, rest, ok
	}
	t, ok := p.parseISO(s[:end])
	return t, rest, ok
}

// isOffset reports whether z is a UTC offset: +hh:mm, -hhmm or Z.
func isOffset(z string) bool {
	if z == "Z" {
		return true
	}
	if len(z) != 5 && len(z) != 6 || z[0] != '+' && z[0] != '-' || len(z) == 6 && z[3] != ':' {
		return false
	}
	for i := 1; i < len(z); i++ {
		if i != 3 || len(z) == 5 {
			if z[i] < '0' || z[i] > '9' {
				return false
			}
		}
	}
	return true
}

// parseUnix parses "1795849262[.123456] " (seconds since the epoch).
func parseUnix(s string) (time.Time, string, bool) {
	sp := strings.IndexByte(s, ' ')
	if sp < 10 {
		return time.Time{}, "", false
	}
	sec, frac, _ := strings.Cut(s[:sp], ".")
	n, err := strconv.ParseInt(sec, 10, 64)
	if err != nil || len(frac) > 9 {
		return time.Time{}, "", false
	}
	ns := 0
	for i := 0; i < 9; i++ {
		ns *= 10
		if i < len(frac) {
			if frac[i] < '0' || frac[i] > '9' {
				return time.Time{}, "", false
			}
			ns += int(frac[i] - '0')
		}
	}
	return time.Unix(n, int64(ns)), s[sp+1:], true
}

// isZoneName reports whether z looks like a time zone abbreviation
// (UTC, CET, EST, +03).
func isZoneName(z string) bool {
	if len(z) < 2 || len(z) > 6 {
		return false
	}
	for i := 0; i < len(z); i++ {
		if c := z[i]; !(c >= 'A' && c <= 'Z' || c == '+' || c == '-' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// facilities and levels are syslog's, as busybox and socklog write them
// before the tag ("auth.info").
var (
	facilities = map[string]bool{"kern": true, "user": true, "mail": true, "daemon": true, "auth": true, "syslog": true, "lpr": true,
		"news": true, "uucp": true, "cron": true, "authpriv": true, "ftp": true, "local0": true, "local1": true, "local2": true,
		"local3": true, "local4": true, "local5": true, "local6": true, "local7": true}
	levels = map[string]bool{"emerg": true, "alert": true, "crit": true, "err": true, "error": true, "warning": true, "warn": true,
		"notice": true, "info": true, "debug": true}
)

// isFacilityLevel reports whether tok is "facility.level" (and whether it
// ends in a colon, as socklog writes it before the message).
func isFacilityLevel(tok string) (ok, colon bool) {
	tok, colon = strings.CutSuffix(tok, ":")
	f, l, found := strings.Cut(tok, ".")
	return found && facilities[f] && levels[l], colon
}

// parseTagged parses "[host ]tag: msg". stamped tells whether a timestamp
// preceded it: then a line without an sshd tag is someone else's; without
// one, it may be a bare message.
func (p *HeaderParser) parseTagged(h Header, s string, stamped bool) (Header, bool) {
	// Before the tag may stand a host and a facility.level (busybox:
	// "host auth.info sshd[1]:"; socklog: "auth.info: sshd[1]:", or the
	// bare message after it).
	rest, host := s, ""
	for tok := 0; tok < 3; tok++ {
		sp := strings.IndexByte(rest, ' ')
		if sp < 0 {
			break
		}
		word := rest[:sp]
		prog, pid, ok := parseTag(word)
		if !ok {
			prog, pid, ok = parseBareTag(word)
		}
		if ok {
			h.Host, h.Program, h.PID = host, prog, pid
			h.Msg = trimSolarisID(rest[sp+1:])
			return h, knownProgram(prog)
		}
		if fl, colon := isFacilityLevel(word); fl {
			rest = rest[sp+1:]
			if colon && stamped {
				// socklog: a bare message may follow.
				return p.parseTagged(Header{Time: h.Time, Host: host}, rest, false)
			}
			continue
		}
		if tok > 0 || !stamped && tok == 0 && !looksLikeHost(word) {
			break
		}
		host, rest = word, rest[sp+1:]
	}
	if stamped {
		return h, false
	}
	h.Msg = s
	return h, true
}

// looksLikeHost reports whether w could be the host field of a line with
// no timestamp: letters, digits, '.', '-', ':' (an address), '_'.
func looksLikeHost(w string) bool {
	for i := 0; i < len(w); i++ {
		c := w[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == ':' || c == '_') {
			return false
		}
	}
	return w != ""
}

// parseTag parses a syslog tag: "sshd[123]:", "sshd:", "[sshd]:" or
// "/usr/sbin/sshd[123]:". Only tags that name a known program or carry a pid
// are accepted, so that a bare message whose first word ends in a colon
// ("error:", "pam_unix(sshd:auth):") is not taken for a tag.
func parseTag(t string) (prog string, pid int, ok bool) {
	if len(t) < 2 || t[len(t)-1] != ':' {
		return "", 0, false
	}
	t = t[:len(t)-1]
	if t[0] == '[' && t[len(t)-1] == ']' {
		prog = t[1 : len(t)-1]
		return prog, 0, knownProgram(prog)
	}
	if t[len(t)-1] == ']' {
		lb := strings.LastIndexByte(t, '[')
		if lb <= 0 {
			return "", 0, false
		}
		n, err := strconv.Atoi(t[lb+1 : len(t)-1])
		if err != nil || n < 0 {
			return "", 0, false
		}
		prog, pid = t[:lb], n
	} else {
		prog = t
	}
	if i := strings.LastIndexByte(prog, '/'); i >= 0 {
		prog = prog[i+1:]
	}
	if pid == 0 && !knownProgram(prog) {
		return "", 0, false
	}
	return prog, pid, prog != ""
}

// parseBareTag parses a tag written without its colon ("sshd[123]", as
// some relays and older syslog daemons write it). Only an sshd program
// with a pid is taken: a bare word is a host or a message's first word.
func parseBareTag(t string) (prog string, pid int, ok bool) {
	if len(t) < 4 || t[len(t)-1] != ']' {
		return "", 0, false
	}
	lb := strings.IndexByte(t, '[')
	if lb <= 0 || lb+2 > len(t)-1 {
		return "", 0, false
	}
	prog = t[:lb]
	if i := strings.LastIndexByte(prog, '/'); i >= 0 {
		prog = prog[i+1:]
	}
	for _, c := range []byte(t[lb+1 : len(t)-1]) {
		if c < '0' || c > '9' {
			return "", 0, false
		}
	}
	n, err := strconv.Atoi(t[lb+1 : len(t)-1])
	if err != nil || n <= 0 || !knownProgram(prog) {
		return "", 0, false
	}
	return prog, n, true
}

// trimSolarisID removes a Solaris "[ID 800047 auth.info] " message prefix.
func trimSolarisID(m string) string {
	if strings.HasPrefix(m, "[ID ") {
		if i := strings.IndexByte(m, ']'); i > 0 {
			return strings.TrimPrefix(m[i+1:], " ")
		}
	}
	return m
}

// parsePRI handles "<PRI>" followed by RFC 5424 ("1 TIMESTAMP HOST APP
// PROCID MSGID SD MSG") or by an RFC 3164 line.
func (p *HeaderParser) parsePRI(line string) (Header, bool) {
	end := strings.IndexByte(line, '>')
	if end < 2 || end > 4 {
		return p.parseTagged(Header{}, line, false)
	}
	for i := 1; i < end; i++ {
		if line[i] < '0' || line[i] > '9' {
			return p.parseTagged(Header{}, line, false)
		}
	}
	rest := line[end+1:]
	if !strings.HasPrefix(rest, "1 ") {
		var h Header
		if t, r, ok := p.parseBSD(rest); ok {
			h.Time = t
			return p.parseTagged(h, r, true)
		}
		return p.parseTagged(h, rest, false)
	}
	var f [5]string // timestamp, host, app, procid, msgid
	rest = rest[2:]
	for i := range f {
		sp := strings.IndexByte(rest, ' ')
		if sp < 0 {
			return Header{}, false
		}
		f[i], rest = rest[:sp], rest[sp+1:]
		if i == 0 && len(f[0]) >= 19 {
			// "2020-01-03T11:57:14 -05:00": the offset apart.
			if sp := strings.IndexByte(rest, ' '); sp > 0 && isOffset(rest[:sp]) {
				f[0], rest = f[0]+rest[:sp], rest[sp+1:]
			}
		}
	}
	var h Header
	if f[0] != "-" {
		t, ok := p.parseISO(f[0])
		if !ok {
			return h, false
		}
		h.Time = t
	}
	if f[1] != "-" {
		h.Host = f[1]
	}
	h.Program = f[2]
	if i := strings.LastIndexByte(h.Program, '/'); i >= 0 {
		h.Program = h.Program[i+1:]
	}
	if !knownProgram(h.Program) {
		return h, false
	}
	if f[3] != "-" {
		h.PID, _ = strconv.Atoi(f[3])
	}
	rest, ok := skipStructuredData(rest)
	if !ok {
		return h, false
	}
	h.Msg = strings.TrimPrefix(rest, "\ufeff")
	return h, true
}

// skipStructuredData skips RFC 5424 STRUCTURED-DATA ("-" or [..][..]) and
// the space after it.
func skipStructuredData(s string) (string, bool) {
	if strings.HasPrefix(s, "-") {
		return strings.TrimPrefix(s[1:], " "), true
	}
	for len(s) > 0 && s[0] == '[' {
		i, quoted := 1, false
		for ; i < len(s); i++ {
			c := s[i]
			if c == '\\' && quoted {
				i++
				continue
			}
			if c == '"' {
				quoted = !quoted
			} else if c == ']' && !quoted {
				break
			}
		}
		if i >= len(s) {
			return "", false
		}
		s = s[i+1:]
	}
	return strings.TrimPrefix(s, " "), true
}

var months = map[string]time.Month{
	"Jan": 1, "Feb": 2, "Mar": 3, "Apr": 4, "May": 5, "Jun": 6,
	"Jul": 7, "Aug": 8, "Sep": 9, "Oct": 10, "Nov": 11, "Dec": 12,
}

// parseBSDStamp parses "Nov 23 20:14:49" (day may be space-padded, an
// optional fraction may follow) and returns the rest after the space.
func (p *HeaderParser) parseBSDStamp(s string) (time.Time, string, bool) {
	stamp := s[:15]
	rest := s[15:]
	var frac time.Duration // journalctl -o short-precise: ".123456"
	if len(rest) > 0 && rest[0] == '.' {
		i, scale := 1, time.Second
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			if scale /= 10; scale > 0 {
				frac += time.Duration(rest[i]-'0') * scale
			}
			i++
		}
		rest = rest[i:]
	}
	if len(rest) == 0 || rest[0] != ' ' {
		return time.Time{}, "", false
	}
	rest = rest[1:]
	if stamp == p.lastStamp {
		return p.lastTime.Add(frac), rest, true
	}
	mon, ok := months[stamp[:3]]
	if !ok || stamp[12] != ':' {
		return time.Time{}, "", false
	}
	day, ok1 := num2(stamp[4:6])
	hh, ok2 := num2(stamp[7:9])
	mm, ok3 := num2(stamp[10:12])
	ss, ok4 := num2(stamp[13:15])
	if !(ok1 && ok2 && ok3 && ok4) || day < 1 || day > 31 || hh > 23 || mm > 59 || ss > 60 {
		return time.Time{}, "", false
	}
	if p.Now != nil {
		p.Ref = p.Now()
	} else if p.Ref.IsZero() {
		p.Ref = time.Now()
	}
	loc := p.Loc
	if loc == nil {
		loc = time.Local
	}
	t := time.Date(p.Ref.Year(), mon, day, hh, mm, ss, 0, loc)
	if t.After(p.Ref.Add(24 * time.Hour)) {
		t = time.Date(p.Ref.Year()-1, mon, day, hh, mm, ss, 0, loc)
	}
	p.lastStamp, p.lastTime = stamp, t
	return t.Add(frac), rest, true
}

// num2 parses two digits; a leading space counts as zero ("Nov  3").
func num2(s string) (int, bool) {
	a, b := s[0], s[1]
	if a == ' ' {
		a = '0'
	}
	if a < '0' || a > '9' || b < '0' || b > '9' {
		return 0, false
	}
	return int(a-'0')*10 + int(b-'0'), true
}

// parseISO parses RFC 3339 timestamps as rsyslog and journalctl write them:
// 2026-11-23T20:14:49[.frac](Z|+00:00|+0000), and without an offset in Loc.
func (p *HeaderParser) parseISO(s string) (time.Time, bool) {
	if len(s) < 19 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != ' ' && s[10] != '_') || s[13] != ':' || s[16] != ':' {
		return time.Time{}, false
	}
	if s[:19] == p.isoSec {
		// Same second as the last line: only the fraction differs.
		rest, nsec, ok := parseFrac(s[19:])
		if ok && rest == p.isoZone {
			return p.isoTime.Add(time.Duration(nsec)), true
		}
	}
	y1, ok1 := num2(s[0:2])
	y2, ok2 := num2(s[2:4])
	mo, ok3 := num2(s[5:7])
	d, ok4 := num2(s[8:10])
	hh, ok5 := num2(s[11:13])
	mm, ok6 := num2(s[14:16])
	ss, ok7 := num2(s[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6 && ok7) || s[0] == ' ' || s[2] == ' ' || s[5] == ' ' || s[8] == ' ' {
		return time.Time{}, false
	}
	rest, nsec, ok := parseFrac(s[19:])
	if !ok {
		return time.Time{}, false
	}
	var loc *time.Location
	switch {
	case rest == "Z" || rest == "z":
		loc = time.UTC
	case rest == "":
		loc = p.Loc
		if loc == nil {
			loc = time.Local
		}
	case (rest[0] == '+' || rest[0] == '-') && (len(rest) == 6 && rest[3] == ':' || len(rest) == 5):
		oh, okh := num2(rest[1:3])
		om, okm := num2(rest[len(rest)-2:])
		if !okh || !okm {
			return time.Time{}, false
		}
		off := (oh*60 + om) * 60
		if rest[0] == '-' {
			off = -off
		}
		loc = p.fixedZone(off)
	default:
		return time.Time{}, false
	}
	base := time.Date(y1*100+y2, time.Month(mo), d, hh, mm, ss, 0, loc)
	p.isoSec, p.isoZone, p.isoTime = s[:19], rest, base
	return base.Add(time.Duration(nsec)), true
}

// parseFrac parses an optional ".123456" and returns what follows.
func parseFrac(s string) (rest string, nsec int, ok bool) {
	if len(s) == 0 || s[0] != '.' {
		return s, 0, true
	}
	i, scale := 1, 100000000
	for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		nsec += int(s[i]-'0') * scale
		scale /= 10
	}
	return s[i:], nsec, i > 1
}

// fixedZone returns a cached location for a UTC offset in seconds.
func (p *HeaderParser) fixedZone(off int) *time.Location {
	if off == 0 {
		return time.UTC
	}
	if p.zone == nil || p.zoneOff != off {
		p.zone, p.zoneOff = time.FixedZone("", off), off
	}
	return p.zone
}

// journalEntry is the subset of a `journalctl -o json` record we read.
// Values are raw because journald writes non-UTF-8 fields as byte arrays.
type journalEntry struct {
	Message    json.RawMessage `json:"MESSAGE"`
	PID        json.RawMessage `json:"_PID"`
	SyslogPID  json.RawMessage `json:"SYSLOG_PID"`
	Identifier json.RawMessage `json:"SYSLOG_IDENTIFIER"`
	Comm       json.RawMessage `json:"_COMM"`
	UID        json.RawMessage `json:"_UID"`
	Hostname   json.RawMessage `json:"_HOSTNAME"`
	Realtime   json.RawMessage `json:"__REALTIME_TIMESTAMP"`
	Cursor     json.RawMessage `json:"__CURSOR"`
}

// journalValue decodes a journald JSON value: a string, an array of bytes,
// or (for repeated fields) an array of those, of which the first is used.
func journalValue(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	switch raw[0] {
	case '"':
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s
		}
	case '[':
		var b []byte
		var nums []int
		if json.Unmarshal(raw, &nums) == nil {
			b = make([]byte, 0, len(nums))
			for _, n := range nums {
				b = append(b, byte(n))
			}
			return strings.ToValidUTF8(string(b), "\ufffd")
		}
		var many []json.RawMessage
		if json.Unmarshal(raw, &many) == nil && len(many) > 0 {
			return journalValue(many[0])
		}
	}
	return ""
}

// journalTrust says what journald's trusted fields (_COMM and _UID, which
// journald sets itself) let an entry tagged program be believed for: all
// of it when sshd wrote it (sshd, sshd-session or sshd-auth running as
// root), its transfers only when an sftp server wrote it (sftp-server, or
// internal-sftp in sshd's process, running as the user, who could set
// that name too), nothing otherwise, whatever the unit.
func journalTrust(program, comm, uid string) (trusted, transfersOnly bool) {
	sshd := comm == "sshd" || comm == "sshd-session" || comm == "sshd-auth"
	switch {
	case uid == "0" && sshd:
		return true, false
	case program == "sftp-server" && comm == "sftp-server",
		program == "internal-sftp" && (comm == "sshd" || comm == "sshd-session"):
		return true, true
	}
	return false, false
}

func (p *HeaderParser) parseJSON(line string) (Header, bool) {
	var e journalEntry
	if err := json.Unmarshal([]byte(line), &e); err != nil || len(e.Message) == 0 {
		return Header{}, false
	}
	var h Header
	h.Program = journalValue(e.Identifier)
	if h.Program == "" {
		h.Program = journalValue(e.Comm)
	}
	if !knownProgram(h.Program) {
		return h, false
	}
	trusted, transfersOnly := journalTrust(h.Program, journalValue(e.Comm), journalValue(e.UID))
	if !trusted {
		h.Untrusted = true
		return h, false
	}
	h.TransfersOnly = transfersOnly
	h.Host = journalValue(e.Hostname)
	// journald's _PID, not SYSLOG_PID, which the writer chooses.
	h.PID, _ = strconv.Atoi(journalValue(e.PID))
	if us, err := strconv.ParseInt(journalValue(e.Realtime), 10, 64); err == nil {
		loc := p.Loc
		if loc == nil {
			loc = time.Local
		}
		h.Time = time.UnixMicro(us).In(loc)
	}
	h.Msg = journalValue(e.Message)
	if !utf8.ValidString(h.Msg) {
		h.Msg = strings.ToValidUTF8(h.Msg, "\ufffd")
	}
	return h, true
}
