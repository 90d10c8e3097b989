package main

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"sshguard-go/internal/alert"
	"sshguard-go/internal/config"
	"sshguard-go/internal/control"
	"sshguard-go/internal/daemon"
	"sshguard-go/internal/report"
)

func newReportCmd() *cobra.Command {
	var (
		asJSON     bool
		top, jobs  int
		since      time.Duration
		until      time.Duration
		threshold  float64
		allow      []string
		configPath string
		endpoint   string
		notify     bool
		banThem    bool
		banFor     time.Duration
		o          daemonOpts
	)
	cmd := &cobra.Command{
		Use:   "report [--json] [--top N] [--since DURATION] [--until DURATION] [--threshold N] [--allow PREFIX]... [-j N] [FILE|-|s3://BUCKET/PREFIX]...",
		Short: "Summarise failed attempts, probes and logins per client address",
		Long: `report reads log files like scan and prints one line per client address:
counted failed attempts (each guess once, however many lines it wrote),
counted probes, successful logins, the users tried, and first and last seen.
Addresses are sorted by failed attempts, then probes.

With --threshold N only addresses whose weighted attempts reach N are
listed (failed attempts and probes by the weights of the configuration,
1 and 0.5 by default); addresses on the allowlist (the configuration's
ban.allow and --allow) are left out and counted on standard error.`,
		Example: `  sshguard-go report --top 20 /var/log/auth.log*
  sshguard-go report --since 24h --json /var/log/auth.log | jq 'to_entries[0]'
  sshguard-go report --threshold 10 --allow 198.51.100.0/24 -j 4 /var/log/auth.log*
  sshguard-go report --since 24h --threshold 10 s3://logs/web-01/auth/`,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := config.Load(configPath, cmd.Flags().Changed("config"))
			if err != nil {
				return &exitError{2, err}
			}
			allowed, err := report.Allowlist(cfg.Ban.Allow, allow)
			if err != nil {
				return &exitError{2, err}
			}
			if err := report.CheckFlags(threshold, since, until, jobs, top); err != nil {
				return &exitError{2, err}
			}
			if (notify || banThem) && threshold <= 0 {
				return &exitError{2, errors.New("--notify and --ban need --threshold")}
			}
			win := report.Back(time.Now(), since, until)
			in, err := inputs(cmd, args, jobs, endpoint, win.Since)
			if err != nil {
				return err
			}
			col := report.NewCollector(win, in.Jobs, len(in.Names))
			err = scanInputs(cmd, in, col.EmitFor, col.Done)
			sel := report.Selection{Threshold: threshold, Top: top, Allowed: allowed,
				Weights: report.Weights{Failure: cfg.Detection.FailureWeight, Probe: cfg.Detection.ProbeWeight}}
			list, left := sel.Select(col.Sorted())
			if left > 0 {
				fmt.Fprintf(cmd.ErrOrStderr(), "sshguard-go: %d allowlisted addresses left out\n", left)
			}
			window := report.WindowText(since)
			if notify {
				a := alert.Archive{Window: window, Inputs: in.Names, Threshold: threshold, Offenders: report.Offenders(list, sel.Weights)}
				err = cmp.Or(err, notifyArchive(cmd, cfg, configPath, a))
			}
			if banThem {
				o.config = configPath
				err = cmp.Or(err, banArchive(cmd, &o, report.BanRequests(list, banFor, window, ownSession())))
			}
			w := bufio.NewWriter(cmd.OutOrStdout())
			if asJSON {
				report.WriteJSON(w, list)
			} else {
				report.WriteText(w, list)
			}
			return cmp.Or(err, w.Flush())
		},
	}
	f := cmd.Flags()
	f.BoolVar(&asJSON, "json", false, "print a JSON object keyed by address")
	f.IntVar(&top, "top", 0, "show only the first N addresses")
	f.Float64Var(&threshold, "threshold", 0, "only addresses whose weighted attempts reach this")
	f.StringSliceVar(&allow, "allow", nil, "leave out this address or prefix (repeatable; the configuration's ban.allow too)")
	f.StringVarP(&configPath, "config", "c", config.DefaultPath, "configuration file, for the weights and the allowlist")
	f.BoolVar(&notify, "notify", false, "send the addresses over --threshold through the configured alert channels (nothing when none)")
	f.BoolVar(&banThem, "ban", false, "ban the addresses over --threshold (through the running daemon, else as sshguard-go ban does)")
	f.Var(config.NewDurationFlag(&banFor, 0, config.Range{Min: config.Duration(time.Second)}), "for",
		"with --ban: the ban's length, at least 1s (default: the configured ban time, escalated)")
	addStateFlags(cmd, &o)
	addInputFlags(cmd, &jobs, &endpoint)
	addWindowFlags(cmd, &since, &until)
	return cmd
}

// notifyArchive sends the addresses over the threshold through the
// channels that take reports (daemon.SendArchive) and says how each went.
// With none over it, it says so and sends nothing; with no channel taking
// the message, it says what to change in the configuration (exit status 1:
// nobody was told).
func notifyArchive(cmd *cobra.Command, cfg *config.Config, configPath string, a alert.Archive) error {
	if len(a.Offenders) == 0 {
		fmt.Fprintf(cmd.ErrOrStderr(), "sshguard-go: nothing to notify: no address reached %g\n", a.Threshold)
		return nil
	}
	results, err := daemon.SendArchive(cmd.Context(), cfg, configPath, a, time.Now())
	switch {
	case errors.Is(err, daemon.ErrUnrouted):
		return &exitError{1, err}
	case err != nil:
		return &exitError{2, err}
	}
	for name, serr := range results {
		if serr != nil {
			fmt.Fprintf(cmd.ErrOrStderr(), "sshguard-go: notify %s: %s\n", name, safe(serr.Error()))
		} else {
			fmt.Fprintf(cmd.ErrOrStderr(), "sshguard-go: notified %s\n", name)
		}
	}
	if err := daemon.SendFailures(results); err != nil {
		return &exitError{1, err}
	}
	return nil
}

// banArchive asks the daemon (or the database and kernel set when none
// runs) for reqs, and says on stderr what it banned: stdout is the report.
func banArchive(cmd *cobra.Command, o *daemonOpts, reqs []control.BanRequest) error {
	return withBackend(o, func(ctx context.Context, b control.Backend, _ io.Writer, _ []string) error {
		banned, errs := control.BanAll(ctx, b, reqs)
		for _, bi := range banned {
			verb := "banned"
			if bi.DryRun {
				verb = "dry run: would ban"
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "sshguard-go: %s %s\n", verb, bi.Prefix)
		}
		for _, e := range errs {
			fmt.Fprintf(cmd.ErrOrStderr(), "sshguard-go: not banned: %s\n", safe(e.Error()))
		}
		if len(errs) > 0 {
			return &exitError{1, fmt.Errorf("%d of %d addresses not banned", len(errs), len(reqs))}
		}
		return nil
	})(cmd, nil)
}
