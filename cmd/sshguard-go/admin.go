package main

import (
	"cmp"
	"context"
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
	"sshguard-go/internal/engine"
	"sshguard-go/internal/store"
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
	cfg, err := config.LoadWith(o.config, cmd.Flags().Changed("config"), o.stateOverrides(cmd))
	if err != nil {
		return nil, &exitError{2, err}
	}
	return cfg, nil
}

// withBackend wraps a command body that needs a backend.
func withBackend(o *daemonOpts, f func(ctx context.Context, b control.Backend, out io.Writer, args []string) error) func(*cobra.Command, []string) error {
	return connectWith(daemon.Connect, o, f)
}

// withReader wraps a command body that only reads: without a daemon the
// database is opened read-only, and a missing one is an error, never
// created (daemon.ConnectReadOnly).
func withReader(o *daemonOpts, f func(ctx context.Context, b control.Backend, out io.Writer, args []string) error) func(*cobra.Command, []string) error {
	return connectWith(daemon.ConnectReadOnly, o, f)
}

type connectFunc func(context.Context, *config.Config, func(string)) (control.Backend, func(), error)

func connectWith(connect connectFunc, o *daemonOpts, f func(ctx context.Context, b control.Backend, out io.Writer, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		cfg, err := adminConfig(cmd, o)
		if err != nil {
			return err
		}
		b, done, err := connect(cmd.Context(), cfg, func(msg string) { fmt.Fprintln(cmd.ErrOrStderr(), "warning:", msg) })
		if err != nil {
			return &exitError{1, err}
		}
		defer done()
		err = f(cmd.Context(), b, cmd.OutOrStdout(), args)
		if errors.Is(err, store.ErrCorrupt) {
			// Found by a read after the open: the status of a damaged
			// database found at the open.
			return &exitError{1, err}
		}
		return err
	}
}

func adminCmd(use, short, example string, args cobra.PositionalArgs, o *daemonOpts, f func(context.Context, control.Backend, io.Writer, []string) error) *cobra.Command {
	cmd := &cobra.Command{Use: use, Short: short, Example: example, Args: args, RunE: withBackend(o, f)}
	addAdminFlags(cmd, o)
	return cmd
}

// readCmd is adminCmd for a command that only reads (withReader).
func readCmd(use, short, example string, args cobra.PositionalArgs, o *daemonOpts, f func(context.Context, control.Backend, io.Writer, []string) error) *cobra.Command {
	cmd := &cobra.Command{Use: use, Short: short, Example: example, Args: args, RunE: withReader(o, f)}
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
	var asJSON, dryRun bool
	var origin string
	var cmd *cobra.Command
	cmd = readCmd("list [--json] [--dry-run] [--origin detected|admin|archive|fleetwide|fleet|fleet:HOST]", "List active bans",
		"  sshguard-go list\n  sshguard-go list --json | jq '.[].prefix'\n  sshguard-go list --origin fleet\n  sshguard-go list --dry-run    # what a dry run would have banned", cobra.NoArgs, &o,
		func(ctx context.Context, b control.Backend, out io.Writer, _ []string) error {
			list := b.Bans
			if dryRun {
				list = b.DryRunBans
			}
			l, err := list(ctx)
			if err != nil {
				return err
			}
			if w := l.Damaged.Warning(); w != "" {
				fmt.Fprintln(cmd.ErrOrStderr(), "warning:", w)
			}
			bans := l.Bans
			if !asJSON && len(bans) > 0 && bans[0].DryRun {
				fmt.Fprintln(out, "dry run (firewall.backend = \"none\"): would be banned, is not")
			}
			bans = slices.DeleteFunc(bans, func(bi control.BanInfo) bool { return !engine.OriginMatches(bi.Origin, origin) })
			return printList(out, asJSON, bans, "PREFIX\tORIGIN\tBANNED SINCE\tEXPIRES IN\tBANS\tREASON\tLAST USER", func(bi control.BanInfo) string {
				left := "never"
				if !bi.Expires.IsZero() {
					left = time.Until(bi.Expires).Round(time.Second).String()
				}
				return fmt.Sprintf("%s\t%s\t%s\t%s\t%d\t%s\t%s", bi.Prefix, safe(cmp.Or(bi.Origin, "-")), stamp(bi.Since), left, bi.Count,
					safe(bi.Reason), safe(bi.LastUser))
			})
		})
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "what a dry run (firewall.backend = \"none\") would have banned, kept apart from the bans")
	enumVar(cmd, &origin, "origin", "only the bans of this origin: "+strings.Join(origins, ", ")+" (fleet: those every other host shared)",
		origins, engine.ValidOriginFilter, originsDesc)
	return cmd
}

func newUnbanCmd() *cobra.Command {
	var o daemonOpts
	var all, asJSON bool
	var origin string
	cmd := adminCmd("unban <ip|prefix>... | --all [--origin O]", "Lift bans (kernel and store) and reset their counters",
		"  sshguard-go unban 203.0.113.7 2001:db8:1:2::/64\n  sshguard-go unban 198.51.100.0/24     # and the bans inside it\n  sshguard-go unban --all --origin fleet", cobra.ArbitraryArgs, &o,
		func(ctx context.Context, b control.Backend, out io.Writer, args []string) error {
			switch {
			case all && len(args) > 0:
				return &exitError{2, errors.New("--all or prefixes: give one")}
			case !all && origin != "":
				return &exitError{2, errors.New("--origin goes with --all")}
			case !all && len(args) == 0:
				return &exitError{2, errors.New("give the addresses or prefixes to unban, or --all")}
			}
			ps := make([]netip.Prefix, len(args))
			for i, a := range args {
				p, err := config.ParsePrefix(a)
				if err != nil {
					return &exitError{2, err}
				}
				ps[i] = p
			}
			done, missing, err := control.Lift(ctx, b, ps, all, origin)
			if err != nil {
				return err
			}
			if asJSON {
				if err := writeJSON(out, map[string]any{"unbanned": done, "not_banned": missing}); err != nil {
					return err
				}
			} else {
				for _, d := range done {
					for _, l := range d.Lifted {
						switch d.Relation(l) {
						case "inside":
							fmt.Fprintf(out, "unbanned %s (inside %s)\n", l, d.Asked)
						case "holds":
							fmt.Fprintf(out, "unbanned %s (it holds %s)\n", l, d.Asked)
						default:
							fmt.Fprintf(out, "unbanned %s\n", l)
						}
					}
					if d.Asked == "all" && len(d.Lifted) == 0 {
						fmt.Fprintln(out, "no ban in force to lift")
					}
				}
			}
			if len(missing) > 0 {
				names := make([]string, len(missing))
				for i, p := range missing {
					names[i] = p.String()
				}
				return &exitError{1, fmt.Errorf("not banned: %s", strings.Join(names, ", "))}
			}
			return nil
		})
	cmd.Flags().BoolVar(&all, "all", false, "lift every ban in force (with --origin: only those of that origin)")
	enumVar(cmd, &origin, "origin", "with --all: only the bans of this origin: "+strings.Join(origins, ", "), origins, engine.ValidOriginFilter, originsDesc)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print what was lifted as JSON")
	return cmd
}

func newBanCmd() *cobra.Command {
	var o daemonOpts
	var d time.Duration
	var permanent, force, asJSON bool
	var reason string
	var cmd *cobra.Command
	cmd = adminCmd("ban <ip|prefix> [--for DURATION|--permanent] [--reason TEXT] [--force]", "Ban an address or prefix by hand",
		"  sshguard-go ban 203.0.113.7 --for 24h --reason 'port scan'\n  sshguard-go ban 198.51.100.0/24 --permanent", cobra.ExactArgs(1), &o,
		func(ctx context.Context, b control.Backend, out io.Writer, args []string) error {
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
			bi, err := b.Ban(ctx, control.BanRequest{Prefix: p, For: d, Permanent: permanent, Reason: reason, Force: force, Self: ownSession()})
			if err != nil {
				return &exitError{1, err}
			}
			if asJSON {
				return writeJSON(out, bi)
			}
			until := "permanently"
			if !bi.Expires.IsZero() {
				until = "until " + stamp(bi.Expires)
			}
			verb := "banned"
			if bi.DryRun {
				verb = "dry run (firewall.backend = \"none\"): would ban"
			}
			fmt.Fprintf(out, "%s %s %s\n", verb, bi.Prefix, until)
			if r := bi.Replaced; r != nil {
				fmt.Fprintf(out, "it replaces the ban in force (%s, %s)\n", r.Origin, r.Until())
			}
			return nil
		})
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the ban made as JSON")
	cmd.Flags().Var(config.NewDurationFlag(&d, 0, config.Range{}), "for", "ban length, at least 1s (default: the configured ban time, escalated for repeat offenders)")
	cmd.Flags().BoolVar(&permanent, "permanent", false, "ban without expiry")
	cmd.Flags().BoolVar(&force, "force", false, "ban a prefix wider than /16 (IPv4) or /32 (IPv6), or one holding your own SSH session's address, or for less time than its ban in force")
	cmd.Flags().StringVar(&reason, "reason", "", "why (shown by list)")
	return cmd
}

// ownSession is the client address of the SSH session the command runs
// in, or the zero Addr.
func ownSession() netip.Addr { return control.SessionAddr(os.Getenv("SSH_CLIENT")) }

func newAllowCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "allow", Short: "Edit the allowlist (addresses never banned)"}
	var oa, orm, ol daemonOpts
	var comment string
	var force, addJSON, rmJSON bool
	add := adminCmd("add <ip|prefix> [--comment TEXT] [--force]", "Add to the allowlist (lifts the bans it covers at once, naming them)",
		"  sshguard-go allow add 198.51.100.0/24 --comment office\n  sshguard-go allow add 10.1.2.3 --force   # inside a wider ban: lifts that whole ban", cobra.ExactArgs(1), &oa,
		func(ctx context.Context, b control.Backend, out io.Writer, args []string) error {
			p, err := config.ParsePrefix(args[0])
			if err != nil {
				return &exitError{2, err}
			}
			res, err := b.AllowAdd(ctx, control.AllowRequest{Prefix: p, Comment: comment, Force: force})
			if err != nil {
				return &exitError{1, err}
			}
			if addJSON {
				return writeJSON(out, res)
			}
			switch {
			case res.Already && res.CommentChanged:
				fmt.Fprintf(out, "%s was already allowed: its comment changed\n", res.Prefix)
			case res.Already:
				fmt.Fprintf(out, "%s was already allowed: nothing changed\n", res.Prefix)
			default:
				fmt.Fprintf(out, "allowed %s\n", res.Prefix)
			}
			for _, bi := range res.Lifted {
				fmt.Fprintf(out, "lifted the ban of %s (%s, %s)\n", bi.Prefix, bi.Origin, bi.Until())
			}
			return nil
		})
	add.Flags().StringVar(&comment, "comment", "", "a note shown by allow list")
	add.Flags().BoolVar(&force, "force", false, "also lift a ban wider than the entry that holds it")
	add.Flags().BoolVar(&addJSON, "json", false, "print the entry and the bans it lifted as JSON")
	rm := adminCmd("rm <ip|prefix>", "Remove from the allowlist (makes again the bans it lifted, if they have not ended)", "  sshguard-go allow rm 198.51.100.0/24", cobra.ExactArgs(1), &orm,
		func(ctx context.Context, b control.Backend, out io.Writer, args []string) error {
			p, err := config.ParsePrefix(args[0])
			if err != nil {
				return &exitError{2, err}
			}
			res, err := b.AllowRemove(ctx, p)
			if errors.Is(err, control.ErrNotFound) {
				entries, _ := b.AllowList(ctx) // the answer holds without them
				return &exitError{1, control.NotAllowed(entries, p)}
			} else if err != nil {
				return err
			}
			if rmJSON {
				return writeJSON(out, res)
			}
			fmt.Fprintf(out, "removed %s\n", p)
			for _, bi := range res.Restored {
				fmt.Fprintf(out, "banned %s again (%s; it was lifted when %s was allowed)\n", bi.Prefix, bi.Until(), p)
			}
			return nil
		})
	rm.Flags().BoolVar(&rmJSON, "json", false, "print the bans made again as JSON")
	var asJSON bool
	list := readCmd("list [--json]", "Show the allowlist", "  sshguard-go allow list", cobra.NoArgs, &ol,
		func(ctx context.Context, b control.Backend, out io.Writer, _ []string) error {
			entries, err := b.AllowList(ctx)
			if err != nil {
				return err
			}
			return printList(out, asJSON, entries, "PREFIX\tFROM\tCOMMENT", func(e control.AllowInfo) string {
				return fmt.Sprintf("%s\t%s\t%s", e.Prefix, safe(e.Source), safe(e.Comment))
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
		Long: `status shows the running daemon's state: since when it runs, how far it has
read each log source, what it tracks and has banned, and the events it saw.
When no daemon answers it exits with status 3 and says what the database
holds (or that there is none).`,
		Example: "  sshguard-go status\n  sshguard-go status --json | jq .active_bans",
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := adminConfig(cmd, &o)
			if err != nil {
				return err
			}
			c, err := control.Dial(cfg.State.Socket)
			switch {
			case errors.Is(err, control.ErrNoDaemon):
				return notRunning(cmd.Context(), cfg)
			case err != nil:
				return &exitError{1, err}
			}
			st, err := c.Status(cmd.Context())
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				return json.NewEncoder(out).Encode(st)
			}
			control.WriteStatus(out, st)
			return nil
		},
	}
	addAdminFlags(cmd, &o)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// notRunning is status's answer when no daemon answers on the socket:
// exit status 3 (not running), with what the database holds, or 1 when
// that cannot be read.
func notRunning(ctx context.Context, cfg *config.Config) error {
	err := daemon.NotRunning(ctx, cfg)
	if errors.Is(err, daemon.ErrNotRunning) {
		return &exitError{3, err}
	}
	return &exitError{1, err}
}
