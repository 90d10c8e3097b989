package session

import (
	"fmt"
	"io"
	"slices"

	"sshguard-go/internal/detect"
	"sshguard-go/internal/source"
)

// Offline builds the sessions of logs read after the fact ("sessions
// FILE..."): auditd's lines first (AuditLine), then sshd's records in
// order (Record); each record is preceded by the audit records up to its
// time, as the daemon would have read them.
type Offline struct {
	t        *Tracker
	parser   AuditParser
	logins   []Login
	execs    []Exec
	li, ei   int
	sessions []*Session
	seen     map[*Session]bool
}

// NewOffline returns an empty Offline.
func NewOffline() *Offline {
	o := &Offline{t: NewTracker(), seen: map[*Session]bool{}}
	keep := func(s *Session) {
		if !o.seen[s] {
			o.seen[s] = true
			o.sessions = append(o.sessions, s)
		}
	}
	o.t.OnStart, o.t.OnEnd = keep, keep
	return o
}

// ReadAudit reads auditd's logs names (patterns expanded, archives by
// content), before any of sshd's records.
func (o *Offline) ReadAudit(names []string, stdin io.Reader) error {
	for _, name := range names {
		for _, n := range source.Glob(name) {
			in, err := source.OpenInput(n, stdin)
			if err != nil {
				return err
			}
			err = in.Lines(func(text string, _ int64) { o.AuditLine(text) })
			in.Close()
			if err != nil {
				return fmt.Errorf("%s: %w", n, err)
			}
		}
	}
	return nil
}

// AuditLine reads one line of auditd's log.
func (o *Offline) AuditLine(line string) {
	o.parser.Line(line, func(l Login) { o.logins = append(o.logins, l) }, func(e Exec) { o.execs = append(o.execs, e) })
}

// Record takes one of sshd's records.
func (o *Offline) Record(r *detect.Record) {
	if o.li == 0 && o.ei == 0 {
		o.parser.Flush(func(e Exec) { o.execs = append(o.execs, e) })
		slices.SortStableFunc(o.logins, func(a, b Login) int { return a.Time.Compare(b.Time) })
		slices.SortStableFunc(o.execs, func(a, b Exec) int { return a.Time.Compare(b.Time) })
	}
	if !r.Time.IsZero() {
		o.auditUntil(func(l Login) bool { return !l.Time.After(r.Time) }, func(e Exec) bool { return !e.Time.After(r.Time) })
	}
	o.t.Record(r)
}

// auditUntil feeds the audit records while they pass.
func (o *Offline) auditUntil(login func(Login) bool, exec func(Exec) bool) {
	for {
		switch {
		case o.li < len(o.logins) && (o.ei == len(o.execs) || !o.logins[o.li].Time.After(o.execs[o.ei].Time)) && login(o.logins[o.li]):
			o.t.Login(o.logins[o.li])
			o.li++
		case o.ei < len(o.execs) && exec(o.execs[o.ei]):
			o.t.Exec(o.execs[o.ei])
			o.ei++
		default:
			return
		}
	}
}

// Sessions feeds what audit records are left and returns every session,
// ended or still open at the logs' end, by start.
func (o *Offline) Sessions() []*Session {
	if o.li == 0 && o.ei == 0 {
		o.parser.Flush(func(e Exec) { o.execs = append(o.execs, e) })
	}
	o.auditUntil(func(Login) bool { return true }, func(Exec) bool { return true })
	out := slices.Clone(o.sessions)
	slices.SortStableFunc(out, func(a, b *Session) int { return a.Start.Compare(b.Start) })
	return out
}
