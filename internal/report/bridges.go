package report

import (
	"fmt"
	"net/netip"
	"time"

	"sshguard-go/internal/alert"
	"sshguard-go/internal/control"
)

// BanRequests are the bans report --ban asks for: l's addresses (not
// the clients known by name only), for d (0: by the ban policy, escalated),
// with the reason "archive: N failed attempts in WINDOW", origin archive,
// never self (the address of the caller's own SSH session) without force.
func BanRequests(l *List, d time.Duration, window string, self netip.Addr) []control.BanRequest {
	reqs := make([]control.BanRequest, 0, len(l.order))
	for _, j := range l.order {
		c := l.s.at(j)
		if c.fam != famName {
			a := l.s.addrOf(c).WithZone("")
			reqs = append(reqs, control.BanRequest{Prefix: netip.PrefixFrom(a, a.BitLen()), For: max(d, 0), Origin: "archive", Self: self,
				Reason: fmt.Sprintf("archive: %d failed attempts in %s", c.failed, window)})
		}
	}
	return reqs
}

// Offenders is l for an alert (report --notify).
func Offenders(l *List, w Weights) []alert.Offender {
	out := make([]alert.Offender, 0, len(l.order))
	for _, j := range l.order {
		r := l.s.at(j)
		c := l.s.client(r)
		out = append(out, alert.Offender{Addr: c.Client, Failed: c.Failed, Probes: c.Probes, Users: c.Users[:min(len(c.Users), 8)], Attempts: w.attempts(r)})
	}
	return out
}
