package engine

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"sshguard-go/internal/ban"
	"sshguard-go/internal/store"
)

// commit enforces and records the bans of batch: their lengths by the
// policy (or as given), every element in one netlink batch, every record
// with its alert in one bbolt transaction. The keys of batch are distinct.
// The kernel first: a ban that is recorded but not enforced would be a lie
// in `list`; one enforced but not recorded is restored from the kernel set
// at the next start. It returns the recorded bans, in batch's order.
func (g *Guard) commit(ctx context.Context, batch []decision) ([]*store.Ban, error) {
	// Milliseconds are precise enough for a ban, and its records are
	// shorter (100,000 of them in a wave).
	now := g.now().Truncate(time.Millisecond)
	cfg := g.cfg.Load()
	keys := make([]netip.Prefix, len(batch))
	for i, d := range batch {
		keys[i] = d.key
	}
	offs, err := g.db.Offenders(keys)
	if err != nil {
		return nil, fmt.Errorf("ban %d prefixes: %w", len(batch), err)
	}
	bans := make([]*store.Ban, len(batch))
	els := make([]ban.Element, len(batch))
	for i, d := range batch {
		dur := d.dur
		if dur < 0 {
			dur, _ = cfg.Policy.Duration(offs[i].Bans, offs[i].LastBan, now)
		}
		b := &store.Ban{Prefix: d.key, Start: now, Reason: d.reason, Attempts: d.sum, Users: d.users, Evidence: d.evidence, Origin: d.origin}
		if dur > 0 {
			b.Expires = now.Add(dur)
		}
		bans[i], els[i] = b, ban.Element{Prefix: d.key, Timeout: dur}
	}
	if err := g.fw.Ban(ctx, els); err != nil {
		if len(els) == 1 {
			return nil, fmt.Errorf("ban %s: %w", keys[0], err)
		}
		// One element the kernel refuses (one overlapping a prefix banned
		// by hand, say) must not sink the batch: each goes alone, and
		// only those in the kernel are recorded.
		var kept []int
		for i := range els {
			if err := g.fw.Ban(ctx, els[i:i+1]); err != nil {
				g.log.Error("ban", "prefix", keys[i].String(), "err", err)
				continue
			}
			kept = append(kept, i)
		}
		if len(kept) == 0 {
			return nil, fmt.Errorf("ban %s%s: %w", keys[0], more(len(keys)), err)
		}
		batch, bans, els = pick(batch, kept), pick(bans, kept), pick(els, kept)
	}
	var share func(*store.Ban) []byte
	if cfg.Share != nil {
		share = func(b *store.Ban) []byte {
			if strings.HasPrefix(b.Origin, "fleet:") { // another host's: never sent back
				return nil
			}
			return cfg.Share(b)
		}
	}
	ids, err := g.db.RecordBansShared(bans, func(b *store.Ban) []byte {
		if cfg.Alerts == nil {
			return nil
		}
		m := cfg.Alerts.BanMessage(BanAlert(*b), b.Start)
		if m != nil { // the alert refers to the ban's record instead of copying it
			m.Ban, m.BanRef = nil, store.BanRef(b)
		}
		return m.Marshal()
	}, share)
	if err != nil {
		return nil, fmt.Errorf("ban %s%s: %w", keys[0], more(len(keys)), err)
	}
	g.countBans(bans)
	alerted := false
	for i, b := range bans {
		alerted = alerted || ids[i] != 0
		g.log.Info("banned", "prefix", b.Prefix.String(), "for", durationText(els[i].Timeout), "nth", b.Count, "reason", b.Reason, "users", b.Users)
		if cfg.OnBan != nil {
			cfg.OnBan(batch[i].origin)
		}
	}
	if alerted && cfg.Wake != nil {
		cfg.Wake()
	}
	return bans, nil
}

// pick returns the elements of s at the indexes idx.
func pick[T any](s []T, idx []int) []T {
	out := make([]T, len(idx))
	for i, j := range idx {
		out[i] = s[j]
	}
	return out
}

// more is " and N more" for a batch of n, or "".
func more(n int) string {
	if n <= 1 {
		return ""
	}
	return fmt.Sprintf(" and %d more", n-1)
}

// Ban bans p now, for d (0: permanent; negative: by policy), as an
// administrator asked. It returns ErrAllowlisted if the allowlist covers p.
//
// d between 0 and 1s is refused: the kernel keeps timeouts in
// milliseconds, and a timeout that rounds to 0 is an element without
// expiry that no ban record accounts for.
func (g *Guard) Ban(ctx context.Context, p netip.Prefix, d time.Duration, reason string) (*store.Ban, error) {
	bans, errs := g.BanMany(ctx, []Manual{{Prefix: p, For: d, Reason: reason}})
	return bans[0], errs[0]
}

// Manual is a ban an administrator asks for (see Ban), or another host
// of the fleet shared (Origin "fleet:<host>").
type Manual struct {
	Prefix netip.Prefix
	For    time.Duration // 0: permanent; negative: by policy
	Reason string
	Origin string // "" is "admin"
}

// manualBatch is how many bans by hand go into one netlink batch and one
// transaction, as the group commit of detected bans.
const manualBatch = 4096

// BanMany makes the bans of ms as Ban makes one, at the cost of one
// netlink batch and one transaction per manualBatch bans (a report of an
// archive may hand over tens of thousands). It returns, in ms's order,
// each ban or the error that prevented it.
func (g *Guard) BanMany(ctx context.Context, ms []Manual) ([]*store.Ban, []error) {
	bans, errs := make([]*store.Ban, len(ms)), make([]error, len(ms))
	var batch []decision
	var at []int // batch[i] is ms[at[i]]
	flush := func() {
		if len(batch) == 0 {
			return
		}
		made, err := g.commit(ctx, batch)
		byKey := make(map[netip.Prefix]*store.Ban, len(made))
		for _, b := range made {
			byKey[b.Prefix] = b
		}
		for i, d := range batch {
			switch b := byKey[d.key]; {
			case b != nil:
				bans[at[i]] = b
			case err != nil:
				errs[at[i]] = err
			default:
				errs[at[i]] = fmt.Errorf("ban %s: the firewall refused it (the daemon's log says why)", d.key)
			}
		}
		batch, at = batch[:0], at[:0]
	}
	seen := make(map[netip.Prefix]bool, len(ms))
	g.mu.Lock()
	allow := g.allow
	g.mu.Unlock()
	for i, m := range ms {
		p := ban.Unmap(m.Prefix)
		switch {
		case m.For > 0 && m.For < time.Second:
			errs[i] = fmt.Errorf("ban %s for %v: a ban lasts at least 1s (0 is permanent)", p, m.For)
		case p.Bits() == 0:
			errs[i] = fmt.Errorf("ban %s: that is every address", p)
		case allow.Covers(p):
			errs[i] = fmt.Errorf("ban %s: %w", p, ErrAllowlisted)
		case seen[p]:
			errs[i] = fmt.Errorf("ban %s: asked for twice", p)
		}
		if errs[i] != nil {
			continue
		}
		seen[p] = true
		reason := m.Reason
		if reason == "" {
			reason = "banned by the administrator"
		}
		origin := m.Origin
		if origin == "" {
			origin = "admin"
		}
		batch = append(batch, decision{act: actBan, key: p, reason: reason, dur: m.For, origin: origin})
		at = append(at, i)
		if len(batch) == manualBatch {
			flush()
		}
	}
	flush()
	return bans, errs
}

// Allowlisted reports whether the allowlist covers p.
func (g *Guard) Allowlisted(p netip.Prefix) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.allow.Covers(ban.Unmap(p))
}

// ErrAllowlisted is returned when asked to ban an allowlisted prefix.
var ErrAllowlisted = errors.New("the prefix is on the allowlist")

// The narrowest prefixes a ban by hand may be without force: wider ones
// (ban 128.0.0.0/1) cut off a good part of the Internet by a typo.
const (
	MinManualV4 = 16
	MinManualV6 = 32
)

// CheckManual returns an error if p is too wide to ban by hand: /0
// always (it would ban everyone), and prefixes wider than MinManualV4 or
// MinManualV6 unless force.
func CheckManual(p netip.Prefix, force bool) error {
	p = ban.Unmap(p)
	if p.Bits() == 0 {
		return fmt.Errorf("ban %s: that is every address", p)
	}
	min := MinManualV6
	if p.Addr().Is4() {
		min = MinManualV4
	}
	if p.Bits() < min && !force {
		return fmt.Errorf("ban %s: wider than /%d; give --force if you mean it", p, min)
	}
	return nil
}

// Unban lifts p's ban in the kernel and the store, and forgets its recent
// attempts so the next typo does not ban again at once. It returns
// store.ErrNotFound when p had no recorded ban (the kernel element, if
// any, is still removed).
func (g *Guard) Unban(ctx context.Context, p netip.Prefix) error { return g.unban(ctx, p, true) }

// UnbanRemote lifts p's ban as another host of the fleet asked: not
// shared again.
func (g *Guard) UnbanRemote(ctx context.Context, p netip.Prefix) error { return g.unban(ctx, p, false) }

func (g *Guard) unban(ctx context.Context, p netip.Prefix, share bool) error {
	p = ban.Unmap(p)
	if err := g.fw.Unban(ctx, []netip.Prefix{p}); err != nil {
		return fmt.Errorf("unban %s: %w", p, err)
	}
	g.mu.Lock()
	g.win.Reset(p)
	delete(g.ev, p)
	g.mu.Unlock()
	var msg []byte
	if cfg := g.cfg.Load(); share && cfg.ShareUnban != nil {
		msg = cfg.ShareUnban(p)
	}
	err := g.db.LiftShared(p, msg)
	if err == nil {
		g.log.Info("unbanned", "prefix", p.String())
	}
	return err
}

// Lister is implemented by firewalls that can list what the kernel holds.
type Lister interface {
	List() ([]ban.Element, error)
}

// Restore puts every active ban of the store back in the kernel with its
// remaining time (after a reboot the set is empty; after a restart this
// refreshes it). Bans with less than a second left are left to expire. It
// returns how many were restored.
//
// Elements in the kernel set that the store does not know (the database
// was lost or replaced while the table stayed) are kept and recorded, with
// the time the kernel has left for them: dropping them would silently free
// attackers, and `sshguard-go unban` lifts them like any other ban.
func (g *Guard) Restore(ctx context.Context) (int, error) {
	now := g.now()
	bans, err := g.db.ActiveBans(now)
	if err != nil {
		return 0, fmt.Errorf("restore: %w", err)
	}
	if l, ok := g.fw.(Lister); ok {
		adopted, err := g.adopt(l, bans, now)
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
	if err := g.fw.Ban(ctx, els); err != nil {
		return 0, fmt.Errorf("restore %d bans: %w", len(els), err)
	}
	return len(els), nil
}

// adopt records the kernel's elements that no active ban in the store
// accounts for, and returns the bans it recorded.
func (g *Guard) adopt(l Lister, bans []store.Ban, now time.Time) ([]store.Ban, error) {
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
		if err := g.db.RecordBan(b); err != nil {
			return nil, fmt.Errorf("restore: %w", err)
		}
		adopted = append(adopted, *b)
		g.log.Warn("adopted a ban the database did not know", "prefix", el.Prefix.String(), "expires_in", el.Expires.String())
	}
	return adopted, nil
}

// SetAllowlist replaces the allowlist and lifts the bans it now covers.
func (g *Guard) SetAllowlist(ctx context.Context, a *ban.Allowlist) error {
	g.mu.Lock()
	g.allow = a
	g.mu.Unlock()
	bans, err := g.db.ActiveBans(g.now())
	if err != nil {
		return err
	}
	var errs []error
	for _, b := range bans {
		if a.Covers(b.Prefix) {
			if err := g.Unban(ctx, b.Prefix); err != nil && !errors.Is(err, store.ErrNotFound) {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

func durationText(d time.Duration) string {
	if d == 0 {
		return "ever"
	}
	return d.String()
}
