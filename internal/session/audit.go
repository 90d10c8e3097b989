package session

import (
	"encoding/hex"
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
	Lines  int64
	Bad    int64 // lines that were not audit records
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
	case "EOE":
		p.Flush(exec)
	}
}

// Flush completes the event being gathered.
func (p *AuditParser) Flush(exec func(Exec)) {
	if p.exec && p.ses != 0 && p.ses != unset && exec != nil {
		argv := p.argv
		if more := p.argc - len(argv); more > 0 {
			argv = append(argv, "... ("+strconv.Itoa(more)+" more)")
		}
		exec(Exec{Ses: p.ses, Command: Command{Time: p.at, Argv: argv, Cwd: p.cwd, Exit: p.exit}})
	}
	*p = AuditParser{Lines: p.Lines, Bad: p.Bad}
}

// execve reads "argc=3 a0="sh" a1=2D63 a2_len=9000 a2[0]=..." into argv.
func (p *AuditParser) execve(fields string) {
	f := parseFields(fields)
	p.argc, _ = strconv.Atoi(f["argc"])
	n := min(p.argc, maxArgv)
	p.argv = make([]string, 0, n)
	for i := range n {
		k := "a" + strconv.Itoa(i)
		v, ok := f[k]
		if !ok { // a long argument, logged in parts a2[0], a2[1], ...
			var b strings.Builder
			for j := 0; b.Len() < 2*maxArg; j++ {
				part, ok := f[k+"["+strconv.Itoa(j)+"]"]
				if !ok {
					break
				}
				b.WriteString(part)
			}
			v = b.String()
		}
		a := decodeValue(v)
		if len(a) > maxArg {
			a = a[:maxArg]
		}
		p.argv = append(p.argv, a)
	}
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
			if end < 0 {
				end = len(rest) - 1
			}
			v, s = rest[:end+2], rest[min(end+2, len(rest)):]
		case strings.HasPrefix(rest, "'"):
			end := strings.IndexByte(rest[1:], '\'')
			if end < 0 {
				end = len(rest) - 1
			}
			v, s = rest[1:end+1], rest[min(end+2, len(rest)):]
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
