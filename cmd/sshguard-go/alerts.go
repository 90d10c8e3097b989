package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"sshguard-go/internal/config"
	"sshguard-go/internal/control"
	"sshguard-go/internal/daemon"
)

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
		RunE: withReader(&o, func(ctx context.Context, b control.Backend, out io.Writer, _ []string) error {
			list, err := b.Alerts(ctx, pending, limit)
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
					ds = append(ds, safe(s))
				}
				return fmt.Sprintf("%d\t%s\t%s\t%s\t%s\t%s", a.ID, stamp(a.Time), safe(a.Kind), safe(a.Severity), strings.Join(ds, " "), safe(a.Subject))
			})
		}),
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
	var configPath, channel string
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
			cfg, err := config.Load(configPath, true)
			if err != nil {
				return &exitError{2, err}
			}
			results, err := daemon.SendTest(cmd.Context(), cfg, channel)
			if err != nil {
				return &exitError{2, err}
			}
			out := cmd.OutOrStdout()
			tried := len(results)
			for _, name := range slices.Sorted(maps.Keys(results)) {
				if err := results[name]; err != nil {
					fmt.Fprintf(out, "%s: FAILED: %s\n", name, safe(err.Error())) // the server's words
				} else {
					fmt.Fprintf(out, "%s: sent\n", name)
				}
			}
			if tried == 0 && channel != "" {
				return &exitError{2, fmt.Errorf("no alert channel %s is configured in %s", channel, configPath)}
			}
			if tried == 0 {
				return &exitError{2, fmt.Errorf("no alert channel is configured in %s", configPath)}
			}
			if err := daemon.SendFailures(results); err != nil {
				return &exitError{1, err}
			}
			return nil
		},
	}
	test.Flags().StringVarP(&configPath, "config", "c", config.DefaultPath, "configuration file")
	enumVar(test, &channel, "channel", "only this channel: "+strings.Join(channels, ", "), channels, nil, channelsDesc)
	cmd.AddCommand(test)
	return cmd
}
