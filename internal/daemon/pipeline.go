package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"sshguard-go/internal/api"
	"sshguard-go/internal/config"
	"sshguard-go/internal/control"
	"sshguard-go/internal/detect"
	"sshguard-go/internal/engine"
	"sshguard-go/internal/source"
	"sshguard-go/internal/store"
)

// pipeline reads the log source, turns its lines into records (detect)
// and hands them to the engine, and keeps the read position.
//
// A line travels: source (FileTail or Journal) -> pipeline.line ->
// detect.Scanner (header, classifier, correlator) -> pipeline.handle ->
// engine.Guard.Submit -> (bans) engine.Guard.Run.
type pipeline struct {
	cfg      config.LogConfig
	db       *store.DB
	guard    *engine.Guard
	log      *slog.Logger
	ready    func()      // called once the starting point is fixed
	events   *api.Events // each record is kept here too (nil: not kept)
	sessions *sessions   // and joined into sessions (nil: not)

	saveMu sync.Mutex // one position written at a time, the newest last

	mu       sync.Mutex // guards everything below
	scan     detect.Scanner
	name     string
	pos      source.Position
	cursor   string
	lines    int64
	last     time.Time // when the last line came
	posDirty bool
	state    string    // starting, reading, waiting, failed
	why      string    // what it waits for, or why it failed
	newest   time.Time // the newest time a line read bore
}

func newPipeline(cfg config.LogConfig, db *store.DB, g *engine.Guard, log *slog.Logger) *pipeline {
	p := &pipeline{cfg: cfg, db: db, guard: g, log: log, state: "starting"}
	p.scan.Header.Now = time.Now
	src := resolveSource(cfg)
	p.cfg.File, p.cfg.Journal, p.name = src.file, src.journal, src.String()
	return p
}

// run follows the source until ctx ends (it then returns ctx.Err()) or the
// source fails.
func (p *pipeline) run(ctx context.Context) error {
	err := p.follow(ctx)
	if err != nil && ctx.Err() == nil {
		p.setState("failed", err.Error())
	}
	return err
}

func (p *pipeline) setState(state, why string) {
	p.mu.Lock()
	p.state, p.why = state, why
	p.mu.Unlock()
}

// waitFor warns every minute while the log file does not exist (log.wait),
// until it does or ctx ends.
func (p *pipeline) waitFor(ctx context.Context) {
	tick := time.NewTicker(time.Minute)
	defer tick.Stop()
	for {
		if _, err := os.Stat(p.name); err == nil {
			return
		}
		p.setState("waiting", p.name+" does not exist yet")
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			p.log.Warn("waiting for the log file to appear (log.wait)", "file", p.name)
		}
	}
}

func (p *pipeline) follow(ctx context.Context) error {
	// The engine is called under a context that does not end with ctx: a
	// ban decided while the daemon stops is still written.
	sub := context.WithoutCancel(ctx)
	ready := func() {
		p.log.Info("reading", "source", p.name)
		p.setState("reading", "")
		if p.ready != nil {
			p.ready()
		}
	}
	if p.cfg.Journal {
		cursor, err := savedPosition[string](p.db, p.log, "journald",
			"reading the journal from now on, as with no saved position: entries written while the daemon was stopped are not read")
		if err != nil {
			return err
		}
		j := &source.Journal{Cursor: cursor, Warn: p.warn, MachineID: machineID(), Ready: ready}
		return j.Run(ctx, func(line, cursor string) {
			p.line(sub, line, func() { p.cursor = cursor })
		})
	}
	// What the file source does without a saved position (FileTail.Start
	// zero), said when the saved one is damaged.
	fresh := "reading " + p.name + " from its end, as with no saved position: lines written while the daemon was stopped are not read"
	if p.cfg.FromStart {
		fresh = "reading " + p.name + " from its beginning, as with no saved position (log.from_start)"
	}
	if _, err := os.Stat(p.name); errors.Is(err, os.ErrNotExist) {
		fresh = "reading " + p.name + " from its beginning once it appears, as with no saved position"
		if !p.cfg.Wait {
			return errNoLogFile(p.name)
		}
		p.log.Warn("the log file does not exist yet; waiting for it (log.wait)", "file", p.name)
		ready = func() { // ready now: lines are read from its start once it appears
			if p.ready != nil {
				p.ready()
			}
		}
		go p.waitFor(ctx)
	}
	start, err := savedPosition[source.Position](p.db, p.log, p.name, fresh)
	if err != nil {
		return err
	}
	ft := &source.FileTail{Path: p.name, Start: start, FromStart: p.cfg.FromStart, Warn: p.warn, Ready: ready}
	return ft.Run(ctx, func(line string, pos source.Position) {
		p.line(sub, line, func() { p.pos = pos })
	})
}

// savedPosition is the read position saved in db under key, the zero T
// when there is none. A record that does not decode (store.ErrBadRecord)
// is warned about, naming the database and the key, with fresh, what the
// source does instead: what it does without a saved position, as the zero
// T asks; the daemon goes on, and its next save replaces the record.
// Other errors (a damaged database) are returned.
func savedPosition[T any](db *store.DB, log *slog.Logger, key, fresh string) (T, error) {
	var pos T
	err := db.Position(key, &pos)
	switch {
	case err == nil:
		return pos, nil
	case errors.Is(err, store.ErrBadRecord):
		log.Warn("the saved read position is damaged; "+fresh, "db", db.Path(), "key", key, "err", err)
		fallthrough
	case errors.Is(err, store.ErrNotFound):
		var none T
		return none, nil
	}
	var none T
	return none, err
}

// machineID returns this machine's ID from /etc/machine-id, or "".
func machineID() string {
	b, err := os.ReadFile("/etc/machine-id")
	if err != nil {
		return ""
	}
	id := strings.TrimSpace(string(b))
	if len(id) != 32 {
		return ""
	}
	return id
}

func (p *pipeline) warn(msg string) { p.log.Warn(msg, "source", p.name) }

// line scans one line and hands its records to the engine under ctx.
func (p *pipeline) line(ctx context.Context, text string, setPos func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lines++
	p.last = time.Now()
	if p.state != "reading" {
		p.state, p.why = "reading", ""
	}
	p.scan.Line(p.name, p.lines, text, func(r *detect.Record) { p.handle(ctx, r) })
	setPos()
	p.posDirty = true
}

// handle passes one record to the engine, which queues a ban it decides
// for its committer (engine.Guard.Run). p.mu is held.
func (p *pipeline) handle(ctx context.Context, r *detect.Record) {
	if r.Time.After(p.newest) {
		p.newest = r.Time
	}
	if p.sessions != nil {
		p.sessions.submit(r) // never waits: a full queue drops
	}
	if p.events != nil {
		at := r.Time
		if at.IsZero() {
			at = time.Now()
		}
		ip := ""
		if r.Addr.IsValid() {
			ip = r.Addr.String()
		}
		p.events.Add(at, r.Kind.String(), r.Reason, ip, r.User)
	}
	if err := p.guard.Submit(ctx, r); err != nil {
		p.log.Error("handle event", "err", err)
	}
}

// flushIdle emits the records held for their address when the log has
// been quiet for 2 s (their connection will say no more soon), to the
// engine under ctx.
func (p *pipeline) flushIdle(ctx context.Context) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.scan.Corr.Pending() > 0 && time.Since(p.last) > 2*time.Second {
		p.scan.Flush(func(r *detect.Record) { p.handle(ctx, r) })
	}
}

// status is how far the source has read, and what the scanner counted.
func (p *pipeline) status() (control.SourceStatus, detect.Stats) {
	p.mu.Lock()
	st := control.SourceStatus{Name: p.name, Position: p.cursor, Lines: p.lines, State: p.state, Why: p.why, Newest: p.newest}
	stats, pos := p.scan.Stats, p.pos
	p.mu.Unlock()
	if !p.cfg.Journal { // the file's size is asked without the lines' lock
		st.Position = fmt.Sprintf("inode %d offset %d", pos.Ino, pos.Offset)
		if fi, err := os.Stat(p.name); err == nil && fi.Size() >= pos.Offset {
			st.Behind = fi.Size() - pos.Offset
		}
	}
	return st, stats
}

// savePosition stores the read position if it moved.
func (p *pipeline) savePosition() {
	p.saveMu.Lock()
	defer p.saveMu.Unlock()
	// The write waits for the database (behind a peer's thousands of
	// bans, say): the lines go on meanwhile (p.mu is not held), and one
	// read since is saved next time.
	p.mu.Lock()
	if !p.posDirty {
		p.mu.Unlock()
		return
	}
	p.posDirty = false
	name, at := p.name, any(p.pos)
	if p.cfg.Journal {
		name, at = "journald", p.cursor
	}
	p.mu.Unlock()
	if err := p.db.SavePosition(name, at); err != nil {
		p.log.Error("save position", "err", err)
		p.mu.Lock()
		p.posDirty = true
		p.mu.Unlock()
	}
}
