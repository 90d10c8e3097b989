package session

import (
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"time"
)

// Login is auditd's LOGIN record: pam_loginuid gave the sshd process PID
// the audit session Ses (the id every later record of the session
// carries).
type Login struct {
	Time time.Time
	PID  int
	Ses  int64
}

// Exec is one execve that auditd logged, in an audit session.
type Exec struct {
	Ses int64
	Command
}

// unset is auditd's "no audit session" (4294967295, -1 as unsigned).
const unset = 4294967295

// AuditParser reads auditd's log lines (the raw or the enriched format,
// with or without node=) and gives the LOGIN records and the execve
// events of audit sessions. The records of one event share its serial
// and come one after the other; an event is complete when a line of
// another serial (or EOE) comes, or at Flush. The zero value is ready.
type AuditParser struct {
	serial string // the event being gathered
	at     time.Time
	ses    int64 // from its SYSCALL record
	exit   int64
	argv   []string
	argc   int
	cwd    string
	exec   bool // it has an EXECVE record
	size   int  // bytes of argv kept
	cut    int  // bytes of argv dropped (arguments over maxArg, argv over maxArgvBytes)
	Lines  int64
	Bad    int64 // lines that were not audit records
	// BadArgc counts EXECVE records whose argc was missing, negative or
	// out of range (read as no arguments, or as maxArgc at most).
	BadArgc int64
	// Cut counts commands whose argv was shortened (too many arguments,
	// an argument over 1 KiB, or more than 4 KiB in all).
	Cut int64
}

// Line reads one line and calls login or exec for what it completes.
func (p *AuditParser) Line(line string, login func(Login), exec func(Exec)) {
	p.Lines++
	if i := strings.IndexByte(line, 0x1d); i >= 0 { // the enriched part: names for ids
		line = line[:i]
	}
	if strings.HasPrefix(line, "node=") {
		if i := strings.IndexByte(line, ' '); i > 0 {
			line = line[i+1:]
		}
	}
	typ, rest, ok := strings.Cut(strings.TrimPrefix(line, "type="), " ")
	if !ok || !strings.HasPrefix(line, "type=") {
		p.Bad++
		return
	}
	head, fields, ok := strings.Cut(rest, "): ")
	stamp, okPrefix := strings.CutPrefix(head, "msg=audit(")
	sec, serial, ok2 := strings.Cut(stamp, ":")
	if !ok || !okPrefix || !ok2 {
		p.Bad++
		return
	}
	if serial != p.serial {
		p.Flush(exec)
		p.serial, p.at = serial, parseStamp(sec)
	}
	switch typ {
	case "LOGIN":
		f := parseFields(fields)
		pid, _ := strconv.Atoi(f["pid"])
		ses, err := strconv.ParseInt(f["ses"], 10, 64)
		if err == nil && pid > 0 && ses != unset && f["res"] == "1" && login != nil {
			login(Login{Time: p.at, PID: pid, Ses: ses})
		}
	case "SYSCALL":
		f := parseFields(fields)
		p.ses, _ = strconv.ParseInt(f["ses"], 10, 64)
		p.exit, _ = strconv.ParseInt(f["exit"], 10, 64)
	case "EXECVE":
		p.exec = true
		p.execve(fields)
	case "CWD":
		p.cwd = decodeValue(parseFields(fields)["cwd"])
		if len(p.cwd) > maxArg {
			p.cwd = strings.Clone(p.cwd[:maxArg])
		}
	case "EOE":
		p.Flush(exec)
	}
}

// Flush completes the event being gathered.
func (p *AuditParser) Flush(exec func(Exec)) {
	if p.exec && p.ses != 0 && p.ses != unset && exec != nil {
		argv := p.argv
		if argv == nil {
			argv = []string{}
		}
		more := p.argc - len(argv)
		if more > 0 {
			argv = append(argv, "... ("+strconv.Itoa(more)+" more)")
		}
		if more > 0 || p.cut > 0 {
			p.Cut++
		}
		exec(Exec{Ses: p.ses, Command: Command{Time: p.at, Argv: argv, Cwd: p.cwd, Exit: p.exit, CutBytes: p.cut}})
	}
	*p = AuditParser{Lines: p.Lines, Bad: p.Bad, BadArgc: p.BadArgc, Cut: p.Cut}
}

// maxArgc is the most arguments an EXECVE record is believed to announce
// (the kernel's own limit on argv is far below): past it argc is out of
// range and read as this.
const maxArgc = 1 << 20

// execve reads "argc=3 a0="sh" a1=2D63 a2_len=9000 a2[0]=..." into argv.
// The kernel splits a long argv over several EXECVE records of one event:
// only the first has argc, the others go on with the next indexes. At
// most maxArgv arguments of maxArg bytes each, maxArgvBytes in all, are
// kept; what is dropped is counted (the arguments in Flush's "... (N
// more)", the bytes in the command's CutBytes). Whatever the record
// says, nothing is allocated beyond those bounds.
func (p *AuditParser) execve(fields string) {
	f := parseFields(fields)
	if v, ok := f["argc"]; ok {
		n, err := strconv.Atoi(v)
		switch {
		case errors.Is(err, strconv.ErrRange) && n > 0, err == nil && n > maxArgc:
			p.BadArgc++
			n = maxArgc
		case err != nil || n < 0:
			p.BadArgc++
			n = 0
		}
		p.argc, p.argv, p.size, p.cut = n, make([]string, 0, min(n, maxArgv)), 0, 0
	}
	for i := len(p.argv); i < min(p.argc, maxArgv); i++ {
		k := "a" + strconv.Itoa(i)
		v, ok := f[k]
		if !ok { // a long argument, logged in parts a2[0], a2[1], ...
			var b strings.Builder
			for j := 0; b.Len() < 2*maxArg; j++ {
				part, ok := f[k+"["+strconv.Itoa(j)+"]"]
				if !ok {
					break
				}
				b.WriteString(part[:min(len(part), 2*maxArg-b.Len())])
			}
			if b.Len() == 0 {
				return // in the next record of the event, or nowhere
			}
			v = b.String()
		}
		a, full := decodeArg(v, min(maxArg, maxArgvBytes-p.size))
		if n, err := strconv.Atoi(f[k+"_len"]); err == nil && n > full { // its length, when logged in parts
			full = min(n, maxArgc)
		}
		p.cut += full - len(a)
		p.size += len(a)
		p.argv = append(p.argv, strings.Clone(a))
	}
}

// decodeArg is decodeValue for an argument: at most room bytes of it are
// decoded (a long hex one is not decoded whole to be cut), and full is
// its length.
func decodeArg(v string, room int) (a string, full int) {
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' || v == "(null)" {
		a = decodeValue(v)
		return a[:min(len(a), room)], len(a)
	}
	if len(v)%2 == 0 && len(v) > 2*room {
		if b, err := hex.DecodeString(v[:2*room]); err == nil && isHex(v[2*room:]) {
			return string(b), len(v) / 2
		}
	}
	a = decodeValue(v)
	return a[:min(len(a), room)], len(a)
}

func isHex(s string) bool {
	for i := range len(s) {
		if c := s[i]; !('0' <= c && c <= '9' || 'A' <= c && c <= 'F' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// decodeValue reads a quoted value as it is and an unquoted one as hex
// (auditd writes values with spaces, quotes or control characters so).
func decodeValue(v string) string {
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		return v[1 : len(v)-1]
	}
	if v == "(null)" {
		return ""
	}
	if b, err := hex.DecodeString(v); err == nil {
		return string(b)
	}
	return v
}

// parseFields splits "k=v k="v" k='v w'" into a map.
func parseFields(s string) map[string]string {
	m := map[string]string{}
	for s != "" {
		s = strings.TrimLeft(s, " ")
		k, rest, ok := strings.Cut(s, "=")
		if !ok {
			break
		}
		var v string
		switch {
		case strings.HasPrefix(rest, `"`):
			end := strings.IndexByte(rest[1:], '"')
			if end < 0 { // unterminated: the rest of the line, as it is
				v, s = rest, ""
				break
			}
			v, s = rest[:end+2], rest[end+2:]
		case strings.HasPrefix(rest, "'"):
			end := strings.IndexByte(rest[1:], '\'')
			if end < 0 {
				v, s = rest[1:], ""
				break
			}
			v, s = rest[1:end+1], rest[end+2:]
		default:
			v, s, _ = strings.Cut(rest, " ")
		}
		m[k] = v
	}
	return m
}

// parseStamp reads "1796057640.455" (seconds.milliseconds).
func parseStamp(s string) time.Time {
	sec, frac, _ := strings.Cut(s, ".")
	n, err := strconv.ParseInt(sec, 10, 64)
	if err != nil {
		return time.Time{}
	}
	ms, _ := strconv.ParseInt((frac + "000")[:3], 10, 64)
	return time.Unix(n, ms*int64(time.Millisecond))
}
