package share

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"sshguard-go/internal/textsafe"
)

// WriteStatus prints a daemon's fleet status (sshguard-go fleet status);
// nil is "off".
func WriteStatus(out io.Writer, st *Status) {
	if st == nil {
		fmt.Fprintln(out, "fleet: off (no fleet.nats_url, or no daemon running)")
		return
	}
	server := st.Server
	if server == "" {
		server = "(not connected)"
	}
	safe := textsafe.String // host names come from the peers
	fmt.Fprintf(out, "name %s, server %s, stream %s\npublished %d, waiting to publish %d, others' bans not yet applied %d\n",
		safe(st.Name), safe(server), safe(st.Stream), st.Published, st.Pending, st.Lag)
	writeCluster(out, st)
	if c := st.Fleetwide; c != nil {
		fmt.Fprintf(out, "fleet-wide counting (quorum %d hosts): %d attempts sent (%d bytes), %d dropped, %d received, %d addresses tracked\n",
			c.Quorum, c.Sent, c.Bytes, c.Dropped, c.Received, c.Tracked)
		if c.Waiting > 0 || c.Lost > 0 {
			fmt.Fprintf(out, "  fleet-wide bans waiting for the banner %d, lost (over %d waiting) %d\n", c.Waiting, maxOverflow, c.Lost)
		}
		if c.Mode != "" {
			fmt.Fprintf(out, "  mode %s\n", safe(c.Mode))
		}
		if c.Partitions > 0 {
			fmt.Fprintf(out, "  partitions counted here (last minute): %v of %d\n", c.Counting, c.Partitions)
			fmt.Fprintf(out, "  partitions this host stands by for: %v\n", c.Standby)
		}
		for _, h := range slices.Sorted(maps.Keys(c.Throttled)) {
			fmt.Fprintf(out, "  attempts from %s throttled: %d\n", safe(h), c.Throttled[h])
		}
		for _, h := range slices.Sorted(maps.Keys(c.Refused)) {
			fmt.Fprintf(out, "  attempts from %s refused (width, weight or time): %d\n", safe(h), c.Refused[h])
		}
		for _, h := range slices.Sorted(maps.Keys(c.Crowded)) {
			fmt.Fprintf(out, "  attempts from %s on new addresses past its share of those tracked: %d\n", safe(h), c.Crowded[h])
		}
	}
	if st.LastError != "" {
		fmt.Fprintf(out, "last error: %s\n", safe(st.LastError))
	}
	hosts := slices.Sorted(maps.Keys(st.Received))
	for _, h := range hosts {
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(st.Received[h])) {
			parts = append(parts, fmt.Sprintf("%s %d", safe(k), st.Received[h][k]))
		}
		fmt.Fprintf(out, "  from %s: %s\n", safe(h), strings.Join(parts, ", "))
	}
}

// writeCluster prints the replicas asked and what the server reports.
func writeCluster(out io.Writer, st *Status) {
	safe := textsafe.String
	line := fmt.Sprintf("replicas %d", st.Replicas)
	if c := st.Cluster; c != nil {
		switch {
		case c.Error != "":
			line += fmt.Sprintf(" (the server: %s)", safe(c.Error))
		case c.Cluster == "":
			line += fmt.Sprintf(" (the stream has %d, a single server)", c.Replicas)
		default:
			var peers []string
			for _, p := range c.Peers {
				state := "current"
				switch {
				case p.Offline:
					state = "offline"
				case !p.Current:
					state = fmt.Sprintf("lagging %d", p.Lag)
				}
				peers = append(peers, safe(p.Name)+" "+state)
			}
			line += fmt.Sprintf(" (the stream has %d: cluster %s, leader %s", c.Replicas, safe(c.Cluster), safe(c.Leader))
			if len(peers) > 0 {
				line += ", " + strings.Join(peers, ", ")
			}
			line += ")"
		}
	}
	fmt.Fprintln(out, line)
	if st.ReplicasProblem != "" {
		fmt.Fprintf(out, "warning: %s\n", safe(st.ReplicasProblem))
	}
}
