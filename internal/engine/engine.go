// Package engine joins detection, counting, the firewall and the store:
// counted attempts go in, bans come out. Each event is judged under one
// lock (a plain decision: nothing, a login, a ban); what follows from it,
// the firewall, the store and the outbox, is done outside the lock. It
// holds no timers: the kernel expires bans, and the clock is injected.
package engine

import (
	"bufio"
	"context"
	"fmt"
	"hash/maphash"
	"io"
	"log/slog"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"sshguard-go/internal/alert"
	"sshguard-go/internal/ban"
	"sshguard-go/internal/detect"
	"sshguard-go/internal/store"
)

// Firewall is what the engine needs from the kernel side.
type Firewall interface {
	Ban(ctx context.Context, elems []ban.Element) error
	Unban(ctx context.Context, prefixes []netip.Prefix) error
}

// Config holds the engine's policy. The weights are taken as they are (0:
// that kind is not counted); the window's and the policy's zero values
// mean their defaults (see ban.WindowConfig, ban.Policy).
type Config struct {
	FailureWeight float64
	ProbeWeight   float64
	V4Bits        int // ban key length for IPv4; 0 means 32
	V6Bits        int // ban key length for IPv6; 0 means 64
	// WideV4 and WideV6 are the lengths of the wider prefixes attempts are
	// also counted per (an IPv6 attacker rotates through the /64s of its
	// /48); 0 counts none. Wide is their window (its Window field is
	// taken from Window).
	WideV4, WideV6 int
	Wide           ban.WindowConfig
	Window         ban.WindowConfig // its Horizons are the clients' long windows
	// NetV4 and NetV6 are the networks attempts are also counted per at
	// NetHorizons (0: off), from networks no user logged in from within
	// the longest of them.
	NetV4, NetV6 int
	NetHorizons  []ban.Horizon
	Policy       ban.Policy
	// Alerts decides the alerts written to the outbox with each ban and
	// login; nil writes none.
	Alerts *alert.Policy
	// Wake, if set, is called after an alert was written (the delivery
	// worker's Wake).
	Wake func()
	// OnBan, if set, is called for every ban made, with its origin
	// ("detected" or "admin"; for metrics).
	OnBan func(origin string)
	// Loc is where days begin and end for the counts (nil: UTC).
	Loc *time.Location
	// Share, if set, gives what the fleet must hear of a ban made here
	// (not of one another host shared), and ShareUnban of an unban here:
	// written in the ban's own transaction (store.DB.RecordBans).
	Share      func(*store.Ban) []byte
	ShareUnban func(netip.Prefix) []byte
	// OnAttempt, if set, is told every counted attempt of a client the
	// allowlist does not cover (the fleet-wide count). Called with the
	// engine's lock held: it must not call back.
	OnAttempt func(key netip.Prefix, at time.Time, weight float64)
	// PeerMinV4 and PeerMinV6 are the widest prefixes a peer's ban may
	// have (fleet.min_prefix_v4, _v6); 0: 24 and 48.
	PeerMinV4, PeerMinV6 int
	// PeerMaxBans is how many bans one peer may have in force here at
	// once (fleet.max_peer_bans); 0: no bound.
	PeerMaxBans int
	// DryRun decides as a real run would and keeps what it would ban
	// apart (store.RecordDryRun): never a ban in force, never restored,
	// shared or counted. The firewall given is then one that changes
	// nothing. Set at New, not by Reconfigure.
	DryRun bool
}

// Guard decides and enforces bans. It is safe for concurrent use.
type Guard struct {
	cfg atomic.Pointer[Config]
	db  *store.DB
	fw  Firewall
	now func() time.Time
	log *slog.Logger

	queue   chan *decision // bans decided by Submit, committed by Run
	lqueue  chan *decision // logins decided by Submit, committed by Run apart: a ban never waits behind a login backlog
	closing chan struct{}  // closed when Run stops taking from the queues
	drained chan struct{}  // closed when Run has committed what they held
	qmu     sync.RWMutex   // Submit sends under the read lock; Run's end takes the write lock
	closed  bool           // Run has ended: Submit commits itself (qmu guards it)

	// A commit or a lift is made in two stages: the kernel's (under fwMu,
	// one at a time, quick) then the store's (an fsync), in turns in the
	// order of the kernel's. A ban's element never waits for another
	// batch's fsync, only for its kernel write.
	// A detected batch takes it as urgent, the others' step aside
	// between two pieces when one waits.
	fwMu   prioLock
	turns  turns
	loadMu sync.Mutex // guards loaded
	loaded bool       // the index holds the store's bans in force

	flushMu sync.RWMutex // held by FlushCounts, read by Hours

	mu    prioLock // guards everything below; a line's decision takes it as urgent
	win   *ban.Window
	wide  *ban.Window // per wide prefix
	net   *ban.Window // per network, its horizons only
	allow *ban.Allowlist
	ev    map[netip.Prefix]*evidence
	seed  maphash.Seed
	tally *tally // the hourly counts, off this lock
	idx   *index // the bans in force, as the gate sees them
	// enforced is, for a prefix whose element a commit wrote and whose
	// record waits for its turn, the newest decision written: an older
	// one is not written after it.
	enforced map[netip.Prefix]uint64
	latest   time.Time        // the newest event time seen: how far the log has been read
	refuse   map[string]int64 // bans the gate refused, by origin and code
}

// evidence is what a ban will say about its key.
type evidence struct {
	users       []string
	first, last string
	addrs       []string // a network's: the addresses that made its attempts
}

// durText writes d as the configuration does: 10m, 1d, 3d12h, 1h30m.
func durText(d time.Duration) string {
	var s string
	for _, u := range []struct {
		unit time.Duration
		name string
	}{{7 * 24 * time.Hour, "w"}, {24 * time.Hour, "d"}, {time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}} {
		if n := d / u.unit; n > 0 && !(u.name == "w" && d%u.unit != 0) {
			s += fmt.Sprintf("%d%s", n, u.name)
			d -= n * u.unit
		}
	}
	if s == "" {
		return "0s"
	}
	return s
}

// maxEvidence bounds the evidence kept; beyond it the map starts afresh
// (only messages lose detail, counting is the Window's).
const maxEvidence = 100000

// New returns a Guard. now may be nil for time.Now, log nil to discard,
// allow nil for the built-in allowlist (loopback).
func New(cfg Config, db *store.DB, fw Firewall, allow *ban.Allowlist, now func() time.Time, log *slog.Logger) *Guard {
	cfg.Window.MinWeight = cfg.lightest()
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if allow == nil {
		allow = ban.NewAllowlist()
	}
	cfg.Wide.Window, cfg.Wide.MinWeight, cfg.Wide.MaxTracked = cfg.Window.Window, cfg.Window.MinWeight, cfg.Window.MaxTracked
	netw := ban.NewWindow(ban.WindowConfig{NoShort: true, Horizons: cfg.NetHorizons, MaxTracked: cfg.Window.MaxTracked / 4})
	g := &Guard{db: db, fw: fw, now: now, log: log, win: ban.NewWindow(cfg.Window), wide: ban.NewWindow(cfg.Wide), net: netw, allow: allow,
		ev: map[netip.Prefix]*evidence{}, tally: newTally(), seed: maphash.MakeSeed(),
		queue: make(chan *decision, queueLen), lqueue: make(chan *decision, queueLen), closing: make(chan struct{}), drained: make(chan struct{}), idx: newIndex(), enforced: map[netip.Prefix]uint64{}, refuse: map[string]int64{}}
	g.turns.cond.L = &g.turns.mu
	g.cfg.Store(&cfg)
	return g
}

// action is what an event leads to.
type action int

const (
	actNone action = iota
	actLogin
	actBan
	actSync // Sync's mark: everything queued before it is committed
)

// decision is a ban (or a login) decided, acted on outside the lock.
type decision struct {
	act      action
	key      netip.Prefix
	at       time.Time // when it is made: the event's own time, or now
	reason   string
	sum      float64       // ban: the weighted attempts in the window
	users    []string      // ban: users tried
	evidence []string      // ban: first and last line
	failed   float64       // login: the client's failed attempts in the window
	origin   string        // ban: Detected, Admin, Archive, Fleetwide or a peer's
	dur      time.Duration // ban: its length; negative: by this host's policy
	// permanent: a ban without end (by hand, or by the policy's
	// permanent_after); never a zero dur.
	permanent bool
	until     time.Time     // a peer's: the end its host gave
	force     bool          // by hand: wider than the manual minimum, or holding self
	self      netip.Addr    // by hand: the caller's own SSH session
	seq       uint64        // the gate's hold on key
	nth       int32         // ban: the prefix's bans made here with this one
	login     store.Login   // login: the record
	synced    chan struct{} // sync: closed once committed
}

// Handle counts r (for the hourly counts, and its attempt for its client),
// records and alerts a login, and bans r's client when it crosses the
// threshold, before it returns: Submit without the committer. It returns
// the new ban, or nil.
func (g *Guard) Handle(ctx context.Context, r *detect.Record) (*store.Ban, error) {
	ds, err := g.decideAll(r)
	if err != nil || len(ds) == 0 {
		return nil, err
	}
	bans, errs := g.commit(ctx, ds)
	var first *store.Ban
	for i, b := range bans {
		if errs[i] != nil {
			return first, errs[i]
		}
		if first == nil {
			first = b
		}
	}
	return first, nil
}

// decideAll counts r and returns what follows from it, the gate passed:
// its login, or the bans of its client and its wide prefix.
func (g *Guard) decideAll(r *detect.Record) ([]decision, error) {
	if err := g.load(); err != nil {
		return nil, err
	}
	client, wide := g.decide(r)
	var out []decision
	for _, d := range []decision{client, wide} {
		switch d.act {
		case actLogin:
			out = append(out, d)
		case actBan:
			if g.admitDetected(&d) {
				out = append(out, d)
			}
		}
	}
	return out, nil
}

// queueLen bounds the bans decided and not yet committed; Submit waits
// when it is full.
const queueLen = 16384

// maxBatch bounds the bans committed in one netlink batch and one bbolt
// transaction.
const maxBatch = 4096

// Submit does what Handle does, but what it decides (bans and logins) is
// handed to Run, which commits a backlog's together: the daemon's path,
// so a wave of 100,000 addresses or a month of logins costs a few hundred
// transactions, not one disk sync each. When Run has stopped (or is
// stopping), Submit commits itself: nothing decided is lost.
func (g *Guard) Submit(ctx context.Context, r *detect.Record) error {
	ds, err := g.decideAll(r)
	if err != nil {
		return err
	}
	for _, d := range ds {
		if !g.enqueue(d) {
			if _, errs := g.commit(ctx, []decision{d}); errs[0] != nil {
				return errs[0]
			}
		} else if d.act == actBan && len(g.queue) <= 1 {
			// The committer, waiting, is next on this processor: it
			// writes the ban to the kernel now, not once the reader has
			// gone through the lines after it. (Under a flood the queue
			// fills, and the committer takes its bans together.)
			runtime.Gosched()
		}
	}
	return nil
}

// enqueue hands d to Run, and reports false when Run no longer takes
// bans (the caller commits d itself).
func (g *Guard) enqueue(d decision) bool {
	q := g.queue
	if d.act == actLogin {
		q = g.lqueue
	}
	return g.enqueueTo(q, &d)
}

func (g *Guard) enqueueTo(q chan *decision, d *decision) bool {
	g.qmu.RLock()
	defer g.qmu.RUnlock()
	if g.closed {
		return false
	}
	select {
	case q <- d:
		return true
	case <-g.closing: // Run is ending: it may never take d
		return false
	}
}

// committers is how many batches of bans Run writes to the store at once.
// A commit is two stages: the kernel's (fast, one batch at a time) and
// the store's (a disk sync, in turns in the kernel's order). With one
// batch at a time, the next ban waited in the queue for the last one's
// disk sync: 30 to 85 ms while a local user filled the disk. Now Run
// stages the next batch in the kernel while the last ones wait for the
// disk. With 4 at once, a ban detected while four waited for a disk
// shared with a peer's thousands (100 detected a second, 5,000 a peer's,
// in the noisy benchmark) waited in the queue for one of them: up to
// 90 ms. Those waiting for their turn hold a parked goroutine each.
const committers = 32

// Run commits the bans Submit queues until ctx ends: one at a time when
// they come one at a time (no added latency), and as many as are waiting
// (up to maxBatch) in one batch while a backlog exists; a batch's store
// stage runs beside the next ones' kernel stage (committers at once).
// Logins are committed the same way by a goroutine of their own, one
// batch at a time, so that a ban never waits for a month of logins to be
// written. On the way out it commits what is still queued, and Submit
// commits by itself from then on. It returns nil.
func (g *Guard) Run(ctx context.Context) error {
	// A ban decided is committed even while the daemon stops.
	cctx := context.WithoutCancel(ctx)
	logins := make(chan struct{})
	go func() {
		defer close(logins)
		g.loop(ctx, cctx, g.lqueue, 1, true)
	}()
	g.loop(ctx, cctx, g.queue, committers, false)
	<-logins
	close(g.closing) // a Submit waiting on a full queue commits itself
	g.qmu.Lock()     // and every send under way has ended
	g.closed = true
	g.qmu.Unlock()
	g.drain(ctx)
	close(g.drained)
	return nil
}

// loop commits what q holds until ctx ends: it stages each batch in
// turn, and finishes up to n at once; it returns once they are finished.
// A side loop (the logins') lets the goroutine that woke it (the log's
// reader, a ban perhaps in its next lines) run first.
func (g *Guard) loop(ctx, cctx context.Context, q chan *decision, n int, side bool) {
	var wg sync.WaitGroup
	defer wg.Wait()
	slots := make(chan struct{}, n)
	for {
		select {
		case d := <-q:
			if side {
				runtime.Gosched()
			}
			slots <- struct{}{} // at most n being finished
			batch := g.gather(q, []decision{*d})
			rest := g.stage(cctx, batch, !side)
			wg.Go(func() {
				defer func() { <-slots }()
				g.logErrors(batch, rest)
			})
		case <-ctx.Done():
			return
		}
	}
}

// Sync returns once everything Submit queued before it is committed (or
// ctx ends): what a reader of the store needs before it compares.
func (g *Guard) Sync(ctx context.Context) error {
	for _, q := range []chan *decision{g.queue, g.lqueue} {
		d := &decision{act: actSync, synced: make(chan struct{})}
		if !g.enqueueTo(q, d) {
			// Run is ending: what it took is written once it has
			// drained the queues; Submit commits by itself from then on.
			select {
			case <-g.drained:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		select {
		case <-d.synced:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// gather adds what q holds to batch, up to maxBatch. A key is never in
// the queue twice: the gate holds it from its decision to its commit.
func (g *Guard) gather(q chan *decision, batch []decision) []decision {
	for len(batch) < maxBatch {
		select {
		case d := <-q:
			batch = append(batch, *d)
		default:
			return batch
		}
	}
	return batch
}

// drain commits what is queued when Run stops; ctx has ended then, so
// these writes get a deadline of their own (ctx's values kept).
func (g *Guard) drain(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	for _, q := range []chan *decision{g.queue, g.lqueue} {
		for done := false; !done; {
			select {
			case d := <-q:
				g.commitLogged(ctx, g.gather(q, []decision{*d}))
			default:
				done = true
			}
		}
	}
}

func (g *Guard) commitLogged(ctx context.Context, batch []decision) {
	g.logErrors(batch, g.stage(ctx, batch, false))
}

// logErrors finishes batch's commit with rest and logs what failed.
func (g *Guard) logErrors(batch []decision, rest func() ([]*store.Ban, []error)) {
	_, errs := rest()
	for i, err := range errs {
		switch {
		case err == nil:
		case batch[i].act == actLogin:
			g.log.Error("login", "user", batch[i].login.User, "from", batch[i].login.Addr.String(), "err", err)
		default:
			g.log.Error("ban", "prefix", batch[i].key.String(), "err", err)
		}
	}
}

// weight is what r counts for under cfg: its kind's weight for each
// attempt it counts (several for rsyslog's "message repeated N times",
// bounded by detect.MaxRepeat), less the probe of its connection it takes
// back.
func (cfg *Config) weight(r *detect.Record) float64 {
	n := float64(min(r.Counted, detect.MaxRepeat+1))
	if n <= 0 {
		return 0
	}
	switch r.Kind {
	case detect.KindFailure:
		if r.TakesBackProbe {
			// The connection's probe was counted: a connection that
			// failed weighs its failures (or the probe, if heavier).
			return n*cfg.FailureWeight - min(cfg.FailureWeight, cfg.ProbeWeight)
		}
		return n * cfg.FailureWeight
	case detect.KindProbe:
		return n * cfg.ProbeWeight
	}
	return 0
}

// decide counts r and judges it: what to do for its client, and whether
// the client's wide prefix is to be banned too. It only touches memory.
func (g *Guard) decide(r *detect.Record) (client, wide decision) {
	cfg := g.cfg.Load()
	w := cfg.weight(r)
	at := g.eventTime(r.Time)
	g.mu.LockUrgent()
	defer g.mu.UnlockUrgent()
	if at.After(g.latest) {
		g.latest = at
	}
	g.count(r, countTime(r.Time, at))
	if !r.Addr.IsValid() {
		return decision{}, decision{}
	}
	key := ban.ClientKey(r.Addr, cfg.V4Bits, cfg.V6Bits)
	if r.Kind == detect.KindSuccess {
		// A login to an account that exists: the address's earlier
		// failures at the horizons were typos, and its network is a
		// users' network.
		g.win.Forgive(key, at)
		if nk, ok := cfg.netKey(r.Addr); ok {
			g.net.MarkLogin(nk, at)
		}
		return decision{act: actLogin, at: at, failed: g.win.Sum(key, at),
			login: store.Login{Time: at, User: strings.Clone(r.User), Addr: r.Addr, Method: strings.Clone(r.Method), Key: strings.Clone(r.Key)}}, decision{}
	}
	if w <= 0 || g.allow.Covers(key) {
		return decision{}, decision{}
	}
	if cfg.OnAttempt != nil {
		cfg.OnAttempt(key, at, w)
	}
	client = g.judge(cfg, r, key, at, w)
	if wide = g.judgeWide(cfg, r, at, w); wide.act == actNone {
		wide = g.judgeNet(cfg, r, at, w)
	}
	return client, wide
}

// invalidUser reports whether sshd said r's user does not exist.
func invalidUser(r *detect.Record) bool { return r.Invalid }

// netKey is a's network at the network horizons, if counted.
func (cfg *Config) netKey(a netip.Addr) (netip.Prefix, bool) {
	key := ban.ClientKey(a, cfg.V4Bits, cfg.V6Bits)
	bits := cfg.netBits(key)
	if bits < 0 {
		return netip.Prefix{}, false
	}
	return ban.ClientKey(a, bits, bits), true
}

// longest is the longest of hs.
func longest(hs []ban.Horizon) time.Duration {
	var d time.Duration
	for _, h := range hs {
		d = max(d, h.Window)
	}
	return d
}

// judgeNet counts r's attempt for its network at the network horizons
// (unless a user logged in from it within the longest) and returns the
// network's ban when one is reached, naming the addresses that made it.
// g.mu is held.
func (g *Guard) judgeNet(cfg *Config, r *detect.Record, at time.Time, w float64) decision {
	key, ok := cfg.netKey(r.Addr)
	if !ok || g.allow.Covers(key) || g.net.LoginWithin(key, at, longest(cfg.NetHorizons)) {
		return decision{}
	}
	ev := g.evidenceFor(key)
	if a := r.Addr.Unmap().String(); len(ev.addrs) < 8 && !slices.Contains(ev.addrs, a) {
		ev.addrs = append(ev.addrs, a)
	}
	v := g.net.Count(key, at, w, ban.Attempt{Unforgivable: invalidUser(r), Name: r.User})
	if v.Horizon < 0 {
		return decision{}
	}
	g.net.Reset(key)
	delete(g.ev, key)
	return decision{act: actBan, key: key, at: at, sum: v.HorizonSum, evidence: []string{strings.Clone(r.Text)}, dur: -1, origin: Detected,
		reason: fmt.Sprintf("%g failed attempts from %s in %s (%s)", v.HorizonSum, key, durText(g.net.HorizonWindow(v.Horizon)), strings.Join(ev.addrs, ", "))}
}

// judgeWide counts r's attempt for its client's wide prefix (if that is
// counted) and returns the ban of the prefix when it reaches the wide
// threshold. g.mu is held.
func (g *Guard) judgeWide(cfg *Config, r *detect.Record, at time.Time, w float64) decision {
	bits := cfg.WideV6
	if r.Addr.Unmap().Is4() {
		bits = cfg.WideV4
	}
	if bits == 0 {
		return decision{}
	}
	key := ban.ClientKey(r.Addr, bits, bits)
	if g.allow.Covers(key) {
		return decision{}
	}
	sum, reached := g.wide.Add(key, at, w)
	if !reached {
		return decision{}
	}
	g.wide.Reset(key)
	return decision{act: actBan, key: key, at: at, sum: sum, evidence: []string{strings.Clone(r.Text)}, dur: -1, origin: Detected,
		reason: fmt.Sprintf("%g failed attempts from %s in %s", sum, key, durText(cfg.window()))}
}

// judge adds r's attempt to its client's window and returns the client's
// ban when it reaches the threshold. g.mu is held.
func (g *Guard) judge(cfg *Config, r *detect.Record, key netip.Prefix, at time.Time, w float64) decision {
	ev := g.evidenceFor(key)
	if ev.first == "" {
		ev.first = strings.Clone(r.Text)
	}
	ev.last = strings.Clone(r.Text)
	if r.User != "" && len(ev.users) < 8 && !slices.Contains(ev.users, r.User) {
		ev.users = append(ev.users, strings.Clone(r.User))
	}
	v := g.win.Count(key, at, w, ban.Attempt{Unforgivable: invalidUser(r), Name: r.User})
	sum, in := v.Sum, cfg.window()
	switch {
	case v.Reached:
	case v.Horizon >= 0: // a slow attacker, caught by a long horizon
		sum, in = v.HorizonSum, g.win.HorizonWindow(v.Horizon)
	default:
		return decision{}
	}
	g.win.Reset(key)
	delete(g.ev, key)
	lines := []string{ev.first}
	if ev.last != ev.first {
		lines = append(lines, ev.last)
	}
	return decision{act: actBan, key: key, at: at, sum: sum, users: ev.users, evidence: lines, dur: -1, origin: Detected,
		reason: fmt.Sprintf("%g failed attempts in %s", sum, durText(in))}
}

// countTime is the hour an event is counted in: its own time when it has
// one (a backlog fills past days), else when it was judged.
func countTime(own, judged time.Time) time.Time {
	if own.IsZero() {
		return judged
	}
	return own
}

// maxEventAge is how far in the past an event's own time is believed;
// older stamps (a line dated 0001-01-01, a forged or broken clock) count
// as now.
const maxEventAge = 365 * 24 * time.Hour

// eventTime is t, or now when t is unknown, in the future or implausibly
// old.
func (g *Guard) eventTime(t time.Time) time.Time {
	if now := g.now(); t.IsZero() || t.After(now) || now.Sub(t) > maxEventAge {
		return now
	}
	return t
}

func (cfg *Config) window() time.Duration {
	if cfg.Window.Window > 0 {
		return cfg.Window.Window
	}
	return 10 * time.Minute
}

func (g *Guard) evidenceFor(key netip.Prefix) *evidence {
	ev := g.ev[key]
	if ev == nil {
		if len(g.ev) >= maxEvidence {
			clear(g.ev)
		}
		ev = &evidence{}
		g.ev[key] = ev
	}
	return ev
}

// logins records the logins of batch, each with its alert, in one
// transaction. An alert says how many failed attempts the client made in
// the current window (a brute force that may have succeeded); a login
// older than the alerts' max_age when read (a backlog) is recorded, not
// alerted.
func (g *Guard) logins(batch []decision) error {
	now := g.now()
	cfg := g.cfg.Load()
	ls := make([]store.Login, len(batch))
	for i, d := range batch {
		ls[i] = d.login
	}
	i := 0
	ids, err := g.db.RecordLogins(ls, func(h store.LoginHistory, rec *store.Login) []byte {
		d := batch[i]
		i++
		ah := alert.History{LastFromAddr: h.LastFromAddr, SeenNet: h.SeenNet}
		j := cfg.Alerts.JudgeLogin(LoginAlert(d.login, d.failed), ah, d.at)
		rec.Severity, rec.Tags = j.Severity.String(), j.Tags
		if cfg.Alerts == nil || cfg.Alerts.Stale(d.at, now) {
			return nil
		}
		return cfg.Alerts.LoginMessage(LoginAlert(d.login, d.failed), ah, d.at).Marshal()
	})
	if err != nil {
		return fmt.Errorf("record %d logins (%q from %s first): %w", len(ls), ls[0].User, ls[0].Addr, err)
	}
	alerted := false
	for k, l := range ls {
		alerted = alerted || ids[k] != 0
		g.log.Info("login", "user", l.User, "from", l.Addr.String(), "method", l.Method, "failed_before", batch[k].failed, "alert", ids[k] != 0)
	}
	if alerted && cfg.Wake != nil {
		cfg.Wake()
	}
	return nil
}

// lightest is the lightest weight cfg counts: the failure's, or the
// probe's when probes are counted and weigh less.
func (cfg *Config) lightest() float64 {
	if cfg.ProbeWeight > 0 {
		return min(cfg.FailureWeight, cfg.ProbeWeight)
	}
	return cfg.FailureWeight
}

// Deferred is what Reconfigure could not apply in place: it keeps its
// value until the next start.
type Deferred struct {
	// Limits: the new thresholds and weights need more remembered
	// attempts per key (Need) than this run made room for (Room): the
	// threshold, the wide threshold and both weights keep their values,
	// so that bans still come where they came.
	Limits     bool
	Need, Room int
	// Horizons: the horizons or the networks changed; they keep theirs.
	Horizons bool
}

func (d *Deferred) Error() string {
	var parts []string
	if d.Limits {
		parts = append(parts, fmt.Sprintf("the thresholds and weights need %d remembered attempts per key, this run has room for %d: they keep their values", d.Need, d.Room))
	}
	if d.Horizons {
		parts = append(parts, "the horizons and networks keep theirs")
	}
	return strings.Join(parts, "; ") + " until the next start"
}

// Reconfigure applies a new configuration without losing counters or
// bans: weights, key lengths, the ban policy, and the window and threshold
// (kept events are judged by the new limits). It returns a *Deferred when
// part of cfg waits for the next start: the horizons and networks when
// they changed, and the thresholds and weights together when they need
// more remembered attempts per key than the counters were made with (a
// lighter weight, probes counted anew, a higher threshold), which would
// have the count stop short of the threshold.
func (g *Guard) Reconfigure(cfg Config) error {
	old := g.cfg.Load()
	cfg.DryRun = old.DryRun // the firewall was chosen at the start
	cfg.Window.MaxTracked = old.Window.MaxTracked
	cfg.Window.MinWeight = cfg.lightest()
	g.mu.Lock()
	defer g.mu.Unlock()
	var d Deferred
	// The horizons are the window's make: changed, they take effect at
	// the next start.
	d.Horizons = !slices.Equal(cfg.Window.Horizons, old.Window.Horizons) || !slices.Equal(cfg.NetHorizons, old.NetHorizons) || cfg.NetV4 != old.NetV4 || cfg.NetV6 != old.NetV6
	cfg.Window.Horizons, cfg.NetHorizons, cfg.NetV4, cfg.NetV6 = old.Window.Horizons, old.NetHorizons, old.NetV4, old.NetV6
	if d.Need, d.Room = g.room(&cfg); d.Need > d.Room {
		d.Limits = true
		cfg.FailureWeight, cfg.ProbeWeight, cfg.Window.MinWeight = old.FailureWeight, old.ProbeWeight, old.Window.MinWeight
		cfg.Window.Threshold, cfg.Wide.Threshold = old.Window.Threshold, old.Wide.Threshold
	}
	g.cfg.Store(&cfg)
	g.win.SetLimits(cfg.window(), orFive(cfg.Window.Threshold))
	g.wide.SetLimits(cfg.window(), orFive(cfg.Wide.Threshold))
	if d.Limits || d.Horizons {
		return &d
	}
	return nil
}

// orFive is a window's threshold: t, or its default 5.
func orFive(t float64) float64 {
	if t <= 0 {
		return 5
	}
	return t
}

// room returns how many remembered attempts per key cfg's thresholds
// need of its lightest weight, and how many g's windows hold: the short
// window's, or the wide one's (when counted) if it falls shorter. g.mu is
// held.
func (g *Guard) room(cfg *Config) (need, room int) {
	w := cfg.Window.MinWeight
	if w <= 0 {
		return 0, g.win.Room() // nothing counted
	}
	need, room = ban.Need(orFive(cfg.Window.Threshold), w), g.win.Room()
	if cfg.WideV4 != 0 || cfg.WideV6 != 0 {
		if n, r := ban.Need(orFive(cfg.Wide.Threshold), w), g.wide.Room(); n-r > need-room {
			need, room = n, r
		}
	}
	return need, room
}

// DryRun reports whether g keeps its bans as a dry run's.
func (g *Guard) DryRun() bool { return g.cfg.Load().DryRun }

// Tracked returns how many keys are being counted.
func (g *Guard) Tracked() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.win.Len()
}

// SaveWindows writes what the windows counted (the clients' short window
// and horizons, the wide prefixes', the networks') to out, for
// LoadWindows at the next start: a restart does not forget a slow
// attacker's guesses. Counting waits while it writes (at a stop).
func (g *Guard) SaveWindows(out io.Writer) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, w := range []*ban.Window{g.win, g.wide, g.net} {
		if err := w.Save(out); err != nil {
			return err
		}
	}
	return nil
}

// LoadWindows takes what SaveWindows wrote, all or nothing: a snapshot of
// windows of another shape (the detection settings changed between the
// runs) or a damaged one is an error, and the windows stay as they were.
// It returns the clients tracked.
func (g *Guard) LoadWindows(in io.Reader) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	fresh := []*ban.Window{g.win.Fresh(), g.wide.Fresh(), g.net.Fresh()}
	br := bufio.NewReaderSize(in, 1<<20)
	for _, w := range fresh {
		if err := w.Load(br); err != nil {
			return 0, err
		}
	}
	g.win, g.wide, g.net = fresh[0], fresh[1], fresh[2]
	return g.win.Len(), nil
}
