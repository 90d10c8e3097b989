package session

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"sshguard-go/internal/detect"
)

// Bounds of a Tracker.
const (
	MaxOpen    = 10000 // open sessions followed at once
	maxPending = 1000  // audit records waiting for their session
	// joinSlack is how far apart auditd's LOGIN record and sshd's
	// "Accepted" line of one session may be (two logs, two clocks' worth
	// of buffering).
	joinSlack = 10 * time.Second
)

type conn struct {
	host string
	pid  int
}

type peer struct {
	host, ip string
	port     int
}

// Tracker joins records into sessions. OnStart is called when a session
// starts and when it learns its audit session id (store it as open);
// OnEnd when it ends (store it as it is now: its transfers and commands
// are complete, but for commands auditd logs later, which come with
// another OnEnd). A Tracker is not safe for concurrent use.
type Tracker struct {
	OnStart func(*Session)
	OnEnd   func(*Session)
	// OnCommand, when set, takes each command of a session in place of
	// its Commands list and of the OnEnd of a late one (the daemon
	// appends them to the stored record as they come). kept is false for
	// a command dropped over the bounds: the receiver counts it.
	OnCommand func(s *Session, c Command, kept bool)
	budget    budget

	open   map[conn]*Session // by host and the pid that accepted it
	peers  map[peer]*Session // by host, client address and port
	kids   map[conn]*Session // by host and the pid of its sftp server
	audits map[int64]*Session
	ended  []*Session // ended a moment ago, still taking auditd's late records (until Expire)
	order  []*Session // open ones as they came (and ended ones not yet skipped): the oldest gives way

	latest time.Time // the newest time either log has shown: the clock Expire goes by

	logins map[int][]Login  // LOGIN records before their session's "Accepted"
	execs  map[int64][]Exec // commands before their session's LOGIN
	nexecs int
	pbytes int64 // their size
}

// Bounds of the commands waiting for their session's LOGIN.
const maxPendingBytes = 4 << 20

// budget is the audit trail's day: the bytes of commands and transfers
// kept for each user and for everyone on the newest day (UTC) the
// records have shown. A late record of the day before counts against
// the newest one. It is kept in memory: a restart starts the day over.
type budget struct {
	day   int64
	total int64
	users map[string]int64
}

// maxBudgetUsers bounds the users counted apart in a day; past it the new
// ones share one count.
const maxBudgetUsers = 10000

// take reports whether n more bytes of user's at at fit the day, and
// counts them if so.
func (b *budget) take(user string, at time.Time, n int64) bool {
	if day := at.Unix() / 86400; day > b.day || b.users == nil {
		b.day, b.total, b.users = max(day, b.day), 0, map[string]int64{}
	}
	if _, ok := b.users[user]; !ok && len(b.users) >= maxBudgetUsers {
		user = "\x00others"
	}
	if b.total+n > MaxDayBytes || b.users[user]+n > MaxUserDayBytes {
		return false
	}
	b.total += n
	b.users[user] += n
	return true
}

// NewTracker returns an empty Tracker.
func NewTracker() *Tracker {
	return &Tracker{open: map[conn]*Session{}, peers: map[peer]*Session{}, kids: map[conn]*Session{},
		audits: map[int64]*Session{}, logins: map[int][]Login{}, execs: map[int64][]Exec{}}
}

// Open is the sessions open now, oldest first.
func (t *Tracker) Open() []*Session {
	out := make([]*Session, 0, len(t.open))
	for _, s := range t.open {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b *Session) int { return a.Start.Compare(b.Start) })
	return out
}

// Restore follows s again (an open session read back from the database
// at start).
func (t *Tracker) Restore(s *Session) {
	s.Restored, s.Active, s.lastSeen = true, true, time.Now()
	t.add(s)
	if s.AuditID != 0 {
		t.audits[s.AuditID] = s
	}
}

func (t *Tracker) add(s *Session) {
	c := conn{s.Host, s.PID}
	if old := t.open[c]; old != nil { // the same process began another: the old one's end was not logged
		t.end(old, s.Start, EndUnknown)
	}
	if len(t.open) >= MaxOpen { // the oldest gives way
		t.end(t.oldest(), s.Start, EndUnknown)
	}
	t.open[c] = s
	t.order = append(t.order, s)
	t.peers[peer{s.Host, s.IP, s.Port}] = s
}

// oldest is the open session that came first: ended ones at the front of
// the order are dropped on the way (O(1) a session over its life).
func (t *Tracker) oldest() *Session {
	i := 0
	for i < len(t.order) && !t.order[i].Active {
		i++
	}
	t.order = t.order[i:]
	if len(t.order) == 0 {
		return nil
	}
	return t.order[0]
}

// Record takes one of sshd's records.
func (t *Tracker) Record(r *detect.Record) {
	if r.Time.After(t.latest) {
		t.latest = r.Time
	}
	if r.PID == 0 {
		return // nothing to join it to
	}
	c := conn{r.Host, r.PID}
	switch r.Kind {
	case detect.KindSuccess:
		if !r.Addr.IsValid() {
			return
		}
		s := &Session{Host: strings.Clone(r.Host), PID: r.PID, User: strings.Clone(r.User), IP: r.Addr.String(), Port: r.Port,
			Method: strings.Clone(r.Method), Key: strings.Clone(r.Key), Start: r.Time, Active: true, lastSeen: r.Time,
			Transfers: []Transfer{}, Commands: []Command{}}
		t.add(s)
		t.joinLogin(s)
		if t.OnStart != nil {
			t.OnStart(s)
		}
	case detect.KindNotice:
		if r.Reason == "received_disconnect" {
			if s := t.byPeer(r); s != nil {
				s.lastSeen = r.Time
				if s.hint == "" {
					s.hint = EndDisconnect
					if logout(r) {
						s.hint = EndLogout
					}
				}
			}
		}
	case detect.KindSessionClose:
		switch r.Reason {
		case "session_closed": // PAM, in the process that accepted it
			if s := t.open[c]; s != nil {
				t.end(s, r.Time, cmpOr(s.hint, EndKilled))
			}
		case "timeout_user", "timeout":
			if s := t.byPeer(r); s != nil {
				t.end(s, r.Time, EndTimeout)
			}
		default: // disconnected_user, closed_user, reset_user, disconnected: the connection is over
			if s := t.byPeer(r); s != nil {
				t.end(s, r.Time, cmpOr(s.hint, EndDisconnect))
			}
		}
	case detect.KindTransfer:
		switch r.Reason {
		case "sftp_session_open":
			if s := t.sftpOf(r); s != nil {
				s.sftp, s.lastSeen = true, r.Time
				t.kids[c] = s
			}
		case "sftp_close":
			if s := t.kids[c]; s != nil {
				s.lastSeen = r.Time
				tr := Transfer{Time: r.Time, Path: r.Path, BytesRead: r.Read, BytesWritten: r.Wrote}
				if n := tr.Size(); len(s.Transfers) < MaxTransfers && s.xferBytes+n <= MaxSessionTransferBytes && t.budget.take(s.User, r.Time, n) {
					tr.Path = strings.Clone(tr.Path)
					s.Transfers = append(s.Transfers, tr)
					s.xferBytes += n
				} else {
					s.TransfersMore++
					s.TransferBytesMore += n
				}
			}
		case "sftp_session_close":
			delete(t.kids, c)
		}
	}
}

// logout reports whether a "Received disconnect" is the client's own
// goodbye: reason code 11, SSH2_DISCONNECT_BY_APPLICATION.
func logout(r *detect.Record) bool {
	return strings.Contains(r.Text, " port "+strconv.Itoa(r.Port)+":11: ")
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func (t *Tracker) byPeer(r *detect.Record) *Session {
	if !r.Addr.IsValid() {
		return nil
	}
	return t.peers[peer{r.Host, r.Addr.String(), r.Port}]
}

// sftpOf finds the session an sftp server belongs to: the newest open
// session of its user from its address on its host that has none yet
// (internal-sftp logs no port).
func (t *Tracker) sftpOf(r *detect.Record) *Session {
	var best *Session
	ip := r.Addr.String()
	for _, s := range t.open {
		if s.Host == r.Host && s.User == r.User && s.IP == ip && !s.sftp && (best == nil || s.Start.After(best.Start)) {
			best = s
		}
	}
	return best
}

// end closes s and hands it to OnEnd; it keeps taking auditd's late
// commands until Expire drops it.
func (t *Tracker) end(s *Session, at time.Time, why string) {
	c := conn{s.Host, s.PID}
	if t.open[c] == s {
		delete(t.open, c)
	}
	if p := (peer{s.Host, s.IP, s.Port}); t.peers[p] == s {
		delete(t.peers, p)
	}
	for k, v := range t.kids {
		if v == s {
			delete(t.kids, k)
		}
	}
	s.end(at, why)
	if len(t.ended) >= MaxOpen { // a flood of short sessions: the oldest stop taking late records
		t.Expire(t.ended[len(t.ended)/2].End.Add(time.Nanosecond))
	}
	t.ended = append(t.ended, s)
	if len(t.order) > 2*len(t.open)+1024 { // drop the ended ones: amortised O(1) a session
		keep := make([]*Session, 0, len(t.open))
		for _, o := range t.order {
			if o.Active {
				keep = append(keep, o)
			}
		}
		t.order = keep
	}
	if t.OnEnd != nil {
		t.OnEnd(s)
	}
}

// End closes s (the daemon's sweep, for a session whose sshd is gone).
func (t *Tracker) End(s *Session, at time.Time, why string) {
	if s.Active {
		t.end(s, at, why)
	}
}

// ExpireOld stops following the late records of the sessions that ended
// more than grace before the newest time the logs have shown (a log read
// from long ago expires by its own clock, not the wall's).
func (t *Tracker) ExpireOld(grace time.Duration) { t.Expire(t.latest.Add(-grace)) }

// Expire stops following the late records of the sessions that ended
// before before (their audit session is over).
func (t *Tracker) Expire(before time.Time) {
	keep := t.ended[:0]
	for _, s := range t.ended {
		if s.End.Before(before) {
			if t.audits[s.AuditID] == s {
				delete(t.audits, s.AuditID)
			}
			continue
		}
		keep = append(keep, s)
	}
	clear(t.ended[len(keep):])
	t.ended = keep
}

// Login takes auditd's LOGIN record of a session (open, or ended a
// moment ago: the two logs are read apart).
func (t *Tracker) Login(l Login) {
	if l.Time.After(t.latest) {
		t.latest = l.Time
	}
	for _, s := range t.open {
		if s.PID == l.PID && near(s.Start, l.Time) && s.AuditID == 0 {
			t.setAudit(s, l.Ses)
			return
		}
	}
	for _, s := range t.ended {
		if s.PID == l.PID && near(s.Start, l.Time) && s.AuditID == 0 {
			t.setAudit(s, l.Ses)
			return
		}
	}
	if len(t.logins) >= maxPending {
		clear(t.logins) // an audit log of another machine: nothing joins
	}
	t.logins[l.PID] = append(t.logins[l.PID], l)
}

func near(a, b time.Time) bool { d := a.Sub(b); return d < joinSlack && d > -joinSlack }

// joinLogin gives s the audit session of a LOGIN record that came first.
func (t *Tracker) joinLogin(s *Session) {
	ls := t.logins[s.PID]
	for i, l := range ls {
		if near(s.Start, l.Time) {
			t.logins[s.PID] = slices.Delete(ls, i, i+1)
			if len(t.logins[s.PID]) == 0 {
				delete(t.logins, s.PID)
			}
			t.setAudit(s, l.Ses)
			return
		}
	}
}

func (t *Tracker) setAudit(s *Session, ses int64) {
	s.AuditID = ses
	t.audits[ses] = s
	for _, e := range t.execs[ses] {
		t.command(s, e.Command)
		t.pbytes -= e.Size()
	}
	t.nexecs -= len(t.execs[ses])
	delete(t.execs, ses)
	switch {
	case s.Active && t.OnStart != nil:
		t.OnStart(s)
	case !s.Active && t.OnEnd != nil:
		t.OnEnd(s) // ended before its LOGIN came: written again, with its commands
	}
}

// Exec takes one command auditd logged.
func (t *Tracker) Exec(e Exec) {
	if e.Time.After(t.latest) {
		t.latest = e.Time
	}
	if s := t.audits[e.Ses]; s != nil {
		t.command(s, e.Command)
		if !s.Active && t.OnEnd != nil && t.OnCommand == nil {
			t.OnEnd(s) // a late one: the record again, with it
		}
		return
	}
	if t.nexecs >= maxPending*10 || t.pbytes+e.Size() > maxPendingBytes {
		clear(t.execs) // an audit log of another machine, or a flood: nothing joins
		t.nexecs, t.pbytes = 0, 0
	}
	if len(t.execs[e.Ses]) < MaxCommands {
		t.execs[e.Ses] = append(t.execs[e.Ses], e)
		t.nexecs++
		t.pbytes += e.Size()
	}
}

// command gives s the command c, or counts it dropped when it is over a
// bound: the session's count or bytes, its user's day, everyone's day.
func (t *Tracker) command(s *Session, c Command) {
	n := c.Size()
	kept := s.ncmd < MaxCommands && s.cmdBytes+n <= MaxSessionCommandBytes && t.budget.take(s.User, c.Time, n)
	if kept {
		s.ncmd++
		s.cmdBytes += n
	}
	switch {
	case t.OnCommand != nil:
		t.OnCommand(s, c, kept)
	case kept:
		s.Commands = append(s.Commands, c)
	default:
		s.CommandsMore++
		s.CommandBytesMore += n
	}
}
