package main

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"sshguard-go/internal/config"
	"sshguard-go/internal/control"
	"sshguard-go/internal/daemon"
	"sshguard-go/internal/store"
)

// daemonOpts are the command-line settings of run and of the commands
// that manage the daemon; set ones override the configuration file.
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
	def := config.Default()
	cmd.Flags().StringVar(&o.db, "db", def.State.DB, "state database")
	cmd.Flags().StringVar(&o.socket, "socket", control.DefaultSocket, "control socket")
	cmd.Flags().StringVar(&o.table, "table", def.Firewall.Table, "nftables table (family inet)")
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
cleanly. Before it starts, it checks the configuration and the log source as
check-config does. With -t it only checks them and prints the effective
configuration.`,
		Example: `  sudo sshguard-go run
  sudo sshguard-go run --dry-run --log /var/log/auth.log
  sudo sshguard-go run -t --config ./sshguard-go.toml`,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := runConfig(cmd, &o)
			if err == nil {
				err = cfg.Check()
			}
			if err == nil {
				_, err = daemon.CheckSource(cmd.Context(), cfg)
				err = cfg.Locate(err)
			}
			if err != nil {
				return &exitError{2, err}
			}
			if o.test {
				warn(cmd, cfg.Warnings())
				return cfg.Print(cmd.OutOrStdout())
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			// On SIGHUP the file is read again; of the flags only --allow
			// still adds to it (Overrides.Reload).
			reload := o.runOverrides(cmd).Reload()
			return runDaemon(ctx, cfg, func() (*config.Config, error) { return config.LoadWith(o.config, false, reload) })
		},
	}
	addStateFlags(cmd, &o)
	f := cmd.Flags()
	f.StringVarP(&o.config, "config", "c", config.DefaultPath, "configuration file (missing default file: built-in defaults)")
	f.StringVar(&o.logFile, "log", "", "log file to follow (default: /var/log/auth.log or /var/log/secure, else journald)")
	f.BoolVar(&o.journal, "journal", false, "read journald even if a log file exists")
	f.BoolVar(&o.fromStart, "from-start", false, "on first start, read the log file from its beginning instead of its end")
	f.IntVar(&o.priority, "priority", -10, "priority of the input hook")
	f.BoolVar(&o.forward, "forward", false, "also drop banned sources in the forward hook (containers, VMs)")
	f.BoolVar(&o.cut, "cut-connections", false, "end established connections of a newly banned source (conntrack)")
	f.BoolVar(&o.dryRun, "dry-run", false, "log what would be banned; change no firewall")
	f.StringSliceVar(&o.allow, "allow", nil, "address or prefix never to ban (repeatable; loopback always)")
	f.BoolVarP(&o.test, "test", "t", false, "check the configuration (file and flags) and the log source, print the configuration with secrets masked, and exit")
	f.Float64Var(&o.threshold, "threshold", 5, "weighted attempts that ban")
	f.Var(config.NewDurationFlag(&o.window, 10*time.Minute, config.KeyRange("detection.window")), "window",
		"sliding window for the threshold, 1s to 30d")
	f.Var(config.NewDurationFlag(&o.banTime, time.Hour, config.KeyRange("ban.ban_time")), "ban-time",
		"first ban's length, at least 1s (doubles for repeat offenders, up to a week)")
	return cmd
}

// runConfig loads the configuration file and applies the flags that were
// given on the command line; the caller checks the result (Config.Check).
func runConfig(cmd *cobra.Command, o *daemonOpts) (*config.Config, error) {
	return config.LoadWith(o.config, cmd.Flags().Changed("config"), o.runOverrides(cmd))
}

// stateOverrides are the state flags (--db, --socket, --table) given on
// cmd's command line.
func (o *daemonOpts) stateOverrides(cmd *cobra.Command) config.Overrides {
	f := cmd.Flags()
	return config.Overrides{DB: given(f, "db", o.db), Socket: given(f, "socket", o.socket), Table: given(f, "table", o.table)}
}

// runOverrides are run's flags given on cmd's command line.
func (o *daemonOpts) runOverrides(cmd *cobra.Command) config.Overrides {
	f := cmd.Flags()
	ov := o.stateOverrides(cmd)
	ov.LogFile = given(f, "log", o.logFile)
	ov.Journal = given(f, "journal", o.journal)
	ov.FromStart = given(f, "from-start", o.fromStart)
	ov.Priority = given(f, "priority", o.priority)
	ov.Forward = given(f, "forward", o.forward)
	ov.CutConnections = given(f, "cut-connections", o.cut)
	ov.Threshold = given(f, "threshold", o.threshold)
	ov.Window = given(f, "window", o.window)
	ov.BanTime = given(f, "ban-time", o.banTime)
	if f.Changed("allow") {
		ov.Allow = o.allow
	}
	ov.DryRun = o.dryRun
	return ov
}

// given is &v when the flag name was given on the command line, else nil.
func given[T any](f *pflag.FlagSet, name string, v T) *T {
	if !f.Changed(name) {
		return nil
	}
	return &v
}

// runDaemon runs the daemon until ctx ends, reloading on SIGHUP.
func runDaemon(ctx context.Context, cfg *config.Config, reload func() (*config.Config, error)) error {
	log := daemon.NewLogger(os.Stderr, os.Getenv("JOURNAL_STREAM") != "")
	daemon.SetProcessors()
	d, err := daemon.New(ctx, cfg, daemon.WithLogger(log))
	if err != nil {
		return daemonExit(err)
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go d.ReloadOn(ctx, hup, reload)
	return daemonExit(d.Run(ctx)) // the control socket's directory, the API's token
}

// daemonExit is the daemon's error err as run returns it. A damaged
// database, found at the start or by a later read, has a distinct status
// (EX_CONFIG) so that the unit does not restart into the same error:
// RestartPreventExitStatus=78.
func daemonExit(err error) error {
	if errors.Is(err, store.ErrCorrupt) {
		return &exitError{78, err}
	}
	return daemon.RootHint(err)
}
