package main

import (
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
	"time"

	"sshguard-go/internal/loggen"
)

// printTable writes the Markdown table: a row per client of the month, a
// column per tool, and the totals.
func printTable(w io.Writer, actors []loggen.Actor, lines []line, cols []tool, results [][]ban, end time.Time) {
	fmt.Fprint(w, "| pattern |")
	for _, c := range cols {
		fmt.Fprintf(w, " %s |", c.header)
	}
	fmt.Fprint(w, "\n|---|")
	for range cols {
		fmt.Fprint(w, "---|")
	}
	fmt.Fprintln(w)
	caught := make([]int, len(cols))
	harmed := make([]int, len(cols))
	attackers, users := 0, 0
	for _, a := range actors {
		if a.Attack {
			attackers++
		} else {
			users++
		}
		fmt.Fprintf(w, "| %s |", a.Name)
		for i := range cols {
			cell, hit := describe(a, lines, results[i], end)
			if hit && a.Attack {
				caught[i]++
			} else if hit {
				harmed[i]++
			}
			fmt.Fprintf(w, " %s |", cell)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprint(w, "| **attackers caught; legitimate users banned** |")
	for i := range cols {
		fmt.Fprintf(w, " **%d of %d; %d of %d** |", caught[i], attackers, harmed[i], users)
	}
	fmt.Fprintln(w)
}

// describe is a's cell for one tool's bans, and whether the tool banned
// it at all: for an attacker, when the first ban came (its attempts until
// then, the time since its first); for a legitimate user, how often and
// how long it was banned.
func describe(a loggen.Actor, lines []line, bans []ban, end time.Time) (string, bool) {
	addrs := make([]netip.Addr, len(a.Addrs))
	for i, s := range a.Addrs {
		addrs[i] = netip.MustParseAddr(s)
	}
	var mine []ban
	covered := map[netip.Addr]bool{}
	for _, b := range bans {
		hit := false
		for _, ad := range addrs {
			if b.prefix.Contains(ad) {
				covered[ad], hit = true, true
			}
		}
		if hit {
			mine = append(mine, b)
		}
	}
	if len(mine) == 0 {
		return "never", false
	}
	slices.SortStableFunc(mine, func(x, y ban) int { return x.start.Compare(y.start) })
	recidive := 0
	for _, b := range mine {
		if b.jail == "recidive" {
			recidive++
		}
	}
	some := ""
	if len(covered) < len(addrs) {
		some = fmt.Sprintf(" (%d of its %d addresses)", len(covered), len(addrs))
	}
	if !a.Attack {
		times := "once"
		if len(mine) > 1 {
			times = fmt.Sprintf("%d times", len(mine))
		}
		s := fmt.Sprintf("banned %s%s, %s in all", times, some, span(banned(mine, end).Round(time.Minute)))
		if recidive > 0 {
			s += fmt.Sprintf(" (%d by recidive)", recidive)
		}
		return s, true
	}
	// The attacker's attempts: its connections that failed, in order.
	var first time.Time
	seen := map[string]bool{}
	n := 0
	for _, l := range lines {
		if l.login || !slices.Contains(addrs, l.addr) || seen[l.pid] {
			continue
		}
		if first.IsZero() {
			first = l.at
		}
		if l.at.After(mine[0].start) {
			break
		}
		seen[l.pid] = true
		n++
	}
	s := fmt.Sprintf("banned after %d attempts (at +%s)%s", n, span(mine[0].start.Sub(first)), some)
	if recidive > 0 {
		for _, b := range mine {
			if b.jail == "recidive" {
				s += fmt.Sprintf("; by recidive at +%s", span(b.start.Sub(first)))
				break
			}
		}
	}
	return s, true
}

// banned is how long bans kept their prefixes out before end, overlaps
// counted once.
func banned(bans []ban, end time.Time) time.Duration {
	var total time.Duration
	var upTo time.Time
	for _, b := range bans { // sorted by start
		e := b.end
		if e.IsZero() || e.After(end) {
			e = end
		}
		s := b.start
		if s.Before(upTo) {
			s = upTo
		}
		if e.After(s) {
			total += e.Sub(s)
			upTo = e
		}
	}
	return total
}

// span writes d in days, hours, minutes and seconds, from its largest
// part to its last that is not zero ("2d8h", "9h0m40s", "30m", "40s").
func span(d time.Duration) string {
	d = d.Round(time.Second)
	parts := []struct {
		n    time.Duration
		unit string
	}{{d / (24 * time.Hour), "d"}, {d % (24 * time.Hour) / time.Hour, "h"}, {d % time.Hour / time.Minute, "m"}, {d % time.Minute / time.Second, "s"}}
	first, last := -1, -1
	for i, p := range parts {
		if p.n != 0 {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	if first < 0 {
		return "0s"
	}
	var b strings.Builder
	for _, p := range parts[first : last+1] {
		fmt.Fprintf(&b, "%d%s", p.n, p.unit)
	}
	return b.String()
}
