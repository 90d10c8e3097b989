package daemon

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
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

	mu     sync.Mutex     // guards config
	config []netip.Prefix // allowlist entries from the configuration and flags

	closeFW func() error // set by OpenService
}

var _ control.Backend = (*Service)(nil)

// newService is the one way a Service is made; configAllow is the
// allowlist of the configuration, resolved. The engine's allowlist is set
// from it and the store's.
func newService(ctx context.Context, db *store.DB, g *engine.Guard, configAllow []netip.Prefix, stats func() Stats) (*Service, error) {
	s := &Service{guard: g, db: db, stats: stats, config: configAllow}
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
	db, err := OpenStore(cfg.State.DB)
	if err != nil {
		return nil, err
	}
	var fw engine.Firewall = logFirewall{slog.New(slog.NewTextHandler(os.Stderr, nil))}
	var closeFW func() error
	if cfg.Firewall.Backend == "nftables" {
		lazy := &lazyFirewall{cfg: nftConfig(cfg)}
		fw, closeFW = lazy, lazy.Close
	}
	g := engine.New(engineConfig(cfg, nil, nil), db, fw, nil, nil, nil)
	s, err := newService(ctx, db, g, cfg.AllowPrefixes(ctx, warn), nil)
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
func (s *Service) Fleet() (json.RawMessage, error) {
	if s.fleet == nil {
		return json.RawMessage("null"), nil
	}
	v, err := s.fleet()
	if v == nil && err == nil {
		v = json.RawMessage("null")
	}
	return v, err
}

func (s *Service) Bans() ([]control.BanInfo, error) {
	bans, err := s.db.InForce(time.Now()) // only reads: OpenReader's database is read-only
	if err != nil {
		return nil, err
	}
	out := make([]control.BanInfo, 0, len(bans))
	for _, b := range bans {
		out = append(out, banInfo(b))
	}
	return out, nil
}

func (s *Service) Ban(r control.BanRequest) (control.BanInfo, error) {
	res, err := s.BanMany([]control.BanRequest{r})
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
func (s *Service) BanMany(reqs []control.BanRequest) ([]control.BanResult, error) {
	out := make([]control.BanResult, len(reqs))
	ms := make([]engine.Request, len(reqs))
	for i, r := range reqs {
		ms[i] = engine.Request{Prefix: r.Prefix, For: r.For, Permanent: r.Permanent, Reason: r.Reason,
			Origin: cmp.Or(r.Origin, engine.Admin), Force: r.Force, Self: r.Self}
		if ms[i].Origin != engine.Admin && ms[i].Origin != engine.Archive {
			ms[i].Origin = "by hand as " + ms[i].Origin // the gate refuses it
		}
	}
	bans, errs := s.guard.BanMany(context.Background(), ms)
	for i, b := range bans {
		if errs[i] != nil {
			out[i].Error = errs[i].Error()
			continue
		}
		bi := banInfo(*b)
		out[i].Ban = &bi
	}
	return out, nil
}

func (s *Service) Unban(p netip.Prefix) ([]netip.Prefix, error) {
	ctx := context.Background()
	p = ban.Unmap(p)
	err := s.guard.Unban(ctx, p)
	if err == nil {
		return []netip.Prefix{p}, nil
	}
	if !errors.Is(err, store.ErrNotFound) || !p.IsSingleIP() {
		return nil, notFound(err)
	}
	// An address banned by its /24 or /64 (ipv4_prefix, ipv6_prefix), or
	// inside a prefix banned by hand.
	bans, err := s.db.ActiveBans(time.Now())
	if err != nil {
		return nil, err
	}
	var lifted []netip.Prefix
	for _, b := range bans {
		if b.Prefix.Contains(p.Addr()) {
			if err := s.guard.Unban(ctx, b.Prefix); err != nil && !errors.Is(err, store.ErrNotFound) {
				return lifted, err
			}
			lifted = append(lifted, b.Prefix)
		}
	}
	if len(lifted) == 0 {
		return nil, control.ErrNotFound
	}
	return lifted, nil
}

func notFound(err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return control.ErrNotFound
	}
	return err
}

// allowlist is loopback, the configured entries and the store's.
func (s *Service) allowlist() (*ban.Allowlist, error) {
	entries, err := s.db.Allowlist()
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	ps := append([]netip.Prefix(nil), s.config...)
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

func (s *Service) AllowAdd(p netip.Prefix, comment string) error {
	if err := s.db.Allow(store.AllowEntry{Prefix: p.Masked(), Comment: comment, Added: time.Now()}); err != nil {
		return err
	}
	_, err := s.applyAllowlist(context.Background())
	return err
}

func (s *Service) AllowRemove(p netip.Prefix) error {
	if err := s.db.Disallow(p.Masked()); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return control.ErrNotFound
		}
		return err
	}
	_, err := s.applyAllowlist(context.Background())
	return err
}

func (s *Service) AllowList() ([]control.AllowInfo, error) {
	var out []control.AllowInfo
	for _, p := range append(ban.NewAllowlist().Prefixes(), ban.Special()...) {
		out = append(out, control.AllowInfo{Prefix: p, Source: "builtin"})
	}
	s.mu.Lock()
	for _, p := range s.config {
		out = append(out, control.AllowInfo{Prefix: p, Source: "config"})
	}
	s.mu.Unlock()
	entries, err := s.db.Allowlist()
	for _, e := range entries {
		out = append(out, control.AllowInfo{Prefix: e.Prefix, Comment: e.Comment, Source: "store"})
	}
	return out, err
}

// Status reads the daemon's live counters (see Daemon.Stats).
func (s *Service) Status() (control.Status, error) {
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
		Untrusted: st.Scan.Untrusted, Unrecognised: map[string]int64{"unknown_shape": st.Scan.Unrecognised, "unknown_header": st.Scan.UnknownHead}}, st.Err
}

// Alerts lists the newest alerts from the outbox.
func (s *Service) Alerts(pending bool, limit int) ([]control.AlertInfo, error) {
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
