package control

import (
	"cmp"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"sshguard-go/internal/textsafe"
)

// The words of the CLI's text outputs for what the daemon answers. Every
// string that came from the log, the database or a peer is passed through
// textsafe: a terminal reads them.

// stamp is how the text outputs write a time: RFC 3339 in local time,
// with its offset (2026-12-04T15:04:05+01:00); "-" for none.
func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format(time.RFC3339)
}

// Until is when bi ends, in words.
func (bi BanInfo) Until() string {
	if bi.Expires.IsZero() {
		return "permanent"
	}
	return "until " + bi.Expires.Local().Format("2006-01-02 15:04:05 MST")
}

// Warning names the ban records of the database that do not decode, left
// out of a list, and says how to delete them; "" when none.
func (d Damaged) Warning() string {
	if d.Count == 0 {
		return ""
	}
	keys := make([]string, len(d.Keys))
	for i, k := range d.Keys {
		keys[i] = textsafe.String(k)
	}
	names := strings.Join(keys, ", ")
	if more := d.Count - len(d.Keys); more > 0 {
		names += fmt.Sprintf(" and %d more", more)
	}
	what := fmt.Sprintf("%d ban records in the database do not decode", d.Count)
	if d.Count == 1 {
		what = "1 ban record in the database does not decode"
	}
	return fmt.Sprintf("%s (left out): %s; `sshguard-go unban PREFIX` deletes the record of PREFIX", what, names)
}

// WriteStatus writes the daemon's state in words (sshguard-go status):
// dry run or not, the policy, each source, the bans by origin, the
// events seen.
func WriteStatus(out io.Writer, st Status) {
	safe := textsafe.String
	fmt.Fprintf(out, "running since %s (%s)\n", stamp(st.Started), time.Since(st.Started).Round(time.Second))
	if st.DryRun {
		fmt.Fprintln(out, "DRY RUN (firewall.backend = \"none\"): nothing is banned; what would be is listed by list (list --dry-run after a real run)")
	}
	p := st.Policy
	fmt.Fprintf(out, "policy: ban after %g failed attempts within %s, for %s, x%g for each repeat within %s, at most %s", p.Threshold, p.Window, p.BanTime, p.Factor, p.Remember, p.MaxBanTime)
	if p.PermanentAfter > 0 {
		fmt.Fprintf(out, ", permanent from the %dth", p.PermanentAfter)
	}
	fmt.Fprintln(out)
	if len(p.Horizons) > 0 {
		fmt.Fprintf(out, "slow attackers: %s (failures at existing accounts forgiven by a login)\n", strings.Join(p.Horizons, ", "))
	}
	if len(p.NetworkHorizons) > 0 {
		fmt.Fprintf(out, "networks no user logs in from: %s\n", strings.Join(p.NetworkHorizons, ", "))
	}
	if p.WideV4 > 0 || p.WideV6 > 0 {
		fmt.Fprintf(out, "wide prefixes: /%d (IPv4) /%d (IPv6) after %g attempts\n", p.WideV4, p.WideV6, p.WideThreshold)
	}
	fmt.Fprintf(out, "firewall: %s, table %s\n", p.Backend, safe(p.Table))
	for _, s := range st.Sources {
		state := cmp.Or(s.State, "reading")
		if s.Why != "" {
			state += ": " + s.Why
		}
		fmt.Fprintf(out, "source %s: %s, %d lines, at %s", safe(s.Name), safe(state), s.Lines, safe(s.Position))
		if s.Behind > 0 {
			fmt.Fprintf(out, ", %d bytes behind", s.Behind)
		}
		if !s.Newest.IsZero() {
			fmt.Fprintf(out, ", newest line of %s", stamp(s.Newest))
		}
		fmt.Fprintln(out)
	}
	fmt.Fprintf(out, "tracked keys %d, active bans %d%s, made since start%s, untrusted lines %d\n", st.Tracked, st.ActiveBans,
		byOrigin(st.BansByOrigin), byOrigin(st.BansSinceStart), st.Untrusted)
	if len(st.Dropped) > 0 {
		fmt.Fprintf(out, "side work given up so that banning never waited:%s\n", byOrigin(st.Dropped))
	}
	fmt.Fprintf(out, "lines naming sshd without an event: %d unknown shape, %d unknown header (sshguard-go scan --unrecognised shows them)\n",
		st.Unrecognised["unknown_shape"], st.Unrecognised["unknown_header"])
	for _, k := range slices.Sorted(maps.Keys(st.Events)) {
		fmt.Fprintf(out, "  %-14s %d\n", safe(k), st.Events[k])
	}
}

// byOrigin is " (detected 3, admin 1)", or " 0" when m is empty.
func byOrigin[N int | int64](m map[string]N) string {
	if len(m) == 0 {
		return " 0"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s %d", textsafe.String(k), m[k]))
	}
	return " (" + strings.Join(parts, ", ") + ")"
}
