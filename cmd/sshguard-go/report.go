package main

import (
	"bufio"
	"time"

	"github.com/spf13/cobra"

	"sshguard-go/internal/report"
)

func newReportCmd() *cobra.Command {
	var (
		asJSON bool
		top    int
		since  time.Duration
	)
	cmd := &cobra.Command{
		Use:   "report [--json] [--top N] [--since DURATION] [FILE|-]...",
		Short: "Summarise failed attempts, probes and logins per client address",
		Long: `report reads log files like scan and prints one line per client address:
counted failed attempts (each guess once, however many lines it wrote),
counted probes, successful logins, the users tried, and first and last seen.
Addresses are sorted by failed attempts, then probes.`,
		Example: `  sshguard-go report --top 20 /var/log/auth.log*
  sshguard-go report --since 24h --json /var/log/auth.log | jq 'to_entries[0]'`,
		RunE: func(cmd *cobra.Command, args []string) error {
			var sum report.Summary
			if since > 0 {
				sum.Since = time.Now().Add(-since)
			}
			err := scanInputs(args, cmd.InOrStdin(), cmd.ErrOrStderr(), sum.Add, nil)
			list := sum.Sorted()
			if top > 0 && len(list) > top {
				list = list[:top]
			}
			w := bufio.NewWriter(cmd.OutOrStdout())
			if asJSON {
				report.WriteJSON(w, list)
			} else {
				report.WriteText(w, list)
			}
			if ferr := w.Flush(); ferr != nil && err == nil {
				err = ferr
			}
			return err
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON object keyed by address")
	cmd.Flags().IntVar(&top, "top", 0, "show only the first N addresses")
	cmd.Flags().DurationVar(&since, "since", 0, "only count events newer than this (e.g. 24h)")
	return cmd
}
