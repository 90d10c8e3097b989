package main

import (
	"errors"
	"net/netip"
	"sync"
	"time"

	"sshguard-go/internal/ban"
	"sshguard-go/internal/control"
	"sshguard-go/internal/engine"
	"sshguard-go/internal/store"
)

// guard implements control.Backend over the engine and the store. The
// daemon serves it on the control socket; the CLI uses one directly when no
// daemon runs.
type guard struct {
	eng     *engine.Engine
	db      *store.DB
	mu      sync.Mutex     // guards config, sources and events
	config  []netip.Prefix // allowlist entries from the configuration and flags
	started time.Time
	sources []control.SourceStatus
	events  map[string]int64
	metrics *metrics // nil outside the daemon
}

var _ control.Backend = (*guard)(nil)

func (g *guard) Bans() ([]control.BanInfo, error) {
	bans, err := g.db.ActiveBans(time.Now())
	if err != nil {
		return nil, err
	}
	out := make([]control.BanInfo, 0, len(bans))
	for _, b := range bans {
		bi := control.BanInfo{Prefix: b.Prefix, Since: b.Start, Expires: b.Expires, Count: b.Count, Reason: b.Reason}
		if len(b.Users) > 0 {
			bi.LastUser = b.Users[len(b.Users)-1]
		}
		out = append(out, bi)
	}
	return out, nil
}

func (g *guard) Ban(r control.BanRequest) (control.BanInfo, error) {
	b, err := g.eng.Ban(r.Prefix, r.For, r.Reason)
	if err != nil {
		return control.BanInfo{}, err
	}
	if g.metrics != nil {
		g.metrics.bans.WithLabelValues("admin").Inc()
	}
	return control.BanInfo{Prefix: b.Prefix, Since: b.Start, Expires: b.Expires, Count: b.Count, Reason: b.Reason}, nil
}

func (g *guard) Unban(p netip.Prefix) error {
	err := g.eng.Unban(p)
	if errors.Is(err, store.ErrNotFound) {
		return control.ErrNotFound
	}
	return err
}

// allowlist is loopback, the configured entries and the store's.
func (g *guard) allowlist() (*ban.Allowlist, error) {
	entries, err := g.db.Allowlist()
	if err != nil {
		return nil, err
	}
	g.mu.Lock()
	ps := append([]netip.Prefix(nil), g.config...)
	g.mu.Unlock()
	for _, e := range entries {
		ps = append(ps, e.Prefix)
	}
	return ban.NewAllowlist(ps...), nil
}

func (g *guard) AllowAdd(p netip.Prefix, comment string) error {
	if err := g.db.Allow(store.AllowEntry{Prefix: p.Masked(), Comment: comment, Added: time.Now()}); err != nil {
		return err
	}
	a, err := g.allowlist()
	if err != nil {
		return err
	}
	return g.eng.SetAllowlist(a) // lifts a ban it now covers, at once
}

func (g *guard) AllowRemove(p netip.Prefix) error {
	if err := g.db.Disallow(p.Masked()); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return control.ErrNotFound
		}
		return err
	}
	a, err := g.allowlist()
	if err != nil {
		return err
	}
	return g.eng.SetAllowlist(a)
}

func (g *guard) AllowList() ([]control.AllowInfo, error) {
	var out []control.AllowInfo
	for _, p := range ban.NewAllowlist().Prefixes() {
		out = append(out, control.AllowInfo{Prefix: p, Source: "builtin"})
	}
	g.mu.Lock()
	for _, p := range g.config {
		out = append(out, control.AllowInfo{Prefix: p, Source: "config"})
	}
	g.mu.Unlock()
	entries, err := g.db.Allowlist()
	for _, e := range entries {
		out = append(out, control.AllowInfo{Prefix: e.Prefix, Comment: e.Comment, Source: "store"})
	}
	return out, err
}

func (g *guard) Status() (control.Status, error) {
	bans, err := g.db.ActiveBans(time.Now())
	g.mu.Lock()
	defer g.mu.Unlock()
	ev := make(map[string]int64, len(g.events))
	for k, v := range g.events {
		ev[k] = v
	}
	return control.Status{
		Started: g.started, Sources: append([]control.SourceStatus(nil), g.sources...),
		Tracked: g.eng.Tracked(), ActiveBans: len(bans), Events: ev,
	}, err
}
