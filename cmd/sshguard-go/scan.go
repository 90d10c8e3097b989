package main

import (
	"bufio"
	"cmp"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"sshguard-go/internal/config"
	"sshguard-go/internal/detect"
	"sshguard-go/internal/report"
	"sshguard-go/internal/source"
)

func newScanCmd() *cobra.Command {
	var asJSON, unrec bool
	var jobs int
	var endpoint string
	var since, until time.Duration
	cmd := &cobra.Command{
		Use:   "scan [--json] [--since DURATION] [--until DURATION] [-j N] [FILE|-|s3://BUCKET/PREFIX]...",
		Short: "List the sshd events in log files",
		Long: `scan reads log files (plain or compressed, - for standard input, the default;
s3://BUCKET/PREFIX for every object under it) in any supported format and
prints one line per recognised sshd event, in input order; with --since and
--until only the events in that span of time.

With --json each line is a JSON object with the fields file, line, time,
host, program, pid, kind, reason, ip, port, user, and counted (the failed
attempts or probes of its connection the line counts: 1, or N for rsyslog's
"message repeated N times", 0 when another line counted them).

With --unrecognised it prints instead every line that names sshd (or
sshd-session, sshd-auth) yet gave no event, as FILE:LINE: REASON: TEXT, the
reason being unknown_shape (a message the classifier does not know) or
unknown_header (sshd's tag where no known header puts it): what to report.`,
		Example: `  sshguard-go scan /var/log/auth.log
  sshguard-go scan --json /var/log/auth.log.2.gz | jq 'select(.kind=="success")'
  journalctl -u ssh -o json | sshguard-go scan --json -
  sshguard-go scan --unrecognised /var/log/auth.log`,
		RunE: func(cmd *cobra.Command, args []string) error {
			w := bufio.NewWriterSize(cmd.OutOrStdout(), 256<<10)
			if err := report.CheckFlags(0, since, until, jobs, 0); err != nil {
				return &exitError{2, err}
			}
			win := report.Back(time.Now(), since, until)
			format := win.Lines(asJSON)
			in, err := inputs(cmd, args, jobs, endpoint, win.Since)
			if err != nil {
				return err
			}
			if unrec {
				in.Jobs = 1 // the lines in input order
				in.Unrecognised = func(source string, n int64, text, reason string) {
					q := strconv.QuoteToGraphic(text) // control characters escaped, as sshd does
					fmt.Fprintf(w, "%s:%d: %s: %s\n", safe(source), n, reason, q[1:len(q)-1])
				}
			}
			if in.Jobs <= 1 {
				var buf []byte
				var enc detect.Encoder
				err = scanInputs(cmd, in, func(int) func(*detect.Record) {
					if unrec {
						return func(*detect.Record) {}
					}
					return func(r *detect.Record) { buf = format(buf[:0], &enc, r); w.Write(buf) }
				}, nil)
			} else {
				res, serr := in.ScanOrdered(w, format)
				err = cmp.Or(serr, inputErrors(cmd, in, res))
			}
			if ferr := w.Flush(); ferr != nil && err == nil {
				err = ferr
			}
			return err
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object per event")
	cmd.Flags().BoolVar(&unrec, "unrecognised", false, "print the lines that name sshd and gave no event, with the reason")
	addInputFlags(cmd, &jobs, &endpoint)
	addWindowFlags(cmd, &since, &until)
	return cmd
}

// addJobsFlag adds -j.
func addJobsFlag(cmd *cobra.Command, jobs *int) {
	cmd.Flags().IntVarP(jobs, "jobs", "j", runtime.NumCPU(), "inputs read at once, each on its own (1: one after the other, a connection split across two files joined)")
}

// addInputFlags adds -j, --s3-endpoint and --nice.
func addInputFlags(cmd *cobra.Command, jobs *int, endpoint *string) {
	addJobsFlag(cmd, jobs)
	cmd.Flags().StringVar(endpoint, "s3-endpoint", "", "S3-compatible store for s3:// inputs (default: AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, else AWS)")
	cmd.Flags().IntVar(&niceness, "nice", report.DefaultNice, "CPU priority lowered by this much while reading (0-19; 0: unchanged), so that the daemon's bans never wait for this command")
}

// niceness is --nice of the one command a run executes.
var niceness = report.DefaultNice

// addWindowFlags adds --since and --until.
func addWindowFlags(cmd *cobra.Command, since, until *time.Duration) {
	cmd.Flags().Var(config.NewDurationFlag(since, 0, config.Range{}), "since", "only events newer than this (e.g. 24h, 7d); older archives in S3 are not fetched")
	cmd.Flags().Var(config.NewDurationFlag(until, 0, config.Range{}), "until", "only events older than this (e.g. 1h: up to an hour ago)")
}

// inputs resolves what scan and report read (report.Open), with its
// exit status: 2 when the S3 client cannot be set up, 1 when listing fails.
func inputs(cmd *cobra.Command, args []string, jobs int, endpoint string, since time.Time) (report.Inputs, error) {
	if err := report.LowerPriority(niceness); err != nil {
		return report.Inputs{}, &exitError{2, err}
	}
	in, err := report.Open(cmd.Context(), args, cmd.InOrStdin(), jobs, endpoint, since)
	var setup *report.SetupError
	switch {
	case errors.As(err, &setup):
		return in, &exitError{2, err}
	case err != nil:
		return in, &exitError{1, err}
	}
	return in, nil
}

// scanInputs reads in (see report.Inputs.Scan), with a progress line on
// a terminal when one input is read at a time. An input that cannot be
// read is reported and skipped; the others are still read, and the error
// is returned at the end (exit status 1).
func scanInputs(cmd *cobra.Command, in report.Inputs, emitFor func(int) func(*detect.Record), done func(int)) error {
	prog := report.StartProgress(cmd.ErrOrStderr())
	defer prog.Stop()
	in.Wrap = prog.Wrap
	return inputErrors(cmd, in, in.Scan(emitFor, done))
}

// inputErrors reports what reading the inputs met, and returns an error
// (exit status 1) when an input could not be read completely.
func inputErrors(cmd *cobra.Command, in report.Inputs, res report.Result) error {
	stderr := cmd.ErrOrStderr()
	for _, e := range res.Errors {
		fmt.Fprintf(stderr, "sshguard-go: %s\n", safe(e)) // an S3 server's words, an object's name
	}
	if res.Overlong > 0 {
		fmt.Fprintf(stderr, "sshguard-go: skipped %d lines longer than %d bytes\n", res.Overlong, source.MaxLine)
	}
	if res.Failed > 0 {
		return &exitError{1, fmt.Errorf("%d of %d inputs could not be read completely", res.Failed, len(in.Names))}
	}
	return nil
}
