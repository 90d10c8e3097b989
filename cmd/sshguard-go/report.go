package main

import (
	"bufio"
	"fmt"
	"net/netip"
	"time"

	"github.com/spf13/cobra"

	"sshguard-go/internal/ban"
	"sshguard-go/internal/config"
	"sshguard-go/internal/detect"
	"sshguard-go/internal/report"
)

func newReportCmd() *cobra.Command {
	var (
		asJSON     bool
		top, jobs  int
		since      time.Duration
		threshold  float64
		allow      []string
		configPath string
		endpoint   string
	)
	cmd := &cobra.Command{
		Use:   "report [--json] [--top N] [--since DURATION] [--threshold N] [--allow PREFIX]... [-j N] [FILE|-|s3://BUCKET/PREFIX]...",
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
			var entries []netip.Prefix
			for _, a := range append(cfg.Ban.Allow, allow...) {
				p, err := config.ParsePrefix(a)
				if err != nil {
					continue // a host name: not resolved offline
				}
				entries = append(entries, p)
			}
			allowed := ban.NewAllowlist(entries...)
			var since0 time.Time
			if since > 0 {
				since0 = time.Now().Add(-since)
			}
			in, err := inputs(cmd, args, jobs, endpoint, since0)
			if err != nil {
				return err
			}
			n := 1 // one summary per input read on its own, merged below
			if in.Jobs > 1 {
				n = len(in.Names)
			}
			sums := make([]report.Summary, n)
			err = scanInputs(cmd, in, func(i int) func(*detect.Record) {
				s := &sums[min(i, len(sums)-1)]
				s.Since = since0
				return s.Add
			}, nil)
			sum := &sums[0]
			for i := 1; i < len(sums); i++ {
				sum.Merge(&sums[i])
			}
			list := sum.Sorted()
			if threshold > 0 || len(entries) > 0 {
				kept, left := list[:0], 0
				for _, c := range list {
					if a, err := netip.ParseAddr(c.Client); err == nil && allowed.Covers(netip.PrefixFrom(a.WithZone(""), a.BitLen())) {
						left++
						continue
					}
					if float64(c.Failed)*cfg.Detection.FailureWeight+float64(c.Probes)*cfg.Detection.ProbeWeight >= threshold {
						kept = append(kept, c)
					}
				}
				list = kept
				if left > 0 {
					fmt.Fprintf(cmd.ErrOrStderr(), "sshguard-go: %d allowlisted addresses left out\n", left)
				}
			}
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
	f := cmd.Flags()
	f.BoolVar(&asJSON, "json", false, "print a JSON object keyed by address")
	f.IntVar(&top, "top", 0, "show only the first N addresses")
	f.DurationVar(&since, "since", 0, "only count events newer than this (e.g. 24h)")
	f.Float64Var(&threshold, "threshold", 0, "only addresses whose weighted attempts reach this")
	f.StringSliceVar(&allow, "allow", nil, "leave out this address or prefix (repeatable; the configuration's ban.allow too)")
	f.StringVarP(&configPath, "config", "c", config.DefaultPath, "configuration file, for the weights and the allowlist")
	addInputFlags(cmd, &jobs, &endpoint)
	return cmd
}
