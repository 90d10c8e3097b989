package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"sshguard-go/internal/config"
	"sshguard-go/internal/control"
	"sshguard-go/internal/daemon"
)

// printList writes list as a JSON array ([] when empty), or as a table:
// header, then row(item) for each item, columns separated by tabs.
func printList[T any](out io.Writer, asJSON bool, list []T, header string, row func(T) string) error {
	if asJSON {
		if list == nil {
			list = []T{}
		}
		return json.NewEncoder(out).Encode(list)
	}
	tw := tabwriter.NewWriter(out, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	for _, x := range list {
		fmt.Fprintln(tw, row(x))
	}
	return tw.Flush()
}

// adminConfig loads the configuration file (if there is one, or if
// --config was given) and takes the database, socket and table from it
// where no flag was given: the commands then find what the daemon uses.
func adminConfig(cmd *cobra.Command, o *daemonOpts) (*config.Config, error) {
	cfg, err := config.Load(o.config, cmd.Flags().Changed("config"))
	if err != nil {
		return nil, &exitError{2, err}
	}
	set := cmd.Flags().Changed
	if set("db") {
		cfg.State.DB = o.db
	}
	if set("socket") {
		cfg.State.Socket = o.socket
	}
	if set("table") {
		cfg.Firewall.Table = o.table
	}
	return cfg, nil
}

// withBackend wraps a command body that needs a backend.
func withBackend(o *daemonOpts, f func(b control.Backend, out io.Writer, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		cfg, err := adminConfig(cmd, o)
		if err != nil {
			return err
		}
		b, done, err := daemon.Connect(cmd.Context(), cfg, func(msg string) { fmt.Fprintln(cmd.ErrOrStderr(), "warning:", msg) })
		if err != nil {
			return err
		}
		defer done()
		return f(b, cmd.OutOrStdout(), args)
	}
}

func adminCmd(use, short, example string, args cobra.PositionalArgs, o *daemonOpts, f func(control.Backend, io.Writer, []string) error) *cobra.Command {
	cmd := &cobra.Command{Use: use, Short: short, Example: example, Args: args, RunE: withBackend(o, f)}
	addAdminFlags(cmd, o)
	return cmd
}

// addAdminFlags adds --config and the state flags, which override it.
func addAdminFlags(cmd *cobra.Command, o *daemonOpts) {
	addStateFlags(cmd, o)
	cmd.Flags().StringVarP(&o.config, "config", "c", config.DefaultPath, "configuration file, for the database, socket, table and allowlist")
}

func newListCmd() *cobra.Command {
	var o daemonOpts
	var asJSON bool
	var origin string
	cmd := adminCmd("list [--json] [--origin detected|admin|archive|fleet]", "List active bans",
		"  sshguard-go list\n  sshguard-go list --json | jq '.[].prefix'\n  sshguard-go list --origin fleet", cobra.NoArgs, &o,
		func(b control.Backend, out io.Writer, _ []string) error {
			bans, err := b.Bans()
			if err != nil {
				return err
			}
			if origin != "" { // "fleet" takes every fleet:<host>
				bans = slices.DeleteFunc(bans, func(bi control.BanInfo) bool {
					return bi.Origin != origin && !strings.HasPrefix(bi.Origin, origin+":")
				})
			}
			return printList(out, asJSON, bans, "PREFIX\tBANNED SINCE\tEXPIRES IN\tBANS\tREASON\tLAST USER", func(bi control.BanInfo) string {
				left := "never"
				if !bi.Expires.IsZero() {
					left = time.Until(bi.Expires).Round(time.Second).String()
				}
				return fmt.Sprintf("%s\t%s\t%s\t%d\t%s\t%s", bi.Prefix, bi.Since.Local().Format(time.DateTime), left, bi.Count, bi.Reason, bi.LastUser)
			})
		})
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().StringVar(&origin, "origin", "", "only the bans of this origin (fleet: those other hosts shared)")
	return cmd
}

func newUnbanCmd() *cobra.Command {
	var o daemonOpts
	return adminCmd("unban <ip|prefix>...", "Lift bans (kernel and store) and reset their counters",
		"  sshguard-go unban 203.0.113.7 2001:db8:1:2::/64", cobra.MinimumNArgs(1), &o,
		func(b control.Backend, out io.Writer, args []string) error {
			var missing []string
			for _, a := range args {
				p, err := config.ParsePrefix(a)
				if err != nil {
					return &exitError{2, err}
				}
				switch lifted, err := b.Unban(p); {
				case errors.Is(err, control.ErrNotFound):
					missing = append(missing, p.String())
				case err != nil:
					return err
				default:
					for _, l := range lifted {
						if l == p {
							fmt.Fprintf(out, "unbanned %s\n", l)
						} else {
							fmt.Fprintf(out, "unbanned %s (it holds %s)\n", l, p.Addr())
						}
					}
				}
			}
			if len(missing) > 0 {
				return &exitError{1, fmt.Errorf("not banned: %s", strings.Join(missing, ", "))}
			}
			return nil
		})
}

func newBanCmd() *cobra.Command {
	var o daemonOpts
	var d time.Duration
	var permanent, force bool
	var reason string
	var cmd *cobra.Command
	cmd = adminCmd("ban <ip|prefix> [--for DURATION|--permanent] [--reason TEXT] [--force]", "Ban an address or prefix by hand",
		"  sshguard-go ban 203.0.113.7 --for 24h --reason 'port scan'\n  sshguard-go ban 198.51.100.0/24 --permanent", cobra.ExactArgs(1), &o,
		func(b control.Backend, out io.Writer, args []string) error {
			p, err := config.ParsePrefix(args[0])
			if err != nil {
				return &exitError{2, err}
			}
			switch {
			case permanent && cmd.Flags().Changed("for"):
				return &exitError{2, errors.New("--for and --permanent: give one")}
			case !cmd.Flags().Changed("for"):
				d = 0 // the ban policy's time, escalated for repeat offenders
			case d < time.Second:
				return &exitError{2, fmt.Errorf("--for %v: a ban lasts at least 1s (for no expiry, use --permanent)", d)}
			}
			// The daemon's gate decides: the width, your own session, the
			// allowlist, the bans in force.
			bi, err := b.Ban(control.BanRequest{Prefix: p, For: d, Permanent: permanent, Reason: reason, Force: force, Self: ownSession()})
			if err != nil {
				return &exitError{1, err}
			}
			until := "permanently"
			if !bi.Expires.IsZero() {
				until = "until " + bi.Expires.Local().Format(time.DateTime)
			}
			fmt.Fprintf(out, "banned %s %s\n", bi.Prefix, until)
			return nil
		})
	cmd.Flags().Var(config.NewDurationFlag(&d, 0, config.Range{}), "for", "ban length, at least 1s (default: the configured ban time, escalated for repeat offenders)")
	cmd.Flags().BoolVar(&permanent, "permanent", false, "ban without expiry")
	cmd.Flags().BoolVar(&force, "force", false, "ban a prefix wider than /16 (IPv4) or /32 (IPv6), or one holding your own SSH session's address")
	cmd.Flags().StringVar(&reason, "reason", "", "why (shown by list)")
	return cmd
}

// ownSession is the client address of the SSH session the command runs
// in (SSH_CLIENT="address port localport"), or the zero Addr.
func ownSession() netip.Addr {
	f := strings.Fields(os.Getenv("SSH_CLIENT"))
	if len(f) == 0 {
		return netip.Addr{}
	}
	a, err := netip.ParseAddr(f[0])
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap().WithZone("")
}

func newAllowCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "allow", Short: "Edit the allowlist (addresses never banned)"}
	var oa, orm, ol daemonOpts
	var comment string
	add := adminCmd("add <ip|prefix> [--comment TEXT]", "Add to the allowlist (lifts a ban it covers at once)",
		"  sshguard-go allow add 198.51.100.0/24 --comment office", cobra.ExactArgs(1), &oa,
		func(b control.Backend, out io.Writer, args []string) error {
			p, err := config.ParsePrefix(args[0])
			if err != nil {
				return &exitError{2, err}
			}
			if err := b.AllowAdd(p, comment); err != nil {
				return err
			}
			fmt.Fprintf(out, "allowed %s\n", p)
			return nil
		})
	add.Flags().StringVar(&comment, "comment", "", "a note shown by allow list")
	rm := adminCmd("rm <ip|prefix>", "Remove from the allowlist", "  sshguard-go allow rm 198.51.100.0/24", cobra.ExactArgs(1), &orm,
		func(b control.Backend, out io.Writer, args []string) error {
			p, err := config.ParsePrefix(args[0])
			if err != nil {
				return &exitError{2, err}
			}
			if err := b.AllowRemove(p); errors.Is(err, control.ErrNotFound) {
				return &exitError{1, fmt.Errorf("%s is not on the allowlist (entries from the configuration are removed there)", p)}
			} else if err != nil {
				return err
			}
			fmt.Fprintf(out, "removed %s\n", p)
			return nil
		})
	var asJSON bool
	list := adminCmd("list [--json]", "Show the allowlist", "  sshguard-go allow list", cobra.NoArgs, &ol,
		func(b control.Backend, out io.Writer, _ []string) error {
			entries, err := b.AllowList()
			if err != nil {
				return err
			}
			return printList(out, asJSON, entries, "PREFIX\tFROM\tCOMMENT", func(e control.AllowInfo) string {
				return fmt.Sprintf("%s\t%s\t%s", e.Prefix, e.Source, e.Comment)
			})
		})
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.AddCommand(add, rm, list)
	return cmd
}

func newStatusCmd() *cobra.Command {
	var o daemonOpts
	var asJSON bool
	cmd := &cobra.Command{
		Use: "status [--json]", Short: "Show the daemon's state", Args: cobra.NoArgs,
		Example: "  sshguard-go status\n  sshguard-go status --json | jq .active_bans",
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := adminConfig(cmd, &o)
			if err != nil {
				return err
			}
			c, err := control.Dial(cfg.State.Socket)
			if err != nil {
				return &exitError{3, err}
			}
			st, err := c.Status()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				return json.NewEncoder(out).Encode(st)
			}
			fmt.Fprintf(out, "running since %s (%s)\n", st.Started.Local().Format(time.DateTime), time.Since(st.Started).Round(time.Second))
			for _, s := range st.Sources {
				fmt.Fprintf(out, "source %s: %d lines, at %s\n", s.Name, s.Lines, s.Position)
			}
			fmt.Fprintf(out, "tracked keys %d, active bans %d, untrusted lines %d\n", st.Tracked, st.ActiveBans, st.Untrusted)
			fmt.Fprintf(out, "lines naming sshd without an event: %d unknown shape, %d unknown header (sshguard-go scan --unrecognised shows them)\n",
				st.Unrecognised["unknown_shape"], st.Unrecognised["unknown_header"])
			for k, v := range st.Events {
				fmt.Fprintf(out, "  %-14s %d\n", k, v)
			}
			return nil
		},
	}
	addAdminFlags(cmd, &o)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
