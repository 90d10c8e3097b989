package daemon

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"sshguard-go/internal/alert"
	"sshguard-go/internal/ban"
	"sshguard-go/internal/config"
	"sshguard-go/internal/control"
	"sshguard-go/internal/detect"
	"sshguard-go/internal/engine"
	"sshguard-go/internal/store"
)

// Service is what the control API serves: bans, the allowlist, status and
// alerts, over the engine and the store. The daemon serves it on the
// control socket; the CLI opens one with OpenService when no daemon runs.
type Service struct {
	guard *engine.Guard
	db    *store.DB
	stats func() Stats // the daemon's live counters
	fleet func() (json.RawMessage, error)

	mu      sync.Mutex     // guards config
	config  []netip.Prefix // allowlist entries from the configuration and flags
	servers []netip.Prefix // the fleet's NATS servers (fleetServers): always allowed

	closeFW func() error // set by OpenService
}

var _ control.Backend = (*Service)(nil)

// newService is the one way a Service is made; configAllow is the
// allowlist of the configuration, resolved, and servers the fleet's
// (fleetServers: the daemon's; a command without it bans nothing a peer
// sent, and the daemon's start lifts a ban of them). The engine's
// allowlist is set from them and the store's.
func newService(ctx context.Context, db *store.DB, g *engine.Guard, configAllow, servers []netip.Prefix, stats func() Stats) (*Service, error) {
	s := &Service{guard: g, db: db, stats: stats, config: configAllow, servers: servers}
	a, err := s.allowlist()
	if err != nil {
		return nil, err
	}
	return s, g.SetAllowlist(ctx, a)
}

// Connect returns what the CLI's commands work through: the running
// daemon's API (cfg's control socket) or, when no daemon answers there, a
// Service over the database and the kernel set (OpenService). close
// releases it.
func Connect(ctx context.Context, cfg *config.Config, warn func(string)) (b control.Backend, close func(), err error) {
	c, err := control.Dial(cfg.State.Socket)
	if err == nil {
		return c, func() {}, nil
	}
	if !errors.Is(err, control.ErrNoDaemon) {
		return nil, nil, err // the socket is there, and not for this user
	}
	s, err := OpenService(ctx, cfg, warn)
	if err != nil {
		return nil, nil, RootHint(err)
	}
	return s, func() { s.Close() }, nil
}

// OpenService opens the database and the firewall that cfg names and
// returns a Service over them, for the CLI when no daemon runs: reading
// (list, alerts) changes nothing, and the kernel table is created only
// when a ban or unban writes to it. Bans use the configuration's policy
// and alert rules (alerts written here are delivered by the daemon when it
// next runs). Close releases it.
func OpenService(ctx context.Context, cfg *config.Config, warn func(string)) (*Service, error) {
	return openService(ctx, cfg, warn, nil, 0)
}

// openService is OpenService with fw in place of nftables when not nil,
// or nftables in the network namespace netns when not 0 (tests).
func openService(ctx context.Context, cfg *config.Config, warn func(string), fw engine.Firewall, netns int) (*Service, error) {
	db, err := OpenStore(cfg.State.DB)
	if err != nil {
		return nil, err
	}
	var closeFW func() error
	switch {
	case cfg.Firewall.Backend == "none":
		fw = logFirewall{} // the CLI says what it would ban, marked as a dry run
	case fw == nil:
		nc := nftConfig(cfg)
		nc.NetNSFd = netns
		lazy := &lazyFirewall{cfg: nc}
		fw, closeFW = lazy, lazy.Close
	}
	g := engine.New(engineConfig(cfg, nil, nil), db, fw, nil, nil, nil)
	s, err := newService(ctx, db, g, cfg.AllowPrefixes(ctx, warn), nil, nil)
	if err != nil {
		if closeFW != nil {
			closeFW()
		}
		db.Close()
		return nil, err
	}
	s.closeFW = closeFW
	return s, nil
}

// Close releases what OpenService opened.
func (s *Service) Close() error {
	var err error
	if s.closeFW != nil {
		err = s.closeFW()
	}
	return errors.Join(err, s.db.Close())
}

// OpenStore opens (creating its directory) the state database at path.
// A damaged file is reported as store.ErrCorrupt.
func OpenStore(path string) (*store.DB, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	return store.Open(path, 2*time.Second)
}

// banInfo is how the control API shows a recorded ban.
func banInfo(b store.Ban) control.BanInfo {
	bi := control.BanInfo{Prefix: b.Prefix, Since: b.Start, Expires: b.Expires, Count: b.Count, Reason: b.Reason, Origin: b.Origin}
	if len(b.Users) > 0 {
		bi.LastUser = b.Users[len(b.Users)-1]
	}
	return bi
}

// Fleet is the daemon's fleet status (null without a daemon or a fleet).
func (s *Service) Fleet(context.Context) (json.RawMessage, error) {
	if s.fleet == nil {
		return json.RawMessage("null"), nil
	}
	v, err := s.fleet()
	if v == nil && err == nil {
		v = json.RawMessage("null")
	}
	return v, err
}

// Bans lists the bans in force; in a dry run, also what it would have in
// force, marked (the bans an earlier real run made are still in the
// kernel until they end). A record that does not decode is left out, and
// counted.
func (s *Service) Bans(ctx context.Context) (control.BanList, error) {
	bans, damaged, err := s.db.InForce(time.Now()) // only reads: OpenReader's database is read-only
	if err != nil {
		return control.BanList{}, err
	}
	out := banList(bans, damaged)
	if !s.guard.DryRun() {
		return out, nil
	}
	dry, err := s.DryRunBans(ctx)
	out.Bans = append(out.Bans, dry.Bans...)
	out.Damaged.Count += dry.Damaged.Count
	out.Damaged.Keys = append(out.Damaged.Keys, dry.Damaged.Keys...)
	return out, err
}

// DryRunBans lists what a dry run would have in force now.
func (s *Service) DryRunBans(context.Context) (control.BanList, error) {
	bans, damaged, err := s.db.DryRunBans(time.Now())
	if err != nil {
		return control.BanList{}, err
	}
	out := banList(bans, damaged)
	for i := range out.Bans {
		out.Bans[i].DryRun = true
	}
	return out, nil
}

// banList is how the control API lists bans, and the records that do
// not decode.
func banList(bans []store.Ban, damaged store.Damaged) control.BanList {
	out := control.BanList{Bans: make([]control.BanInfo, 0, len(bans)), Damaged: control.Damaged{Count: damaged.N, Keys: damaged.Keys}}
	for _, b := range bans {
		out.Bans = append(out.Bans, banInfo(b))
	}
	return out
}

func (s *Service) Ban(ctx context.Context, r control.BanRequest) (control.BanInfo, error) {
	res, err := s.BanMany(ctx, []control.BanRequest{r})
	if err != nil {
		return control.BanInfo{}, err
	}
	if res[0].Error != "" {
		return control.BanInfo{}, errors.New(res[0].Error)
	}
	return *res[0].Ban, nil
}

// BanMany passes each request through the engine's gate (by hand or from
// an archive) and makes those it admits, one netlink batch and
// transaction per 4,096.
func (s *Service) BanMany(ctx context.Context, reqs []control.BanRequest) ([]control.BanResult, error) {
	ctx = context.WithoutCancel(ctx) // a change asked for is made whole even if the asker goes away
	out := make([]control.BanResult, len(reqs))
	ms := make([]engine.Request, len(reqs))
	for i, r := range reqs {
		ms[i] = engine.Request{Prefix: r.Prefix, For: r.For, Permanent: r.Permanent, Reason: r.Reason,
			Origin: cmp.Or(r.Origin, engine.Admin), Force: r.Force, Self: r.Self}
		if ms[i].Origin != engine.Admin && ms[i].Origin != engine.Archive {
			ms[i].Origin = "by hand as " + ms[i].Origin // the gate refuses it
		}
	}
	// The bans in force each replaces, to say so (by hand, one or a few).
	var before map[netip.Prefix]engine.Banned
	if len(reqs) <= 16 {
		before = map[netip.Prefix]engine.Banned{}
		for _, r := range ms {
			if own, _, _, err := s.guard.BansAt(r.Prefix); err == nil && own != nil {
				before[own.Prefix] = *own
			}
		}
	}
	bans, errs := s.guard.BanMany(ctx, ms)
	for i, b := range bans {
		if errs[i] != nil {
			out[i].Error = errs[i].Error()
			continue
		}
		bi := banInfo(*b)
		bi.DryRun = s.guard.DryRun()
		if e, ok := before[b.Prefix]; ok {
			bi.Replaced = &control.BanInfo{Prefix: e.Prefix, Origin: e.Origin, Expires: e.Expires}
		}
		out[i].Ban = &bi
	}
	return out, nil
}

// Unban lifts p's ban and the bans inside p; for an address with no ban
// of its own, the bans that hold it (its /24 or /64, a prefix banned by
// hand).
func (s *Service) Unban(ctx context.Context, p netip.Prefix) ([]netip.Prefix, error) {
	ctx = context.WithoutCancel(ctx) // a change asked for is made whole even if the asker goes away
	own, inside, holding, err := s.guard.BansAt(p)
	if err != nil {
		return nil, err
	}
	var ps []netip.Prefix
	if own != nil {
		ps = append(ps, own.Prefix)
	}
	for _, b := range inside {
		ps = append(ps, b.Prefix)
	}
	if own == nil && ban.Unmap(p).IsSingleIP() {
		for _, b := range holding {
			ps = append(ps, b.Prefix)
		}
	}
	if len(ps) == 0 {
		// Not in force: its kernel element, if any (a ban made behind our
		// back), is still removed, and its record if it does not decode
		// (left out of every read: lifting it is how it goes).
		q := ban.Unmap(p)
		damaged, err := s.db.DamagedRecord(q, s.guard.DryRun())
		if err != nil {
			return nil, err
		}
		lifted, err := s.guard.UnbanMany(ctx, []netip.Prefix{q})
		if err != nil || damaged && len(lifted) > 0 {
			return lifted, err
		}
		return nil, control.ErrNotFound
	}
	return s.guard.UnbanMany(ctx, ps)
}

// UnbanAll lifts every ban in force, or those of origin ("fleet": of
// every host of the fleet).
func (s *Service) UnbanAll(ctx context.Context, origin string) ([]netip.Prefix, error) {
	ctx = context.WithoutCancel(ctx) // a change asked for is made whole even if the asker goes away
	bans, err := s.guard.InForce()
	if err != nil {
		return nil, err
	}
	var ps []netip.Prefix
	for _, b := range bans {
		if engine.OriginMatches(b.Origin, origin) {
			ps = append(ps, b.Prefix)
		}
	}
	if len(ps) == 0 {
		return nil, nil
	}
	return s.guard.UnbanMany(ctx, ps)
}

// records returns the stored bans in force (a dry run's in a dry run) of
// the prefixes of bs.
func (s *Service) records(bs []engine.Banned) ([]store.Ban, error) {
	if len(bs) == 0 {
		return nil, nil
	}
	var all []store.Ban
	var err error
	if s.guard.DryRun() {
		all, _, err = s.db.DryRunBans(time.Now())
	} else {
		all, err = s.db.ActiveBans(time.Now())
	}
	want := map[netip.Prefix]bool{}
	for _, b := range bs {
		want[b.Prefix] = true
	}
	return slices.DeleteFunc(all, func(b store.Ban) bool { return !want[b.Prefix] }), err
}

// allowlist is loopback, the configured entries and the store's.
func (s *Service) allowlist() (*ban.Allowlist, error) {
	entries, err := s.db.Allowlist()
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	ps := append(slices.Clone(s.config), s.servers...)
	s.mu.Unlock()
	for _, e := range entries {
		ps = append(ps, e.Prefix)
	}
	return ban.NewAllowlist(ps...), nil
}

// setConfigAllow replaces the configuration's allowlist entries and
// applies the result (lifting the bans it now covers).
func (s *Service) setConfigAllow(ctx context.Context, ps []netip.Prefix) (int, error) {
	s.mu.Lock()
	s.config = ps
	s.mu.Unlock()
	return s.applyAllowlist(ctx)
}

// applyAllowlist hands the current allowlist to the engine and returns
// its size.
func (s *Service) applyAllowlist(ctx context.Context) (int, error) {
	a, err := s.allowlist()
	if err != nil {
		return 0, err
	}
	return len(a.Prefixes()), s.guard.SetAllowlist(ctx, a) // lifts a ban it now covers, at once
}

// AllowAdd adds r's entry and lifts the bans in force it covers, naming
// them; a ban wider than the entry (which would lift more than the entry
// says) only with r.Force. The entry remembers what it lifted, for
// AllowRemove.
func (s *Service) AllowAdd(ctx context.Context, r control.AllowRequest) (control.AllowResult, error) {
	ctx = context.WithoutCancel(ctx) // a change asked for is made whole even if the asker goes away
	p := ban.Unmap(r.Prefix)
	res := control.AllowResult{Prefix: p}
	if p.Bits() == 0 {
		return res, fmt.Errorf("allow %s: that is every address: nothing would ever be banned", p)
	}
	own, inside, holding, err := s.guard.BansAt(p)
	if err != nil {
		return res, err
	}
	if len(holding) > 0 && !r.Force {
		var names []string
		for _, b := range holding {
			names = append(names, fmt.Sprintf("%s (%s, %s)", b.Prefix, b.Origin, untilText(b.Expires)))
		}
		return res, fmt.Errorf("allow %s: it is inside the ban of %s, which is wider than the entry: adding it lifts that whole ban; give --force if you mean it, or unban %s alone",
			p, strings.Join(names, ", "), p)
	}
	covered := append(inside, holding...)
	if own != nil {
		covered = append(covered, *own)
	}
	lifted, err := s.records(covered)
	if err != nil {
		return res, err
	}
	e := store.AllowEntry{Prefix: p, Comment: r.Comment, Added: time.Now()}
	entries, err := s.db.Allowlist()
	if err != nil {
		return res, err
	}
	// An entry added again keeps what it was: its comment unless a new
	// one is given, its date, and the bans it lifted the first time (which
	// allow rm makes again), with those it lifts now.
	for _, old := range entries {
		if old.Prefix != p {
			continue
		}
		res.Already = true
		res.CommentChanged = r.Comment != "" && r.Comment != old.Comment
		e.Added, e.Lifted = old.Added, old.Lifted
		if r.Comment == "" {
			e.Comment = old.Comment
		}
	}
	for _, b := range lifted {
		if !slices.ContainsFunc(e.Lifted, func(l store.Ban) bool { return l.Prefix == b.Prefix }) {
			e.Lifted = append(e.Lifted, b)
		}
	}
	e.Lifted = e.Lifted[:min(len(e.Lifted), store.MaxLifted)]
	if err := s.db.Allow(e); err != nil {
		return res, err
	}
	if _, err := s.applyAllowlist(ctx); err != nil {
		return res, err
	}
	for _, b := range lifted {
		res.Lifted = append(res.Lifted, banInfo(b))
	}
	return res, nil
}

func untilText(t time.Time) string {
	if t.IsZero() {
		return "permanent"
	}
	return "until " + t.Format(time.RFC3339)
}

// AllowRemove removes p's entry, and makes again (by hand, for the time
// they had left) the bans it lifted that have not ended and that the
// allowlist no longer covers.
func (s *Service) AllowRemove(ctx context.Context, p netip.Prefix) (control.AllowResult, error) {
	ctx = context.WithoutCancel(ctx) // a change asked for is made whole even if the asker goes away
	p = ban.Unmap(p)
	res := control.AllowResult{Prefix: p}
	entries, err := s.db.Allowlist()
	if err != nil {
		return res, err
	}
	var entry store.AllowEntry
	for _, e := range entries {
		if e.Prefix == p {
			entry = e
		}
	}
	if err := s.db.Disallow(p); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return res, control.ErrNotFound
		}
		return res, err
	}
	if _, err := s.applyAllowlist(ctx); err != nil {
		return res, err
	}
	now := time.Now()
	var reqs []engine.Request
	for _, b := range entry.Lifted {
		if !b.Active(now) {
			continue
		}
		r := engine.Request{Prefix: b.Prefix, Permanent: b.Expires.IsZero(), Origin: engine.Admin, Force: true,
			Reason: "made again at allow rm " + p.String() + ": " + b.Reason}
		if !r.Permanent {
			r.For = max(b.Expires.Sub(now).Round(time.Second), time.Second)
		}
		reqs = append(reqs, r)
	}
	if len(reqs) == 0 {
		return res, nil
	}
	bans, errs := s.guard.BanMany(ctx, reqs)
	for i, b := range bans {
		if errs[i] == nil {
			bi := banInfo(*b)
			bi.DryRun = s.guard.DryRun()
			res.Restored = append(res.Restored, bi)
		}
	}
	return res, nil
}

func (s *Service) AllowList(context.Context) ([]control.AllowInfo, error) {
	var out []control.AllowInfo
	for _, p := range append(ban.NewAllowlist().Prefixes(), ban.Special()...) {
		out = append(out, control.AllowInfo{Prefix: p, Source: "builtin"})
	}
	s.mu.Lock()
	for _, p := range s.config {
		out = append(out, control.AllowInfo{Prefix: p, Source: "config"})
	}
	for _, p := range s.servers {
		out = append(out, control.AllowInfo{Prefix: p, Source: "fleet", Comment: "a NATS server of fleet.nats_url"})
	}
	s.mu.Unlock()
	entries, err := s.db.Allowlist()
	for _, e := range entries {
		out = append(out, control.AllowInfo{Prefix: e.Prefix, Comment: e.Comment, Source: "store"})
	}
	return out, err
}

// Status reads the daemon's live counters (see Daemon.Stats).
func (s *Service) Status(context.Context) (control.Status, error) {
	if s.stats == nil {
		return control.Status{}, errors.New("status: no daemon is running")
	}
	st := s.stats()
	ev := map[string]int64{}
	for k, n := range st.Scan.ByKind {
		if n > 0 {
			ev[detect.Kind(k).String()] = n
		}
	}
	return control.Status{Started: st.Started, Sources: st.Sources, Tracked: st.Tracked, ActiveBans: st.ActiveBans, Events: ev,
		Untrusted: st.Scan.Untrusted, Unrecognised: map[string]int64{"unknown_shape": st.Scan.Unrecognised, "unknown_header": st.Scan.UnknownHead},
		DryRun: st.DryRun, Policy: st.Policy, BansByOrigin: st.InForce, BansSinceStart: st.Made, Dropped: st.Dropped}, st.Err
}

// Alerts lists the newest alerts from the outbox.
func (s *Service) Alerts(_ context.Context, pending bool, limit int) ([]control.AlertInfo, error) {
	type record struct {
		id      uint64
		data    []byte
		pending bool
	}
	var recs []record
	err := s.db.Alerts(0, func(id uint64, data []byte, isPending bool) bool {
		if pending && !isPending {
			return true
		}
		recs = append(recs, record{id, data, isPending})
		return limit <= 0 || len(recs) < limit
	})
	// Rendered after the read: resolving a ban reads the store too, and a
	// read transaction inside another can deadlock with a writer.
	out := make([]control.AlertInfo, 0, len(recs))
	for _, r := range recs {
		out = append(out, alertInfo(r.id, r.data, r.pending, engine.Resolver(s.db)))
	}
	return out, err
}

// alertInfo is how the control API shows an outbox record.
func alertInfo(id uint64, data []byte, pending bool, resolve func([]byte) (*alert.Ban, error)) control.AlertInfo {
	m, err := alert.Unmarshal(data)
	if err != nil {
		return control.AlertInfo{ID: id, Kind: "unreadable", Subject: err.Error(), Pending: pending}
	}
	m.ResolveBan(resolve)
	ai := control.AlertInfo{ID: id, Time: m.Time, Kind: string(m.Kind), Severity: m.Severity.String(),
		Subject: alert.Render(m, "").Subject, Pending: pending, Deliveries: map[string]control.DeliveryInfo{}}
	for name, d := range m.Deliveries {
		ai.Deliveries[name] = control.DeliveryInfo{State: string(d.State), Attempts: d.Attempts, Sent: d.Sent,
			Next: d.Next, Digest: d.Digest, Error: d.Error, Done: d.Done}
	}
	return ai
}
