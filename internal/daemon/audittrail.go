package daemon

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"sshguard-go/internal/alert"
	"sshguard-go/internal/config"
	"sshguard-go/internal/control"
	"sshguard-go/internal/detect"
	"sshguard-go/internal/session"
	"sshguard-go/internal/source"
	"sshguard-go/internal/store"

	"golang.org/x/time/rate"
)

// sessions keeps the audit trail: it feeds sshd's records and auditd's
// to a session.Tracker, stores each session when it starts (as open) and
// when it ends (its commands appended as they come), ends those whose
// sshd is gone, and raises the audit trail's alerts.
//
// The sshd pipeline never waits on it: it hands its records over through
// a bounded queue (submit), which drops and counts when full; run takes
// them, under mu, in a goroutine of its own, with the sweep. Only the
// audit log's reader and run take mu.
type sessions struct {
	db     *store.DB
	log    *slog.Logger
	worker *alert.Worker
	cfg    func() *config.Config
	host   string                 // this machine's name as syslog writes it
	alive  func(pid int) bool     // whether an sshd of this host still runs
	users  func() map[string]bool // the local accounts (targeted guesses)
	now    func() time.Time
	w      *sessionWriter // writes the records in groups

	in      chan detect.Record // sshd's records, from the pipeline (submit)
	dropped atomic.Int64       // records the queue had no room for

	mu       sync.Mutex // guards everything below
	t        *session.Tracker
	targeted map[string]time.Time // user NUL address -> last alert, for dedupe_logins
	failed   map[string]int64     // user NUL address -> failed attempts at a local account

	auditName  string          // the audit log followed, "" when none
	auditPos   source.Position // and how far
	auditDirty bool
	auditLast  time.Time // when the last audit line came
	audit      session.AuditParser
}

// maxTargeted bounds the users and addresses remembered for targeted
// guesses (a wave at real account names).
const maxTargeted = 10000

func newSessions(db *store.DB, log *slog.Logger, worker *alert.Worker, cfg func() *config.Config) (*sessions, error) {
	host := config.ShortHostname()
	s := &sessions{db: db, log: log, worker: worker, cfg: cfg, host: host, alive: sshdAlive, now: time.Now, w: newSessionWriter(db, log),
		in: make(chan detect.Record, sessionQueue), t: session.NewTracker(), targeted: map[string]time.Time{}, failed: map[string]int64{}}
	s.users = localAccounts("/etc/passwd", func() int { return cfg().Alerts.LocalMinUID })
	s.t.OnStart = func(ss *session.Session) { s.store(ss, true) }
	s.t.OnEnd = func(ss *session.Session) {
		s.store(ss, false)
		s.check(ss, s.now())
	}
	s.t.OnCommand = func(ss *session.Session, c session.Command, kept bool) {
		s.w.command(store.SessionKey(ss.Start, ss.Host, ss.PID), c, kept)
	}
	var restored int
	err := db.ActiveSessions(func(v []byte, chunks [][]byte) bool {
		ss, err := session.UnmarshalLive(v, chunks)
		if err != nil {
			log.Warn("an open session's record is unreadable; skipped", "err", err)
			return true
		}
		s.t.Restore(ss)
		restored++
		return true
	})
	if restored > 0 {
		log.Info("sessions open at the last stop, followed again", "sessions", restored)
	}
	return s, err
}

// store hands ss's record (active while open) to the writer.
func (s *sessions) store(ss *session.Session, active bool) {
	s.w.put(store.SessionKey(ss.Start, ss.Host, ss.PID), ss.Marshal(), active)
}

// sessionQueue bounds the sshd records waiting for the audit trail.
const sessionQueue = 4096

// submit hands one of sshd's records to the audit trail without waiting:
// when the queue is full it is dropped and counted.
func (s *sessions) submit(r *detect.Record) {
	select {
	case s.in <- *r:
	default:
		if n := s.dropped.Add(1); n&(n-1) == 0 { // the 1st, 2nd, 4th, 8th...
			s.log.Warn("the audit trail is behind: sshd records dropped from it (bans are not affected)", "dropped", n)
		}
	}
}

// run feeds the queued records to the tracker, and sweeps every 2 s,
// until ctx ends.
func (s *sessions) run(ctx context.Context) {
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			for {
				select {
				case r := <-s.in:
					s.record(&r)
				default:
					return
				}
			}
		case r := <-s.in:
			// The log's reader woke us: it goes on with its lines (a
			// ban among them) before the trail takes a processor.
			runtime.Gosched()
			s.record(&r)
		case <-tick.C:
			s.saveAuditPosition()
			s.sweep()
		}
	}
}

// record takes one of sshd's records.
func (s *sessions) record(r *detect.Record) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.t.Record(r)
	if r.Kind == detect.KindFailure && r.Counted > 0 && r.User != "" && r.Addr.IsValid() && s.cfg().Alerts.TargetedFailures {
		s.targetedGuess(r)
	}
}

// targetedGuess alerts on a failed attempt at an existing local account,
// once per user and address per dedupe_logins. s.mu is held.
func (s *sessions) targetedGuess(r *detect.Record) {
	if !s.users()[r.User] {
		return
	}
	k := r.User + "\x00" + r.Addr.String()
	if len(s.failed) >= maxTargeted {
		clear(s.failed)
		clear(s.targeted)
	}
	s.failed[k]++
	cfg := s.cfg()
	now := s.now()
	if last, ok := s.targeted[k]; ok && now.Sub(last) < time.Duration(cfg.Alerts.DedupeLogins) {
		return
	}
	s.targeted[k] = now
	s.alert(cfg, alert.Session{What: "targeted", User: r.User, Addr: r.Addr.String(), Method: r.Method, Failed: s.failed[k]}, now)
}

// alert puts a session alert in the outbox.
func (s *sessions) alert(cfg *config.Config, a alert.Session, now time.Time) {
	m := cfg.Alerts.Policy().SessionMessage(a, now)
	if m == nil {
		return
	}
	if _, err := s.worker.Enqueue(m); err != nil {
		s.log.Error("session alert", "err", err)
	}
}

// check raises a session's transfer and duration alerts, once each (the
// record keeps which were raised). s.mu is held.
func (s *sessions) check(ss *session.Session, now time.Time) {
	cfg := s.cfg()
	a := cfg.Alerts
	base := alert.Session{User: ss.User, Addr: ss.IP, Method: ss.Method, Start: ss.Start}
	raised := false
	if a.TransferAlertBytes > 0 && ss.Bytes() > a.TransferAlertBytes && !ss.Raised("transfer") {
		b := base
		b.What, b.Bytes, b.Limit = "transfer", ss.Bytes(), strconv.FormatInt(a.TransferAlertBytes, 10)
		s.alert(cfg, b, now)
		ss.Raise("transfer")
		raised = true
	}
	lasted := now.Sub(ss.Start)
	if ss.End != nil {
		lasted = ss.End.Sub(ss.Start)
	}
	if after := time.Duration(a.SessionAlertAfter); after > 0 && lasted > after && !ss.Raised("long") {
		b := base
		limit, _ := config.Duration(after).MarshalText()
		b.What, b.Lasted, b.Limit = "long", lasted, string(limit)
		s.alert(cfg, b, now)
		ss.Raise("long")
		raised = true
	}
	if raised {
		s.store(ss, ss.Active)
	}
}

// login and exec take auditd's records.
func (s *sessions) auditLine(line string, pos source.Position) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.audit.Line(line, s.t.Login, s.t.Exec)
	s.auditPos, s.auditDirty, s.auditLast = pos, true, time.Now()
}

// sweepAfter is how long a session's sshd may be gone with the session
// still open before the sweep ends it (its end lines may be on their way).
const sweepAfter = 10 * time.Second

// sweep ends the open sessions of this host whose sshd is gone, checks
// the duration alerts, and stops following the commands of sessions long
// ended. It runs every few seconds.
func (s *sessions) sweep() {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if time.Since(s.auditLast) > time.Second { // the event being gathered is complete: auditd writes one at once
		s.audit.Flush(s.t.Exec)
	}
	for _, ss := range s.t.Open() {
		if ss.Host == s.host && now.Sub(ss.LastSeen()) > sweepAfter && !s.alive(ss.PID) {
			why := session.EndKilled
			if ss.Restored {
				why = session.EndRestart
			}
			s.t.End(ss, now, why)
			continue
		}
		s.check(ss, now)
	}
	s.t.ExpireOld(time.Minute)
	s.w.flush() // what the sweep ended is on disk when it returns
}

// saveAuditPosition stores how far the audit log was read.
func (s *sessions) saveAuditPosition() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.auditDirty || s.auditName == "" {
		return
	}
	if err := s.db.SavePosition("audit:"+s.auditName, s.auditPos); err != nil {
		s.log.Error("save the audit log's position", "err", err)
		return
	}
	s.auditDirty = false
}

// followAudit reads auditd's log (from where it stopped; the first time
// from its end) until ctx ends.
func (s *sessions) followAudit(ctx context.Context, path string) error {
	// Polled (every 250 ms), not watched with inotify: every file tail
	// of the process shares one inotify reader, which hands each event
	// to its file's follower in turn, so a user writing the audit log
	// as fast as the disk takes it would queue the sshd log's events
	// behind thousands of its own. The trail can wait a quarter second.
	fresh := "reading " + path + " from its end, as with no saved position: commands written while the daemon was stopped are not read"
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		fresh = "reading " + path + " from its beginning once it appears, as with no saved position"
	}
	start, err := savedPosition[source.Position](s.db, s.log, "audit:"+path, fresh)
	if err != nil {
		return err
	}
	ft := &source.FileTail{Path: path, Start: start, Poll: true, Warn: func(msg string) { s.log.Warn(msg, "source", path) },
		Ready: func() { s.log.Info("reading", "source", path, "for", "session commands") }}
	s.mu.Lock()
	s.auditName = path
	s.mu.Unlock()
	// A user's commands can fill the audit log as fast as the disk takes
	// it: the reader takes at most auditRate (a flood is read late, the
	// trail's bounds apply as ever), and every auditSlice it lets other
	// goroutines run (a ban never waits for the scheduler's 10 ms slice).
	lim := rate.NewLimiter(auditRate, auditBurst)
	var since int // bytes read since this reader last stepped aside
	return ft.Run(ctx, func(line string, pos source.Position) {
		s.auditLine(line, pos)
		if since += len(line); since >= auditSlice {
			if lim.WaitN(ctx, min(since, auditBurst)) != nil {
				return // ctx ended: Run returns
			}
			since = 0
			runtime.Gosched()
		}
	})
}

// auditSlice is how much of the audit log is read at one go, auditRate
// the most read a second (a busy bastion host writes kilobytes a
// second), auditBurst the most at once.
const (
	auditSlice = 64 << 10
	auditRate  = 8 << 20
	auditBurst = 4 << 20
)

// sshdAlive reports whether pid is a running sshd (or sshd-session).
func sshdAlive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	return err == nil && strings.HasPrefix(string(b), "sshd")
}

// localAccounts returns the names of path's accounts with a uid of at
// least minUID, read again when the file changes (looked at every 10 s
// at most: it is asked on every failed attempt at a local account) or
// minUID does (a reload).
func localAccounts(path string, minUID func() int) func() map[string]bool {
	var mod, checked time.Time
	var users map[string]bool
	var uidFor int
	return func() map[string]bool {
		if users != nil && minUID() == uidFor && time.Since(checked) < 10*time.Second {
			return users
		}
		checked = time.Now()
		st, err := os.Stat(path)
		if err != nil {
			return nil
		}
		if users != nil && minUID() == uidFor && st.ModTime().Equal(mod) {
			return users
		}
		f, err := os.Open(path)
		if err != nil {
			return nil
		}
		defer f.Close()
		users, mod, uidFor = map[string]bool{}, st.ModTime(), minUID()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fields := strings.Split(sc.Text(), ":")
			if len(fields) < 3 {
				continue
			}
			if uid, err := strconv.Atoi(fields[2]); err == nil && uid >= minUID() && uid != 65534 { // nobody
				users[fields[0]] = true
			}
		}
		return users
	}
}

// status is the audit log's source status (false when none is read).
func (s *sessions) status() (control.SourceStatus, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.auditName == "" {
		return control.SourceStatus{}, false
	}
	st := control.SourceStatus{Name: s.auditName + " (session commands)", Position: fmt.Sprintf("inode %d offset %d", s.auditPos.Ino, s.auditPos.Offset),
		Lines: s.audit.Lines}
	if n := s.dropped.Load(); n > 0 {
		st.Why = fmt.Sprintf("%d sshd records dropped (queue full)", n)
	}
	return st, true
}
