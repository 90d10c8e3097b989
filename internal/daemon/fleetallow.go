package daemon

import (
	"context"
	"fmt"
	"net/netip"
	"net/url"

	"sshguard-go/internal/config"
)

// fleetServers are the addresses of the NATS servers in fleet.nats_url:
// always allowed, whoever asks for a ban (a peer's ban of one would cut
// this host off from the fleet, and from the unban that would lift it).
// A host name is resolved at the start; one that does not resolve is
// reported and skipped.
func fleetServers(ctx context.Context, f config.FleetConfig, warn func(string)) []netip.Prefix {
	var out []netip.Prefix
	for _, raw := range f.URLs() {
		u, err := url.Parse(raw)
		if err != nil || u.Hostname() == "" {
			continue // check-config names it
		}
		ps, err := config.HostPrefixes(ctx, u.Hostname())
		if err != nil {
			warn(fmt.Sprintf("fleet.nats_url: %s does not resolve (%v); its addresses are not allowlisted until the next start", u.Hostname(), err))
			continue
		}
		out = append(out, ps...)
	}
	return out
}
