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
	// ctx is for the engine calls made per line: never cancelled, so a
	// ban decided while the daemon stops is still written.
	ctx context.Context

	mu       sync.Mutex // guards everything below
	scan     detect.Scanner
	name     string
	pos      source.Position
	cursor   string
	lines    int64
	last     time.Time // when the last line came
	posDirty bool
}

func newPipeline(cfg config.LogConfig, db *store.DB, g *engine.Guard, log *slog.Logger) *pipeline {
	p := &pipeline{cfg: cfg, db: db, guard: g, log: log, ctx: context.Background()}
	p.scan.Header.Now = time.Now
	if !cfg.Journal && cfg.File == "" {
		for _, f := range []string{"/var/log/auth.log", "/var/log/secure"} {
			if _, err := os.Stat(f); err == nil {
				p.cfg.File = f
				break
			}
		}
	}
	p.name = p.cfg.File
	if p.cfg.Journal || p.name == "" {
		p.cfg.Journal, p.name = true, "journald"
	}
	return p
}

// run follows the source until ctx ends (it then returns ctx.Err()) or the
// source fails.
func (p *pipeline) run(ctx context.Context) error {
	ready := func() {
		p.log.Info("reading", "source", p.name)
		if p.ready != nil {
			p.ready()
		}
	}
	if p.cfg.Journal {
		j := &source.Journal{Warn: p.warn, MachineID: machineID(), Ready: ready}
		if err := p.db.Position("journald", &j.Cursor); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		return j.Run(ctx, func(line, cursor string) {
			p.line(line, func() { p.cursor = cursor })
		})
	}
	ft := &source.FileTail{Path: p.name, FromStart: p.cfg.FromStart, Warn: p.warn, Ready: ready}
	if err := p.db.Position(p.name, &ft.Start); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	return ft.Run(ctx, func(line string, pos source.Position) {
		p.line(line, func() { p.pos = pos })
	})
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

// line scans one line and hands its records to the engine.
func (p *pipeline) line(text string, setPos func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lines++
	p.last = time.Now()
	p.scan.Line(p.name, p.lines, text, p.handle)
	setPos()
	p.posDirty = true
}

// handle passes one record to the engine, which queues a ban it decides
// for its committer (engine.Guard.Run). p.mu is held.
func (p *pipeline) handle(r *detect.Record) {
	if p.sessions != nil {
		p.sessions.record(r)
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
	if err := p.guard.Submit(p.ctx, r); err != nil {
		p.log.Error("handle event", "err", err)
	}
}

// flushIdle emits the records held for their address when the log has
// been quiet for 2 s (their connection will say no more soon).
func (p *pipeline) flushIdle() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.scan.Corr.Pending() > 0 && time.Since(p.last) > 2*time.Second {
		p.scan.Flush(p.handle)
	}
}

// status is how far the source has read, and what the scanner counted.
func (p *pipeline) status() (control.SourceStatus, detect.Stats) {
	p.mu.Lock()
	defer p.mu.Unlock()
	pos := p.cursor
	if !p.cfg.Journal {
		pos = fmt.Sprintf("inode %d offset %d", p.pos.Ino, p.pos.Offset)
	}
	return control.SourceStatus{Name: p.name, Position: pos, Lines: p.lines}, p.scan.Stats
}

// savePosition stores the read position if it moved.
func (p *pipeline) savePosition() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.posDirty {
		return
	}
	var err error
	if p.cfg.Journal {
		err = p.db.SavePosition("journald", p.cursor)
	} else {
		err = p.db.SavePosition(p.name, p.pos)
	}
	if err != nil {
		p.log.Error("save position", "err", err)
		return
	}
	p.posDirty = false
}
