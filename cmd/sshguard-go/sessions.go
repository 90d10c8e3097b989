package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"sshguard-go/internal/config"
	"sshguard-go/internal/control"
	"sshguard-go/internal/detect"
	"sshguard-go/internal/session"
)

func newSessionsCmd() *cobra.Command {
	var (
		o        daemonOpts
		f        session.Filter
		since    config.Duration
		asJSON   bool
		asCSV    bool
		audit    []string
		endpoint string
	)
	cmd := &cobra.Command{
		Use:   "sessions [--json|--csv] [--user U] [--ip A] [--since D] [--active] [FILE|s3://...]... [--audit AUDIT_LOG]...",
		Short: "The audit trail: every SSH session, its transfers and commands",
		Long: `sessions lists SSH sessions: who logged in, from where (address and port),
how (method and key), from when to when, how the session ended (logout,
disconnect, timeout, killed, daemon_restart, unknown), the files it
transferred by sftp or scp and, when auditd logs execve, the commands it
ran. Without files it asks the running daemon (or reads the state database
when none runs); --active shows who is logged in now. With files it builds
the same from sshd's logs read offline, and from auditd's logs given with
--audit.`,
		Example: `  sudo sshguard-go sessions --active
  sudo sshguard-go sessions --user alice --since 7d
  sudo sshguard-go sessions --json | jq '.[] | select(.transfers | length > 0)'
  sshguard-go sessions --csv /var/log/auth.log* --audit /var/log/audit/audit.log`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.IP != "" {
				a, err := netip.ParseAddr(f.IP)
				if err != nil {
					return &exitError{2, fmt.Errorf("--ip %s: not an IP address", safe(f.IP))}
				}
				f.IP = a.Unmap().String() // as sessions record it
			}
			if since > 0 {
				f.Since = time.Now().Add(-time.Duration(since))
			}
			var list []*session.Session
			var readErr error // inputs not read completely: the rest is printed, exit 1
			switch {
			case len(args) > 0:
				o := session.NewOffline()
				if err := o.ReadAudit(audit, cmd.InOrStdin()); err != nil {
					return err
				}
				in, err := inputs(cmd, args, 1, endpoint, time.Time{})
				if err != nil {
					return err
				}
				readErr = scanInputs(cmd, in, func(int) func(*detect.Record) { return o.Record }, nil)
				list = o.Sessions()
			case len(audit) > 0:
				return &exitError{2, errors.New("--audit goes with sshd's log files")}
			default:
				var err error
				if list, err = storedSessions(cmd, &o, f); err != nil {
					return err
				}
			}
			list = slices.DeleteFunc(list, func(s *session.Session) bool { return !f.Keep(s) })
			out := cmd.OutOrStdout()
			switch {
			case asJSON:
				session.WriteJSON(out, list)
			case asCSV:
				session.WriteCSV(out, list, time.Now())
			default:
				session.WriteText(out, list, time.Now())
			}
			return readErr
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.User, "user", "", "only this user's sessions")
	fl.StringVar(&f.IP, "ip", "", "only sessions from this address")
	fl.Var(&since, "since", "only sessions that started this long ago or later (e.g. 24h, 7d)")
	fl.BoolVar(&f.Active, "active", false, "only the sessions open now: who is logged in")
	fl.BoolVar(&asJSON, "json", false, "print JSON")
	fl.BoolVar(&asCSV, "csv", false, "print CSV")
	fl.StringArrayVar(&audit, "audit", nil, "auditd's log, for the commands (with files; repeat for rotated ones, oldest first)")
	fl.StringVar(&endpoint, "s3-endpoint", "", "S3-compatible store for s3:// inputs")
	cmd.MarkFlagsMutuallyExclusive("json", "csv")
	addAdminFlags(cmd, &o)
	return cmd
}

// storedSessions asks the daemon (or the database) for the sessions f
// selects (session.Fetch).
func storedSessions(cmd *cobra.Command, o *daemonOpts, f session.Filter) (list []*session.Session, err error) {
	err = withReader(o, func(ctx context.Context, b control.Backend, _ io.Writer, _ []string) error {
		list, err = session.Fetch(ctx, b, f)
		return err
	})(cmd, nil)
	return list, err
}

func newHistoryCmd() *cobra.Command {
	var o daemonOpts
	var asJSON bool
	cmd := readCmd("history USER [--json]", "A user's logins, sources, methods, failed attempts and transfers",
		"  sudo sshguard-go history alice\n  sudo sshguard-go history alice --json | jq .sources", cobra.ExactArgs(1), &o,
		func(ctx context.Context, b control.Backend, out io.Writer, args []string) error {
			h, err := b.History(ctx, args[0])
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(out, h)
			}
			session.WriteHistory(out, h)
			return nil
		})
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
