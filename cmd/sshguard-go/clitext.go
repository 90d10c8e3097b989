package main

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"sshguard-go/internal/config"
	"sshguard-go/internal/daemon"
	"sshguard-go/internal/engine"
	"sshguard-go/internal/textsafe"
)

// safe is text from a log, a peer or a host made fit for the terminal
// (textsafe): every table and line of text output prints such text
// through it. JSON output needs no such care.
func safe(s string) string { return textsafe.String(s) }

// warn prints each of ws on cmd's standard error.
func warn(cmd *cobra.Command, ws []string) {
	for _, w := range ws {
		fmt.Fprintln(cmd.ErrOrStderr(), "warning:", w)
	}
}

// stamp is how the text outputs write a time: RFC 3339 in local time,
// with its offset (2026-12-04T15:04:05+01:00); "-" for none.
func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format(time.RFC3339)
}

// enumFlag is a string flag that takes only some values: another is
// refused when the command line is parsed (exit status 2), with the
// values it takes.
type enumFlag struct {
	value   *string
	allowed []string          // as shown in the error and offered by completion
	ok      func(string) bool // nil: one of allowed
}

func (e *enumFlag) String() string { return *e.value }
func (e *enumFlag) Type() string   { return "string" }

func (e *enumFlag) Set(s string) error {
	if e.ok != nil && !e.ok(s) || e.ok == nil && !slices.Contains(e.allowed, s) {
		return fmt.Errorf("%q is none of %s", s, strings.Join(e.allowed, ", "))
	}
	*e.value = s
	return nil
}

// enumVar adds the flag name to cmd, taking only the values allowed (ok,
// when set, decides instead), and offers them to shell completion with
// their descriptions (desc, by value).
func enumVar(cmd *cobra.Command, p *string, name, usage string, allowed []string, ok func(string) bool, desc map[string]string) {
	cmd.Flags().Var(&enumFlag{value: p, allowed: allowed, ok: ok}, name, usage)
	cmd.RegisterFlagCompletionFunc(name, func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
		var out []cobra.Completion
		for _, v := range allowed {
			if strings.ContainsAny(v, "<>") || strings.Contains(v, "HOST") {
				continue // a pattern, not a value
			}
			out = append(out, cobra.CompletionWithDesc(v, desc[v]))
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	})
}

// The origins of a ban, as list --origin takes them.
var (
	origins     = append(slices.Clone(engine.OriginFilters), engine.PeerOrigin("HOST"))
	originsDesc = map[string]string{
		engine.Detected:  "this host's detection",
		engine.Admin:     "banned by hand",
		engine.Archive:   "report --ban, from old logs",
		engine.Fleetwide: "the fleet-wide count",
		engine.Fleet:     "shared by another host of the fleet (fleet:HOST)",
	}
)

// The alert channels (alert test --channel).
var (
	channels     = []string{"email", "sms", "webhook"}
	channelsDesc = map[string]string{"email": "[alerts.email]", "sms": "[alerts.sms]", "webhook": "[alerts.webhook]"}
)

// completeBanned offers the prefixes of the bans in force (unban), asked
// of the daemon or read from the database read-only: best effort, nothing
// when neither can be read, and never a database made.
func completeBanned(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	cfg, err := flagsConfig(cmd)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	b, done, err := daemon.ConnectReadOnly(cmd.Context(), cfg, func(string) {})
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	defer done()
	bans, err := b.Bans(cmd.Context())
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var out []cobra.Completion
	for _, bi := range bans.Bans {
		p := bi.Prefix.String()
		if strings.HasPrefix(p, toComplete) && !slices.Contains(args, p) {
			out = append(out, cobra.CompletionWithDesc(p, safe(bi.Reason)))
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// flagsConfig is adminConfig for a command whose options are out of
// reach (completion): the configuration and state flags read by name.
func flagsConfig(cmd *cobra.Command) (*config.Config, error) {
	f := cmd.Flags()
	path, _ := f.GetString("config")
	db, _ := f.GetString("db")
	socket, _ := f.GetString("socket")
	return config.LoadWith(cmp.Or(path, config.DefaultPath), f.Changed("config"),
		config.Overrides{DB: given(f, "db", db), Socket: given(f, "socket", socket)})
}

// addCompletions offers the banned prefixes to unban's arguments.
func addCompletions(root *cobra.Command) {
	for _, c := range root.Commands() {
		if c.Name() == "unban" && c.ValidArgsFunction == nil {
			c.ValidArgsFunction = completeBanned
		}
	}
}
