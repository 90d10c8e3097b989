// Package daemon is the application: it opens the state database and the
// firewall, restores the bans, and runs every long-lived part (the log
// pipeline, the periodic duties and table watchdog, the alert worker, the
// daily report, the control socket and the metrics listener) under one
// errgroup, so that a part that fails stops the daemon with its error
// instead of leaving it running half-blind. Reload applies a new
// configuration in place. The CLI uses the same Service (OpenService) when
// no daemon runs.
package daemon

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"sync"
	"sync/atomic"
	"time"

	sdaemon "github.com/coreos/go-systemd/v22/daemon"
	"golang.org/x/sync/errgroup"

	"sshguard-go/internal/alert"
	"sshguard-go/internal/api"
	"sshguard-go/internal/ban"
	"sshguard-go/internal/config"
	"sshguard-go/internal/control"
	"sshguard-go/internal/detect"
	"sshguard-go/internal/engine"
	"sshguard-go/internal/httpserve"
	"sshguard-go/internal/share"
	"sshguard-go/internal/store"
)

// Daemon is one running sshguard-go. Make it with New, run it with Run.
type Daemon struct {
	cfg     atomic.Pointer[config.Config] // the configuration in force
	log     *slog.Logger
	notify  func(state string)
	started time.Time

	db    *store.DB
	nft   *ban.NFTSet     // nil with backend "none"
	netns int             // the network namespace of nft (0: this process's)
	fw    engine.Firewall // given by WithFirewall

	madeMu  sync.Mutex
	made    map[string]int64 // bans made since the start, by origin
	guard   *engine.Guard
	svc     *Service
	pipe    *pipeline
	worker  *alert.Worker
	metrics *metrics
	sess    *sessions     // the audit trail
	sharer  *share.Sharer // bans shared across the fleet (nil: off)
	// summaryEvery is how often the sharer puts this host's summary in
	// the bucket (0: share.DefaultSummaryEvery; tests shorten it).
	summaryEvery time.Duration
	events       *api.Events // the last events, for the API
	api          *api.Server // nil when api.listen is off
	apiTLS       *tls.Config
	apiLn        net.Listener // the API's socket, open from New on
	apiAddr      atomic.Value // string: where the API listens

	apiTokenFile string // the API's token ("": none, client certificates only)

	limits serverLimits // of the API, the metrics and the control socket

	reloadMu sync.Mutex      // serialises Reload
	chans    []alert.Channel // the channels running; guarded by reloadMu
	closed   bool
}

// serverLimits are the limits of the daemon's servers: their own, but
// shorter in tests.
type serverLimits struct{ api, metrics, control httpserve.Limits }

// Option changes how New makes a Daemon.
type Option func(*Daemon)

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(d *Daemon) { d.log = l } }

// WithNotify sets what receives the systemd notifications (READY=1,
// WATCHDOG=1, STOPPING=1); the default sends them to $NOTIFY_SOCKET.
func WithNotify(f func(state string)) Option { return func(d *Daemon) { d.notify = f } }

// WithFirewall makes fw the daemon's firewall in place of nftables (with
// backend "nftables"): tests without root or a namespace.
func WithFirewall(fw engine.Firewall) Option { return func(d *Daemon) { d.fw = fw } }

// WithNetNS puts the daemon's nftables table in the network namespace
// open as fd (tests give each daemon a fresh one).
func WithNetNS(fd int) Option { return func(d *Daemon) { d.netns = fd } }

// New opens the database and the firewall that cfg names, creates the
// nftables table, builds the alert channels and restores every active ban
// into the kernel. A damaged database is an error wrapping
// store.ErrCorrupt. The configuration must be valid (config.Load).
func New(ctx context.Context, cfg *config.Config, opts ...Option) (_ *Daemon, err error) {
	d := &Daemon{log: slog.New(slog.DiscardHandler), started: time.Now(), metrics: newMetrics(), made: map[string]int64{},
		notify: func(state string) { sdaemon.SdNotify(false, state) },
		limits: serverLimits{api: api.Limits(), metrics: metricsLimits(), control: control.Limits()}}
	for _, o := range opts {
		o(d)
	}
	d.cfg.Store(cfg)
	defer func() {
		if err != nil {
			d.Close()
		}
	}()
	if d.db, err = OpenStore(cfg.State.DB); err != nil {
		return nil, RootHint(err)
	}
	var fw engine.Firewall = logFirewall{d.log}
	switch {
	case cfg.Firewall.Backend == "nftables" && d.fw != nil:
		fw = d.fw
	case cfg.Firewall.Backend == "nftables":
		nc := nftConfig(cfg)
		nc.NetNSFd = d.netns
		if d.nft, err = ban.NewNFTSet(nc); err != nil {
			return nil, RootHint(err)
		}
		if err := d.nft.Ensure(); err != nil {
			return nil, RootHint(err)
		}
		fw = d.nft
	}
	for _, w := range cfg.Warnings() {
		d.log.Warn(w)
	}
	if d.chans, err = cfg.Alerts.Channels(); err != nil {
		return nil, fmt.Errorf("alerts: %w", err)
	}
	// The worker runs without channels too, so that a reload can add one.
	d.worker = alert.NewWorker(d.workerConfig(cfg), d.db, d.chans, nil, d.log)
	d.worker.OnResult = func(channel, result string) { d.metrics.deliveries.WithLabelValues(channel, result).Inc() }
	d.worker.Resolve = engine.Resolver(d.db)
	ec := engineConfig(cfg, d.worker.Wake, d.countBan)
	d.guard = engine.New(ec, d.db, fw, nil, nil, d.log)
	// The bans in force first, before the rest of the start: after a
	// reboot in a wave, until they are back the wave is let in.
	restored, err := d.guard.Restore(ctx)
	if err != nil {
		return nil, err
	}
	d.loadWindows()
	if d.sharer, err = d.newSharer(cfg); err != nil {
		return nil, err
	}
	if d.sharer != nil {
		d.share(&ec, cfg)
		d.guard.Reconfigure(ec)
	}
	if d.svc, err = newService(ctx, d.db, d.guard, cfg.AllowPrefixes(ctx, d.warn), fleetServers(ctx, cfg.Fleet, d.warn), d.Stats); err != nil {
		return nil, err
	}
	d.svc.fleet = d.fleetStatus
	d.events = api.NewEvents(cfg.API.Events)
	if d.api, d.apiTLS, err = d.newAPI(cfg); err != nil {
		return nil, err
	}
	if d.api != nil {
		if err := d.listenAPI(cfg.API.Listen); err != nil {
			return nil, err
		}
	}
	d.pipe = newPipeline(cfg.Log, d.db, d.guard, d.log)
	d.pipe.events = d.events
	if d.sess, err = newSessions(d.db, d.log, d.worker, d.cfg.Load); err != nil {
		return nil, err
	}
	d.pipe.sessions = d.sess
	// READY=1 once the source has fixed where it reads from: a line
	// appended after `systemctl start` returns is not missed.
	d.pipe.ready = func() { d.notify(sdaemon.SdNotifyReady) }
	d.log.Info("started", "table", "inet "+cfg.Firewall.Table, "restored_bans", restored, "firewall", cfg.Firewall.Backend)
	if len(d.chans) > 0 {
		d.log.Info("alerts", "channels", channelNames(d.chans))
	}
	return d, nil
}

// workerConfig is cfg's delivery settings, with this database's id.
func (d *Daemon) workerConfig(cfg *config.Config) alert.WorkerConfig {
	wc := cfg.Alerts.WorkerConfig()
	wc.Instance = d.db.Instance()
	return wc
}

func (d *Daemon) warn(msg string) { d.log.Warn(msg) }
func (d *Daemon) countBan(origin string) {
	d.metrics.bans.WithLabelValues(engine.OriginGroup(origin)).Inc() // one label for the fleet's hosts: bounded
	d.madeMu.Lock()
	d.made[origin]++
	d.madeMu.Unlock()
}

// Run runs the daemon until ctx ends (it then returns nil) or a part
// fails (it returns that part's error). On the way out it saves the read
// position and the counts and closes everything New opened.
func (d *Daemon) Run(ctx context.Context) error {
	defer d.Close()
	cfg := d.cfg.Load()
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return d.pipe.run(gctx) })
	g.Go(func() error { return d.guard.Run(gctx) })
	g.Go(func() error { return d.guard.Tally(gctx) })
	g.Go(func() error { return d.maintain(gctx) })
	g.Go(func() error { return d.worker.Run(gctx) })
	g.Go(func() error { return d.dailyReports(gctx) })
	g.Go(func() error { return d.housekeeping(gctx) })
	g.Go(func() error { return control.Serve(gctx, cfg.State.Socket, d.svc, d.limits.control) })
	if d.api != nil {
		g.Go(func() error { return d.serveAPI(gctx) })
	}
	if d.sharer != nil {
		sum := &api.Server{DB: d.db, Host: cfg.Fleet.HostName(), Loc: cfg.Alerts.Location(), Counts: d.guard}
		g.Go(func() error {
			d.sharer.PublishSummaries(gctx, func() (api.Summary, error) { return sum.LastDays(share.SummaryDays) })
			return nil
		})
		g.Go(func() error {
			// An outage of the fleet never stops local banning.
			if err := d.sharer.Run(gctx); err != nil && gctx.Err() == nil {
				d.log.Error("fleet: bans are not shared", "err", err)
			}
			return nil
		})
	}
	g.Go(func() error { d.sess.w.run(gctx); return nil })
	g.Go(func() error { d.sess.run(gctx); return nil })
	if path := cfg.Audit.AuditLog(); path != "" {
		g.Go(func() error {
			// Sessions go on without their commands: not a reason to stop.
			if err := d.sess.followAudit(gctx, path); err != nil && gctx.Err() == nil {
				d.log.Error("audit log: sessions are kept without their commands", "path", path, "err", err)
			}
			return nil
		})
	}
	if cfg.Metrics.Listen != "" {
		d.metrics.reg.MustRegister(statsCollector{d.Stats})
		g.Go(func() error {
			err := d.metrics.serve(gctx, cfg.Metrics.Listen, d.limits.metrics, func(addr string) { d.log.Info("metrics", "listen", addr) })
			if err != nil {
				return fmt.Errorf("metrics listener: %w", err)
			}
			return nil
		})
	}
	err := g.Wait()
	d.pipe.savePosition()
	d.saveWindows()
	d.sess.saveAuditPosition()
	d.sess.w.flush()
	if err := d.guard.FlushCounts(); err != nil {
		d.log.Error("save counts", "err", err)
	}
	d.notify(sdaemon.SdNotifyStopping)
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		d.log.Info("stopped")
		return nil
	}
	if err == nil && ctx.Err() == nil {
		err = errors.New("stopped unexpectedly")
	}
	return err
}

// Close releases the database and the firewall. Run calls it; call it
// yourself only for a Daemon that is not run.
func (d *Daemon) Close() error {
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	var errs []error
	if d.apiLn != nil {
		d.apiLn.Close() // served or not
	}
	if d.nft != nil {
		errs = append(errs, d.nft.Close())
	}
	if d.db != nil {
		errs = append(errs, d.db.Close())
	}
	return errors.Join(errs...)
}

// Stats is what the daemon counted; status and metrics both read it.
type Stats struct {
	Started    time.Time
	Sources    []control.SourceStatus
	Scan       detect.Stats // lines, events per kind, counted attempts, unrecognised lines
	Tracked    int          // keys being counted
	ActiveBans int
	Err        error         // reading the active bans failed (ActiveBans is then 0)
	Fleet      *share.Status // the fleet's ban sharing (nil: off)
	DryRun     bool
	Policy     control.Policy
	InForce    map[string]int   // bans in force by origin
	Made       map[string]int64 // bans made since the start, by origin ("fleet": the fleet's hosts)
	Dropped    map[string]int64 // side work given up so that banning never waits, by kind
}

// Stats reads the live counters.
func (d *Daemon) Stats() Stats {
	src, scan := d.pipe.status()
	st := Stats{Started: d.started, Sources: []control.SourceStatus{src}, Scan: scan, Tracked: d.guard.Tracked()}
	if a, ok := d.sess.status(); ok {
		st.Sources = append(st.Sources, a)
	}
	if d.sharer != nil {
		f := d.sharer.Status()
		st.Fleet = &f
	}
	st.ActiveBans, st.Err = d.db.CountActive(time.Now())
	cfg := d.cfg.Load()
	st.DryRun, st.Policy = d.guard.DryRun(), policyOf(cfg)
	st.InForce, st.Made = map[string]int{}, map[string]int64{}
	if bans, err := d.guard.InForce(); err == nil {
		for _, b := range bans {
			st.InForce[cmp.Or(engine.OriginGroup(b.Origin), "kernel")]++
		}
	}
	d.madeMu.Lock()
	maps.Copy(st.Made, d.made)
	d.madeMu.Unlock()
	st.Dropped = map[string]int64{}
	if n := d.guard.CountsDropped(); n > 0 {
		st.Dropped["counts"] = n
	}
	return st
}

// policyOf is the ban policy of cfg as status shows it.
func policyOf(cfg *config.Config) control.Policy {
	text := func(d config.Duration) string { b, _ := d.MarshalText(); return string(b) }
	dt, b := cfg.Detection, cfg.Ban
	p := control.Policy{Threshold: dt.Threshold, Window: text(dt.Window), BanTime: text(b.BanTime), Factor: b.Factor,
		MaxBanTime: text(b.MaxBanTime), Remember: text(b.Remember), PermanentAfter: b.PermanentAfter,
		WideV4: dt.WideV4, WideV6: dt.WideV6, WideThreshold: dt.WideThreshold, Backend: cfg.Firewall.Backend, Table: cfg.Firewall.Table}
	for _, h := range dt.Horizons {
		p.Horizons = append(p.Horizons, fmt.Sprintf("%g in %s", h.Threshold, text(h.Window)))
	}
	for _, h := range dt.NetworkHorizons {
		p.NetworkHorizons = append(p.NetworkHorizons, fmt.Sprintf("%g from a /%d or /%d in %s", h.Threshold, dt.NetworkV4, dt.NetworkV6, text(h.Window)))
	}
	return p
}
