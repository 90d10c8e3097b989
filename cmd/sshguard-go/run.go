package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	sdaemon "github.com/coreos/go-systemd/v22/daemon"
	"github.com/spf13/cobra"

	"sshguard-go/internal/alert"
	"sshguard-go/internal/ban"
	"sshguard-go/internal/control"
	"sshguard-go/internal/detect"
	"sshguard-go/internal/engine"
	"sshguard-go/internal/store"
)

// daemonOpts are the daemon's command-line settings; set ones override
// the configuration file.
type daemonOpts struct {
	config    string
	logFile   string
	journal   bool
	fromStart bool
	db        string
	socket    string
	table     string
	priority  int
	forward   bool
	cut       bool
	dryRun    bool
	allow     []string
	threshold float64
	window    time.Duration
	banTime   time.Duration
	test      bool
}

func addStateFlags(cmd *cobra.Command, o *daemonOpts) {
	cmd.Flags().StringVar(&o.db, "db", "/var/lib/sshguard-go/state.db", "state database")
	cmd.Flags().StringVar(&o.socket, "socket", control.DefaultSocket, "control socket")
	cmd.Flags().StringVar(&o.table, "table", "sshguard-go", "nftables table (family inet)")
}

func newRunCmd() *cobra.Command {
	var o daemonOpts
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the daemon: follow sshd's log and ban attackers in nftables",
		Long: `run follows sshd's log (the auth log file if there is one, else journald),
counts failed attempts per client in a sliding window, and bans offenders in
the nftables table "inet sshguard-go" with kernel-side expiry. Every ban and
every successful login is put in an outbox and sent by the configured alert
channels (email, SMS, webhook). Bans, the allowlist, alerts and the read
position are kept in the state database, so a restart or a reboot loses
nothing.

The configuration file is read at start (flags override it); SIGHUP re-reads
it (detection, bans, allowlist, alert rules); SIGINT and SIGTERM stop it
cleanly. With -t it only checks and prints the effective configuration.`,
		Example: `  sudo sshguard-go run
  sudo sshguard-go run --dry-run --log /var/log/auth.log
  sudo sshguard-go run -t --config ./sshguard-go.toml`,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := effectiveConfig(cmd, &o)
			if err != nil {
				return &exitError{2, err}
			}
			if o.test {
				if _, err := cfg.Alerts.channels(); err != nil {
					return &exitError{2, fmt.Errorf("alerts: %w", err)}
				}
				return printConfig(cmd.OutOrStdout(), cfg)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runDaemon(ctx, cfg, o)
		},
	}
	addStateFlags(cmd, &o)
	f := cmd.Flags()
	f.StringVarP(&o.config, "config", "c", DefaultConfig, "configuration file (missing default file: built-in defaults)")
	f.StringVar(&o.logFile, "log", "", "log file to follow (default: /var/log/auth.log or /var/log/secure, else journald)")
	f.BoolVar(&o.journal, "journal", false, "read journald even if a log file exists")
	f.BoolVar(&o.fromStart, "from-start", false, "on first start, read the log file from its beginning instead of its end")
	f.IntVar(&o.priority, "priority", -10, "priority of the input hook")
	f.BoolVar(&o.forward, "forward", false, "also drop banned sources in the forward hook (containers, VMs)")
	f.BoolVar(&o.cut, "cut-connections", false, "end established connections of a newly banned source (conntrack)")
	f.BoolVar(&o.dryRun, "dry-run", false, "log what would be banned; change no firewall")
	f.StringSliceVar(&o.allow, "allow", nil, "address or prefix never to ban (repeatable; loopback always)")
	f.BoolVarP(&o.test, "test", "t", false, "check the configuration (file and flags), print it with secrets masked, and exit")
	f.Float64Var(&o.threshold, "threshold", 5, "weighted attempts that ban")
	f.DurationVar(&o.window, "window", 10*time.Minute, "sliding window for the threshold")
	f.DurationVar(&o.banTime, "ban-time", time.Hour, "first ban's length (doubles for repeat offenders, up to a week)")
	return cmd
}

// effectiveConfig loads the configuration file and applies the flags that
// were given on the command line.
func effectiveConfig(cmd *cobra.Command, o *daemonOpts) (Config, error) {
	cfg := defaultConfig()
	if _, err := os.Stat(o.config); err == nil || cmd.Flags().Changed("config") {
		var err error
		if cfg, err = LoadConfig(o.config); err != nil {
			return cfg, err
		}
	}
	set := cmd.Flags().Changed
	if set("log") {
		cfg.Log.File = o.logFile
	}
	if set("journal") {
		cfg.Log.Journal = o.journal
	}
	if set("from-start") {
		cfg.Log.FromStart = o.fromStart
	}
	if set("db") {
		cfg.State.DB = o.db
	}
	if set("socket") {
		cfg.State.Socket = o.socket
	}
	if set("table") {
		cfg.Firewall.Table = o.table
	}
	if set("priority") {
		cfg.Firewall.Priority = o.priority
	}
	if set("forward") {
		cfg.Firewall.Forward = o.forward
	}
	if set("cut-connections") {
		cfg.Firewall.CutConnections = o.cut
	}
	if set("dry-run") && o.dryRun {
		cfg.Firewall.Backend = "none"
	}
	if set("allow") {
		cfg.Ban.Allow = append(cfg.Ban.Allow, o.allow...)
	}
	if set("threshold") {
		cfg.Detection.Threshold = o.threshold
	}
	if set("window") {
		cfg.Detection.Window = Duration(o.window)
	}
	if set("ban-time") {
		cfg.Ban.BanTime = Duration(o.banTime)
	}
	return cfg, cfg.Validate()
}

// newLogger logs to w in logfmt. Under systemd (JOURNAL_STREAM set)
// the time is left out: journald stamps every line itself.
func newLogger(w io.Writer, journald bool) *slog.Logger {
	opts := &slog.HandlerOptions{}
	if journald {
		opts.ReplaceAttr = func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// logFirewall is the --dry-run firewall: it only logs.
type logFirewall struct{ log *slog.Logger }

func (l logFirewall) Ban(els []ban.Element) error {
	for _, e := range els {
		l.log.Info("dry run: would ban", "prefix", e.Prefix.String(), "for", e.Timeout.String())
	}
	return nil
}

func (l logFirewall) Unban(ps []netip.Prefix) error {
	for _, p := range ps {
		l.log.Info("dry run: would unban", "prefix", p.String())
	}
	return nil
}

// engineConfig maps the configuration file onto the engine's settings;
// wake is called when an alert was written.
func engineConfig(cfg Config, wake func()) engine.Config {
	d, b := cfg.Detection, cfg.Ban
	probe := d.ProbeWeight
	if probe == 0 {
		probe = -1 // not counted
	}
	return engine.Config{
		FailureWeight: d.FailureWeight, ProbeWeight: probe, V4Bits: d.IPv4Prefix, V6Bits: d.IPv6Prefix,
		Window: ban.WindowConfig{Window: time.Duration(d.Window), Threshold: d.Threshold, MaxTracked: d.MaxTracked},
		Policy: ban.Policy{BanTime: time.Duration(b.BanTime), Factor: b.Factor, MaxBanTime: time.Duration(b.MaxBanTime),
			Remember: time.Duration(b.Remember), PermanentAfter: b.PermanentAfter},
		Alerts: cfg.Alerts.policy(), Wake: wake,
	}
}

// effectiveConfigAgain re-reads the configuration on SIGHUP; of the flags
// only --allow still adds to it.
func effectiveConfigAgain(o daemonOpts) (Config, error) {
	cfg := defaultConfig()
	if _, err := os.Stat(o.config); err == nil {
		c, err := LoadConfig(o.config)
		if err != nil {
			return cfg, err
		}
		cfg = c
	}
	cfg.Ban.Allow = append(cfg.Ban.Allow, o.allow...)
	return cfg, nil
}

// parsePrefix accepts an address (as a full-length prefix) or a prefix.
func parsePrefix(s string) (netip.Prefix, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return p, fmt.Errorf("%q is not an address or prefix", s)
	}
	return p.Masked(), nil
}

func openStore(path string) (*store.DB, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	return store.Open(path, 2*time.Second)
}

func runDaemon(ctx context.Context, cfg Config, o daemonOpts) error {
	log := newLogger(os.Stderr, os.Getenv("JOURNAL_STREAM") != "")
	db, err := openStore(cfg.State.DB)
	if errors.Is(err, store.ErrCorrupt) {
		// A distinct status (EX_CONFIG) so that the unit does not restart
		// into the same error: RestartPreventExitStatus=78.
		return &exitError{78, err}
	}
	if err != nil {
		return err
	}
	defer db.Close()

	var fw engine.Firewall = logFirewall{log}
	var nft *ban.NFTSet
	if cfg.Firewall.Backend == "nftables" {
		nft, err = ban.NewNFTSet(nftConfig(cfg))
		if err != nil {
			return err
		}
		defer nft.Close()
		if err := nft.Ensure(); err != nil {
			return err
		}
		fw = nft
	}
	warn := func(msg string) { log.Warn(msg) }
	warnSecrets(o.config, cfg, warn)
	chans, err := cfg.Alerts.channels()
	if err != nil {
		return &exitError{2, fmt.Errorf("alerts: %w", err)}
	}
	worker := alert.NewWorker(cfg.Alerts.workerConfig(), db, chans, nil, log)
	met := newMetrics()
	worker.OnResult = func(channel, result string) { met.deliveries.WithLabelValues(channel, result).Inc() }
	g := &guard{db: db, config: cfg.allowPrefixes(ctx, warn), started: time.Now(), events: map[string]int64{}, metrics: met}
	allow, err := g.allowlist()
	if err != nil {
		return err
	}
	g.eng = engine.New(engineConfig(cfg, worker.Wake), db, fw, allow, nil, log)
	n, err := g.eng.Restore()
	if err != nil {
		return err
	}
	log.Info("started", "table", "inet "+cfg.Firewall.Table, "restored_bans", n, "firewall", cfg.Firewall.Backend)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := control.Serve(ctx, cfg.State.Socket, g); err != nil {
			log.Error("control socket", "err", err)
		}
	}()

	src := newSource(cfg.Log, db, g, log)
	wg.Add(1)
	go func() {
		defer wg.Done()
		src.maintain(ctx, nft)
	}()
	if cfg.Metrics.Listen != "" {
		met.reg.MustRegister(daemonCollector{src: src, g: g})
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := met.serve(ctx, cfg.Metrics.Listen, log); err != nil {
				log.Error("metrics listener", "err", err)
			}
		}()
	}
	// The worker runs without channels too, so that a reload can add one.
	var alertsCfg atomic.Pointer[AlertsConfig]
	alertsCfg.Store(&cfg.Alerts)
	if len(chans) > 0 {
		log.Info("alerts", "channels", channelNames(chans))
	}
	wg.Add(2)
	go func() {
		defer wg.Done()
		worker.Run(ctx)
	}()
	go func() {
		defer wg.Done()
		dailyReports(ctx, db, alertsCfg.Load, worker, log)
	}()
	// READY=1 once the source has fixed where it reads from: a line
	// appended after `systemctl start` returns is not missed.
	src.ready = func() { sdaemon.SdNotify(false, sdaemon.SdNotifyReady) }

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				// Detection, ban policy, allowlist and alerts change in
				// place, keeping counters, bans and the outbox (channels
				// are rebuilt, so a rotated secret file is read again);
				// the log source, firewall and state settings take
				// effect at the next start.
				if c, err := effectiveConfigAgain(o); err != nil {
					log.Error("reload: configuration not changed", "err", err)
				} else {
					ec := engineConfig(c, worker.Wake)
					if nc, err := c.Alerts.channels(); err != nil {
						log.Error("reload: alert channels and settings not changed", "err", err)
						ec.Alerts = onlyChannels(ec.Alerts, chans)
					} else {
						chans = nc
						worker.Reconfigure(c.Alerts.workerConfig(), chans)
						alertsCfg.Store(&c.Alerts)
						log.Info("reloaded alerts", "channels", channelNames(chans))
					}
					if !g.eng.Reconfigure(ec) {
						log.Warn("reload: the new threshold needs more remembered attempts than this run allocated; it takes full effect at the next start")
					}
					if c.Log != cfg.Log || c.Firewall != cfg.Firewall || c.State != cfg.State || c.Metrics != cfg.Metrics {
						log.Warn("reload: [log], [firewall], [state] and [metrics] changes take effect at the next start")
					}
					g.mu.Lock()
					g.config = c.allowPrefixes(ctx, warn)
					g.mu.Unlock()
				}
				if a, err := g.allowlist(); err != nil {
					log.Error("reload", "err", err)
				} else if err := g.eng.SetAllowlist(a); err != nil {
					log.Error("reload", "err", err)
				} else {
					log.Info("reloaded allowlist", "entries", len(a.Prefixes()))
				}
			}
		}
	}()

	err = src.run(ctx)
	cancel()
	wg.Wait()
	src.savePosition()
	if err := g.eng.FlushCounts(); err != nil {
		log.Error("save counts", "err", err)
	}
	sdaemon.SdNotify(false, sdaemon.SdNotifyStopping)
	if errors.Is(err, context.Canceled) {
		log.Info("stopped")
		return nil
	}
	return err
}

// nftConfig is the firewall part of cfg, with the prefix lengths bans are
// made by (the kernel sets are laid out for them).
func nftConfig(cfg Config) ban.NFTConfig {
	f := cfg.Firewall
	return ban.NFTConfig{Table: f.Table, Priority: f.Priority, Forward: f.Forward, CutConnections: f.CutConnections,
		IPv4Bits: cfg.Detection.IPv4Prefix, IPv6Bits: cfg.Detection.IPv6Prefix}
}

// channelNames lists the channels' names.
func channelNames(chans []alert.Channel) []string {
	names := make([]string, len(chans))
	for i, c := range chans {
		names[i] = c.Name()
	}
	return names
}

// source feeds the log into the engine and keeps its read position.
type source struct {
	o     LogConfig
	db    *store.DB
	g     *guard
	log   *slog.Logger
	ready func() // called once the starting point is fixed

	mu       sync.Mutex // guards scan, pos, cursor, lines, last
	scan     detect.Scanner
	name     string
	pos      detect.Position
	cursor   string
	lines    int64
	last     time.Time // last line
	posDirty bool
}

func newSource(o LogConfig, db *store.DB, g *guard, log *slog.Logger) *source {
	s := &source{o: o, db: db, g: g, log: log}
	s.scan.Header.Now = time.Now
	if !o.Journal && o.File == "" {
		for _, f := range []string{"/var/log/auth.log", "/var/log/secure"} {
			if _, err := os.Stat(f); err == nil {
				s.o.File = f
				break
			}
		}
	}
	s.name = s.o.File
	if s.o.Journal || s.name == "" {
		s.o.Journal, s.name = true, "journald"
	}
	return s
}

func (s *source) run(ctx context.Context) error {
	ready := func() {
		s.log.Info("reading", "source", s.name)
		if s.ready != nil {
			s.ready()
		}
	}
	if s.o.Journal {
		j := &detect.Journal{Warn: s.warn, MachineID: machineID(), Ready: ready}
		if err := s.db.Position("journald", &j.Cursor); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		return j.Run(ctx, func(line, cursor string) {
			s.line(line, func() { s.cursor = cursor })
		})
	}
	ft := &detect.FileTail{Path: s.name, FromStart: s.o.FromStart, Warn: s.warn, Ready: ready}
	if err := s.db.Position(s.name, &ft.Start); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	return ft.Run(ctx, func(line string, pos detect.Position) {
		s.line(line, func() { s.pos = pos })
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

func (s *source) warn(msg string) { s.log.Warn(msg, "source", s.name) }

// line scans one line and hands its records to the engine.
func (s *source) line(text string, setPos func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lines++
	s.last = time.Now()
	s.scan.Line(s.name, s.lines, text, s.handle)
	setPos()
	s.posDirty = true
}

func (s *source) handle(r *detect.Record) {
	s.g.mu.Lock()
	s.g.events[r.Kind.String()]++
	s.g.mu.Unlock()
	b, err := s.g.eng.Handle(r)
	if err != nil {
		s.log.Error("handle event", "err", err)
	}
	if b != nil && s.g.metrics != nil {
		s.g.metrics.bans.WithLabelValues("detected").Inc()
	}
}

// maintain runs the periodic duties: save the position, flush records held
// for an address on an idle log, ping the systemd watchdog, and restore
// the table if someone deleted it (every 2 s: a missing table is noticed
// within 5 s).
func (s *source) maintain(ctx context.Context, nft *ban.NFTSet) {
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	watchdog, _ := sdaemon.SdWatchdogEnabled(false)
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		s.savePosition()
		if err := s.g.eng.FlushCounts(); err != nil {
			s.log.Error("save counts", "err", err)
		}
		s.mu.Lock()
		if s.scan.Corr.Pending() > 0 && time.Since(s.last) > 2*time.Second {
			s.scan.Flush(s.handle)
		}
		s.g.mu.Lock()
		s.g.sources = []control.SourceStatus{{Name: s.name, Position: s.positionText(), Lines: s.lines}}
		s.g.mu.Unlock()
		s.mu.Unlock()
		if nft != nil {
			if ok, err := nft.Exists(); err != nil {
				s.log.Error("check table", "err", err)
			} else if !ok {
				s.log.Warn("nftables table missing (flushed or deleted?); restoring it and every active ban")
				if err := nft.Ensure(); err != nil {
					s.log.Error("restore table", "err", err)
				} else if n, err := s.g.eng.Restore(); err != nil {
					s.log.Error("restore bans", "err", err)
				} else {
					s.log.Info("table restored", "bans", n)
				}
			}
		}
		if watchdog > 0 {
			sdaemon.SdNotify(false, sdaemon.SdNotifyWatchdog)
		}
	}
}

func (s *source) positionText() string {
	if s.o.Journal {
		return s.cursor
	}
	return fmt.Sprintf("inode %d offset %d", s.pos.Ino, s.pos.Offset)
}

// savePosition stores the read position if it moved.
func (s *source) savePosition() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.posDirty {
		return
	}
	var err error
	if s.o.Journal {
		err = s.db.SavePosition("journald", s.cursor)
	} else {
		err = s.db.SavePosition(s.name, s.pos)
	}
	if err != nil {
		s.log.Error("save position", "err", err)
		return
	}
	s.posDirty = false
}
