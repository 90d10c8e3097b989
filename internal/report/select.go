package report

import (
	"fmt"
	"net/netip"

	"sshguard-go/internal/ban"
	"sshguard-go/internal/config"
)

// Weights are what a failed attempt and a probe count for (the
// configuration's detection weights).
type Weights struct{ Failure, Probe float64 }

// attempts is c's weighted attempts, as the daemon weighs them: a
// connection that probed, then failed, weighs its failures (or its probe,
// if heavier), not both.
func (w Weights) attempts(c *rec) float64 {
	return float64(c.failed)*w.Failure + float64(c.probes)*w.Probe - float64(c.taken)*min(w.Failure, w.Probe)
}

// Allowlist is what a report leaves out: the configuration's ban.allow
// (its host names are not resolved offline: left out) and the addresses
// and prefixes given (--allow); nil when there are none.
func Allowlist(configured, given []string) (*ban.Allowlist, error) {
	var entries []netip.Prefix
	for _, a := range configured {
		if p, err := config.ParsePrefix(a); err == nil {
			entries = append(entries, p)
		}
	}
	for _, a := range given {
		p, err := config.ParsePrefix(a)
		if err != nil {
			return nil, fmt.Errorf("--allow: %w", err)
		}
		entries = append(entries, p)
	}
	if len(entries) == 0 {
		return nil, nil
	}
	return ban.NewAllowlist(entries...), nil
}

// Selection is what a report keeps of its clients.
type Selection struct {
	Threshold float64        // weighted attempts at least this (0: all)
	Weights   Weights        // what a failed attempt and a probe weigh
	Allowed   *ban.Allowlist // left out (nil: only the built-in loopback and the like, when a threshold is set)
	Top       int            // the first this many (0: all)
}

// Select keeps what sel asks of l, in l's order, and says how many
// allowlisted clients it left out.
func (sel Selection) Select(l *List) (kept *List, left int) {
	kept = l
	if sel.Threshold > 0 || sel.Allowed != nil {
		allowed := sel.Allowed
		if allowed == nil {
			allowed = ban.NewAllowlist()
		}
		kept = &List{s: l.s}
		for _, j := range l.order {
			c := l.s.at(j)
			if c.fam != famName {
				a := l.s.addrOf(c).WithZone("")
				if allowed.Covers(netip.PrefixFrom(a, a.BitLen())) {
					left++
					continue
				}
			}
			if sel.Weights.attempts(c) >= sel.Threshold {
				kept.order = append(kept.order, j)
			}
		}
	}
	if sel.Top > 0 && len(kept.order) > sel.Top {
		kept = &List{s: l.s, order: kept.order[:sel.Top]}
	}
	return kept, left
}
