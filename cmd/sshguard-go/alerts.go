package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"sshguard-go/internal/alert"
	"sshguard-go/internal/control"
	"sshguard-go/internal/store"
)

// warnSecrets warns when the configuration file holds secrets and others
// than its owner may read it.
func warnSecrets(path string, cfg Config, warn func(string)) {
	st, err := os.Stat(path)
	if err != nil || !cfg.Alerts.hasSecrets() {
		return
	}
	if st.Mode().Perm()&0o044 != 0 {
		warn(fmt.Sprintf("%s holds secrets and is readable by others (mode %04o): chmod 600 it, or use the *_file keys (systemd LoadCredential=)",
			path, st.Mode().Perm()))
	}
}

// Alerts lists the newest alerts from the outbox.
func (g *guard) Alerts(pending bool, limit int) ([]control.AlertInfo, error) {
	var out []control.AlertInfo
	err := g.db.Alerts(0, func(id uint64, data []byte, isPending bool) bool {
		if pending && !isPending {
			return true
		}
		m, err := alert.Unmarshal(data)
		if err != nil {
			out = append(out, control.AlertInfo{ID: id, Kind: "unreadable", Subject: err.Error(), Pending: isPending})
			return limit <= 0 || len(out) < limit
		}
		ai := control.AlertInfo{ID: id, Time: m.Time, Kind: string(m.Kind), Severity: m.Severity.String(),
			Subject: alert.Render(m, "").Subject, Pending: isPending, Deliveries: map[string]control.DeliveryInfo{}}
		for name, d := range m.Deliveries {
			ai.Deliveries[name] = control.DeliveryInfo{State: string(d.State), Attempts: d.Attempts, Sent: d.Sent,
				Next: d.Next, Digest: d.Digest, Error: d.Error, Done: d.Done}
		}
		out = append(out, ai)
		return limit <= 0 || len(out) < limit
	})
	return out, err
}

// dailyReports writes the daily report into the outbox once a day, at
// the configured hour in the configured time zone (if enabled), and
// keeps the alert history bounded.
// conf gives the current settings (a reload changes them).
func dailyReports(ctx context.Context, db *store.DB, conf func() *AlertsConfig, w *alert.Worker, log *slog.Logger) {
	tick := time.NewTicker(time.Minute)
	defer tick.Stop()
	for {
		cfg := *conf()
		loc, _ := time.LoadLocation(zoneName(cfg.Timezone))
		if n, err := db.PruneAlerts(cfg.History); err != nil {
			log.Error("prune alert history", "err", err)
		} else if n > 0 {
			log.Info("pruned alert history", "deleted", n)
		}
		if cfg.DailyReport {
			if err := reportIfDue(db, cfg, w, time.Now().In(loc)); err != nil {
				log.Error("daily report", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// reportIfDue enqueues the report of the 24 hours before now if now is
// past the report hour and today's report was not made yet.
func reportIfDue(db *store.DB, cfg AlertsConfig, w *alert.Worker, now time.Time) error {
	day := now.Format(time.DateOnly)
	var last string
	if err := db.Position("daily-report", &last); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if now.Hour() < cfg.ReportHour || last == day {
		return nil
	}
	r, err := buildReport(db, now.Add(-24*time.Hour), now)
	if err != nil {
		return err
	}
	if m := cfg.policy().ReportMessage(r, now); m != nil {
		if _, err := w.Enqueue(m); err != nil {
			return err
		}
	}
	return db.SavePosition("daily-report", day)
}

// buildReport summarises [from, to) from the store.
func buildReport(db *store.DB, from, to time.Time) (alert.Report, error) {
	r := alert.Report{From: from, To: to}
	counts, err := db.CountsBetween(from.Truncate(time.Hour), to)
	if err != nil {
		return r, err
	}
	r.Kinds = counts.Kinds
	r.TopAddrs = top(counts.Addrs, 10)
	users := map[string]float64{}
	for u, n := range counts.Users {
		users[u] = float64(n)
	}
	r.TopUsers = top(users, 10)
	bans, err := db.History(from)
	if err != nil {
		return r, err
	}
	for _, b := range bans {
		if !b.Start.Before(to) {
			continue
		}
		r.BanCount++
		if len(r.Bans) < alert.MaxReportBans {
			var d time.Duration
			if !b.Expires.IsZero() {
				d = b.Expires.Sub(b.Start).Round(time.Second)
			}
			r.Bans = append(r.Bans, alert.Ban{Prefix: b.Prefix, Attempts: b.Attempts, Users: b.Users, Duration: d, Nth: b.Count, Reason: b.Reason})
		}
	}
	logins, err := db.Logins(from)
	for _, l := range logins {
		if l.Time.Before(to) {
			r.Logins = append(r.Logins, alert.Login{Time: l.Time, User: l.User, Addr: l.Addr, Method: l.Method, Key: l.Key})
		}
	}
	return r, err
}

func top(m map[string]float64, n int) []alert.Count {
	keys := slices.SortedFunc(maps.Keys(m), func(a, b string) int { return cmp.Or(cmp.Compare(m[b], m[a]), strings.Compare(a, b)) })
	var out []alert.Count
	for _, k := range keys[:min(n, len(keys))] {
		out = append(out, alert.Count{Key: k, N: m[k]})
	}
	return out
}

func newAlertsCmd() *cobra.Command {
	var o daemonOpts
	var asJSON, pending bool
	var limit int
	cmd := &cobra.Command{
		Use:   "alerts [--json] [--pending] [--limit N]",
		Short: "List recent alerts and their delivery state per channel",
		Long: `alerts lists the newest alerts (bans, logins, reports) and, per channel, whether
each was sent, is waiting for a retry (with the last error), failed for good or
expired. It asks the running daemon, or reads the database when none runs.`,
		Example: `  sshguard-go alerts
  sshguard-go alerts --pending
  sshguard-go alerts --json --limit 5 | jq '.[] | {subject, deliveries}'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := adminConfig(cmd, &o)
			if err != nil {
				return err
			}
			// The daemon's list, or the database's: no kernel set needed.
			var b control.Backend
			if c, err := control.Dial(cfg.State.Socket); err == nil {
				b = c
			} else {
				db, err := openStore(cfg.State.DB)
				if err != nil {
					return err
				}
				defer db.Close()
				b = &guard{db: db}
			}
			out := cmd.OutOrStdout()
			list, err := b.Alerts(pending, limit)
			if err != nil {
				return err
			}
			return printList(out, asJSON, list, "ID\tTIME\tKIND\tSEVERITY\tDELIVERY\tSUBJECT", func(a control.AlertInfo) string {
				var ds []string
				for _, name := range slices.Sorted(maps.Keys(a.Deliveries)) {
					d := a.Deliveries[name]
					s := name + ":" + d.State
					if d.State != "sent" && d.Error != "" {
						s += fmt.Sprintf("(try %d: %s)", d.Attempts, d.Error)
					}
					ds = append(ds, s)
				}
				return fmt.Sprintf("%d\t%s\t%s\t%s\t%s\t%s", a.ID, a.Time.Local().Format(time.DateTime), a.Kind, a.Severity, strings.Join(ds, " "), a.Subject)
			})
		},
	}
	addAdminFlags(cmd, &o)
	f := cmd.Flags()
	f.BoolVar(&asJSON, "json", false, "print JSON")
	f.BoolVar(&pending, "pending", false, "only alerts a channel has still to deliver")
	f.IntVar(&limit, "limit", 50, "at most this many (0: all kept)")
	return cmd
}

func newAlertCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "alert", Short: "Work with alert channels"}
	var config, channel string
	test := &cobra.Command{
		Use:   "test [--channel email|sms|webhook]",
		Short: "Send a test message through each configured channel",
		Long: `alert test sends a test message through every channel configured in the
configuration file (or only --channel), right now and without the daemon, and
prints for each whether it was sent or the server's exact error. It exits 1 if
any channel failed.`,
		Example: `  sudo sshguard-go alert test
  sudo sshguard-go alert test --channel sms --config /etc/sshguard-go/sshguard-go.toml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := LoadConfig(config)
			if err != nil {
				return &exitError{2, err}
			}
			chans, err := cfg.Alerts.channels()
			if err != nil {
				return &exitError{2, err}
			}
			out := cmd.OutOrStdout()
			host, failed, tried := cfg.Alerts.host(), 0, 0
			for _, c := range chans {
				if channel != "" && c.Name() != channel {
					continue
				}
				tried++
				m := &alert.Message{Kind: alert.KindTest, Severity: alert.High, Time: time.Now(), Host: host,
					Text: "This is a test message from sshguard-go on " + host + ". If you read it, the " + c.Name() + " channel works."}
				ctx, cancel := context.WithTimeout(cmd.Context(), time.Minute)
				err := c.Send(ctx, alert.Render(m, fmt.Sprintf("test-%d.%s", time.Now().UnixNano(), c.Name())))
				cancel()
				if err != nil {
					failed++
					fmt.Fprintf(out, "%s: FAILED: %v\n", c.Name(), err)
				} else {
					fmt.Fprintf(out, "%s: sent\n", c.Name())
				}
			}
			if tried == 0 {
				return &exitError{2, fmt.Errorf("no alert channel %sis configured in %s", strings.TrimSpace(channel+" "), config)}
			}
			if failed > 0 {
				return &exitError{1, fmt.Errorf("%d of %d channels failed", failed, tried)}
			}
			return nil
		},
	}
	test.Flags().StringVarP(&config, "config", "c", DefaultConfig, "configuration file")
	test.Flags().StringVar(&channel, "channel", "", "only this channel: email, sms or webhook")
	cmd.AddCommand(test)
	return cmd
}
