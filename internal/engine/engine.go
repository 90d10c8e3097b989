// Package engine joins detection, counting, the firewall and the store:
// counted attempts go in, bans come out. It holds no timers: the kernel
// expires bans, and the clock is injected.
package engine

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"sshguard-go/internal/alert"
	"sshguard-go/internal/ban"
	"sshguard-go/internal/detect"
	"sshguard-go/internal/store"
)

// Firewall is what the engine needs from the kernel side.
type Firewall interface {
	Ban(elems []ban.Element) error
	Unban(prefixes []netip.Prefix) error
}

// Config holds the engine's policy. Zero values mean the defaults.
type Config struct {
	FailureWeight float64 // default 1
	ProbeWeight   float64 // default 0.5; negative means probes are not counted
	V4Bits        int     // ban key length for IPv4; default 32
	V6Bits        int     // ban key length for IPv6; default 64
	Window        ban.WindowConfig
	Policy        ban.Policy
	// Alerts decides the alerts written to the outbox with each ban and
	// login; nil writes none.
	Alerts *alert.Policy
	// Wake, if set, is called after an alert was written (the delivery
	// worker's Wake).
	Wake func()
}

// Engine decides bans. It is safe for concurrent use.
type Engine struct {
	cfg Config
	db  *store.DB
	fw  Firewall
	now func() time.Time
	log *slog.Logger

	mu     sync.Mutex // guards everything below
	win    *ban.Window
	allow  *ban.Allowlist
	ev     map[netip.Prefix]*evidence
	counts map[time.Time]*store.Counts // per hour, until FlushCounts
}

// evidence is what a ban will say about its key.
type evidence struct {
	users       []string
	first, last string
}

// maxEvidence bounds the evidence kept; beyond it the map starts afresh
// (only messages lose detail, counting is the Window's).
const maxEvidence = 100000

// New returns an Engine. now may be nil for time.Now.
func New(cfg Config, db *store.DB, fw Firewall, allow *ban.Allowlist, now func() time.Time, log *slog.Logger) *Engine {
	if cfg.FailureWeight <= 0 {
		cfg.FailureWeight = 1
	}
	if cfg.ProbeWeight == 0 {
		cfg.ProbeWeight = 0.5
	}
	if cfg.ProbeWeight > 0 {
		cfg.Window.MinWeight = min(cfg.FailureWeight, cfg.ProbeWeight)
	}
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if allow == nil {
		allow = ban.NewAllowlist()
	}
	return &Engine{cfg: cfg, db: db, fw: fw, now: now, log: log, win: ban.NewWindow(cfg.Window), allow: allow, ev: map[netip.Prefix]*evidence{},
		counts: map[time.Time]*store.Counts{}}
}

// Handle counts r (for the hourly counts, and its attempt for its client),
// records and alerts a login, and bans r's client when it crosses the
// threshold. It returns the new ban, or nil.
func (e *Engine) Handle(r *detect.Record) (*store.Ban, error) {
	e.mu.Lock()
	var w float64
	switch r.Kind {
	case detect.KindFailure:
		w = e.cfg.FailureWeight
	case detect.KindProbe:
		w = e.cfg.ProbeWeight
	}
	if r.Counted == 0 {
		w = 0
	}
	e.count(r, w)
	if r.Kind == detect.KindSuccess && r.Addr.IsValid() {
		e.mu.Unlock()
		return nil, e.login(r)
	}
	if w <= 0 || !r.Addr.IsValid() {
		e.mu.Unlock()
		return nil, nil
	}
	key := ban.ClientKey(r.Addr, e.cfg.V4Bits, e.cfg.V6Bits)
	if e.allow.Covers(key) {
		e.mu.Unlock()
		return nil, nil
	}
	ev := e.evidenceFor(key)
	if ev.first == "" {
		ev.first = strings.Clone(r.Text)
	}
	ev.last = strings.Clone(r.Text)
	if r.User != "" && len(ev.users) < 8 && !slices.Contains(ev.users, r.User) {
		ev.users = append(ev.users, strings.Clone(r.User))
	}
	at := r.Time
	if now := e.now(); at.IsZero() || at.After(now) {
		at = now
	}
	sum, reached := e.win.Add(key, at, w)
	if !reached {
		e.mu.Unlock()
		return nil, nil
	}
	e.win.Reset(key)
	delete(e.ev, key)
	reason := fmt.Sprintf("%g failed attempts in %v", sum, e.window())
	e.mu.Unlock()
	evidenceLines := []string{ev.first}
	if ev.last != ev.first {
		evidenceLines = append(evidenceLines, ev.last)
	}
	return e.ban(key, reason, sum, ev.users, evidenceLines, -1)
}

func (e *Engine) window() time.Duration {
	if e.cfg.Window.Window > 0 {
		return e.cfg.Window.Window
	}
	return 10 * time.Minute
}

func (e *Engine) evidenceFor(key netip.Prefix) *evidence {
	ev := e.ev[key]
	if ev == nil {
		if len(e.ev) >= maxEvidence {
			clear(e.ev)
		}
		ev = &evidence{}
		e.ev[key] = ev
	}
	return ev
}

// ban records and enforces a ban of key. d < 0 means "by policy".
func (e *Engine) ban(key netip.Prefix, reason string, attempts float64, users, lines []string, d time.Duration) (*store.Ban, error) {
	now := e.now()
	off, err := e.db.Offender(key)
	if err != nil {
		return nil, fmt.Errorf("ban %s: %w", key, err)
	}
	if d < 0 {
		e.mu.Lock()
		policy := e.cfg.Policy
		e.mu.Unlock()
		d, _ = policy.Duration(off.Bans, off.LastBan, now)
	}
	b := &store.Ban{Prefix: key, Start: now, Reason: reason, Attempts: attempts, Users: users, Evidence: lines}
	if d > 0 {
		b.Expires = now.Add(d)
	}
	// The kernel first: a ban that is recorded but not enforced would be
	// a lie in `list`; one enforced but not recorded is restored from
	// the kernel set at the next start.
	if err := e.fw.Ban([]ban.Element{{Prefix: key, Timeout: d}}); err != nil {
		return nil, fmt.Errorf("ban %s: %w", key, err)
	}
	e.mu.Lock()
	pol, wake := e.cfg.Alerts, e.cfg.Wake
	e.mu.Unlock()
	id, err := e.db.RecordBanAlert(b, func(b *store.Ban) []byte {
		if pol == nil {
			return nil
		}
		a := alert.Ban{Prefix: b.Prefix, Attempts: b.Attempts, Users: b.Users, Duration: d, Nth: b.Count, Reason: b.Reason}
		if len(b.Evidence) > 0 {
			a.First, a.Last = b.Evidence[0], b.Evidence[len(b.Evidence)-1]
		}
		return pol.BanMessage(a, b.Start).Marshal()
	})
	if err != nil {
		return nil, fmt.Errorf("ban %s: %w", key, err)
	}
	if id != 0 && wake != nil {
		wake()
	}
	e.log.Info("banned", "prefix", key.String(), "for", durationText(d), "nth", b.Count, "reason", reason, "users", users)
	return b, nil
}

// login records a successful login and writes its alert in the same
// transaction. The alert says how many failed attempts the client made in
// the current window (a brute force that may have succeeded).
func (e *Engine) login(r *detect.Record) error {
	at := r.Time
	now := e.now()
	if at.IsZero() || at.After(now) {
		at = now
	}
	e.mu.Lock()
	failed := e.win.Sum(ban.ClientKey(r.Addr, e.cfg.V4Bits, e.cfg.V6Bits), at)
	pol, wake := e.cfg.Alerts, e.cfg.Wake
	e.mu.Unlock()
	l := store.Login{Time: at, User: strings.Clone(r.User), Addr: r.Addr, Method: strings.Clone(r.Method), Key: strings.Clone(r.Key)}
	id, err := e.db.RecordLogin(l, func(h store.LoginHistory) []byte {
		if pol == nil || pol.Stale(at, now) {
			return nil
		}
		a := alert.Login{Time: l.Time, User: l.User, Addr: l.Addr, Method: l.Method, Key: l.Key, Failed: failed}
		return pol.LoginMessage(a, alert.History{LastFromAddr: h.LastFromAddr, SeenNet: h.SeenNet}, at).Marshal()
	})
	if err != nil {
		return fmt.Errorf("record login of %q from %s: %w", l.User, l.Addr, err)
	}
	e.log.Info("login", "user", l.User, "from", l.Addr.String(), "method", l.Method, "failed_before", failed, "alert", id != 0)
	if id != 0 && wake != nil {
		wake()
	}
	return nil
}

// count adds r to the counts of its hour. e.mu is held.
func (e *Engine) count(r *detect.Record, weight float64) {
	at := r.Time
	if at.IsZero() {
		at = e.now()
	}
	h := at.Truncate(time.Hour)
	c := e.counts[h]
	if c == nil {
		c = &store.Counts{}
		e.counts[h] = c
	}
	addr := ""
	if r.Addr.IsValid() {
		addr = r.Addr.String()
	}
	c.Add(r.Kind.String(), addr, r.User, weight)
}

// FlushCounts adds the counts gathered since the last flush to the store.
func (e *Engine) FlushCounts() error {
	e.mu.Lock()
	counts := e.counts
	e.counts = map[time.Time]*store.Counts{}
	e.mu.Unlock()
	var errs []error
	for h, c := range counts {
		errs = append(errs, e.db.AddCounts(h, *c))
	}
	return errors.Join(errs...)
}

// Ban bans p now, for d (0: permanent; negative: by policy), as an
// administrator asked.
func (e *Engine) Ban(p netip.Prefix, d time.Duration, reason string) (*store.Ban, error) {
	p = p.Masked()
	e.mu.Lock()
	covered := e.allow.Covers(p)
	e.mu.Unlock()
	if covered {
		return nil, fmt.Errorf("ban %s: %w", p, ErrAllowlisted)
	}
	if reason == "" {
		reason = "banned by the administrator"
	}
	return e.ban(p, reason, 0, nil, nil, d)
}

// ErrAllowlisted is returned when asked to ban an allowlisted prefix.
var ErrAllowlisted = errors.New("the prefix is on the allowlist")

// Unban lifts p's ban in the kernel and the store, and forgets its recent
// attempts so the next typo does not ban again at once. It returns
// store.ErrNotFound when p had no recorded ban (the kernel element, if
// any, is still removed).
func (e *Engine) Unban(p netip.Prefix) error {
	p = p.Masked()
	if err := e.fw.Unban([]netip.Prefix{p}); err != nil {
		return fmt.Errorf("unban %s: %w", p, err)
	}
	e.mu.Lock()
	e.win.Reset(p)
	delete(e.ev, p)
	e.mu.Unlock()
	err := e.db.Lift(p)
	if err == nil {
		e.log.Info("unbanned", "prefix", p.String())
	}
	return err
}

// Lister is implemented by firewalls that can list what the kernel holds.
type Lister interface {
	List() ([]ban.Element, error)
}

// Restore puts every active ban of the store back in the kernel with its
// remaining time (after a reboot the set is empty; after a restart this
// refreshes it). It returns how many were restored.
//
// Elements in the kernel set that the store does not know (the database
// was lost or replaced while the table stayed) are kept and recorded, with
// the time the kernel has left for them: dropping them would silently free
// attackers, and `sshguard-go unban` lifts them like any other ban.
func (e *Engine) Restore() (int, error) {
	now := e.now()
	bans, err := e.db.ActiveBans(now)
	if err != nil {
		return 0, fmt.Errorf("restore: %w", err)
	}
	if l, ok := e.fw.(Lister); ok {
		adopted, err := e.adopt(l, bans, now)
		if err != nil {
			return 0, err
		}
		bans = append(bans, adopted...)
	}
	els := make([]ban.Element, 0, len(bans))
	for _, b := range bans {
		var left time.Duration
		if !b.Expires.IsZero() {
			left = b.Expires.Sub(now).Round(time.Second)
			if left < time.Second {
				continue
			}
		}
		els = append(els, ban.Element{Prefix: b.Prefix, Timeout: left})
	}
	if err := e.fw.Ban(els); err != nil {
		return 0, fmt.Errorf("restore %d bans: %w", len(els), err)
	}
	return len(els), nil
}

// adopt records the kernel's elements that no active ban in the store
// accounts for, and returns the bans it recorded.
func (e *Engine) adopt(l Lister, bans []store.Ban, now time.Time) ([]store.Ban, error) {
	els, err := l.List()
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	var adopted []store.Ban
	known := make(map[netip.Prefix]bool, len(bans))
	for _, b := range bans {
		known[b.Prefix] = true
	}
	for _, el := range els {
		if known[el.Prefix] {
			continue
		}
		b := &store.Ban{Prefix: el.Prefix, Start: now, Reason: "found in the kernel set at start"}
		if el.Timeout > 0 {
			b.Expires = now.Add(el.Expires)
		}
		if err := e.db.RecordBan(b); err != nil {
			return nil, fmt.Errorf("restore: %w", err)
		}
		adopted = append(adopted, *b)
		e.log.Warn("adopted a ban the database did not know", "prefix", el.Prefix.String(), "expires_in", el.Expires.String())
	}
	return adopted, nil
}

// SetAllowlist replaces the allowlist and lifts the bans it now covers.
func (e *Engine) SetAllowlist(a *ban.Allowlist) error {
	e.mu.Lock()
	e.allow = a
	e.mu.Unlock()
	bans, err := e.db.ActiveBans(e.now())
	if err != nil {
		return err
	}
	var errs []error
	for _, b := range bans {
		if a.Covers(b.Prefix) {
			if err := e.Unban(b.Prefix); err != nil && !errors.Is(err, store.ErrNotFound) {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// Reconfigure applies a new configuration without losing counters or
// bans: weights, key lengths, the ban policy, and the window and threshold
// (kept events are judged by the new limits). It returns false when the
// new threshold needs more remembered events per key than the counter was
// made with; that part takes full effect at the next start.
func (e *Engine) Reconfigure(cfg Config) bool {
	if cfg.FailureWeight <= 0 {
		cfg.FailureWeight = 1
	}
	if cfg.ProbeWeight == 0 {
		cfg.ProbeWeight = 0.5
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	window := cfg.Window.Window
	if window <= 0 {
		window = 10 * time.Minute
	}
	threshold := cfg.Window.Threshold
	if threshold <= 0 {
		threshold = 5
	}
	cfg.Window.MinWeight = e.cfg.Window.MinWeight
	cfg.Window.MaxTracked = e.cfg.Window.MaxTracked
	e.cfg = cfg
	return e.win.SetLimits(window, threshold)
}

// Tracked returns how many keys are being counted.
func (e *Engine) Tracked() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.win.Len()
}

func durationText(d time.Duration) string {
	if d == 0 {
		return "ever"
	}
	return d.String()
}
