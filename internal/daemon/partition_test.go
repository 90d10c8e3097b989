package daemon

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"sshguard-go/internal/share"
	"sshguard-go/internal/testkit"
)

// TestFleetwidePartitioned: on a server with priority groups (the
// embedded one, 2.15) fleet-wide counting is partitioned across three
// hosts: an address whose attempts come from two of them (2 each, under
// the hosts' threshold of 3, the fleet's 4 reached) is counted on one
// host only (the attempts received fleet-wide add up to 4, where
// all-to-all would receive 8), banned there (origin fleetwide) and shared:
// every host has the ban. Then the counting host dies: the server pins
// its partition to another host after the pinned TTL, and an address of
// the same partition attacked from the two remaining hosts is still
// banned fleet-wide.
func TestFleetwidePartitioned(t *testing.T) {
	n := startNATS(t)
	const extra = "count_fleetwide = true\nfleet_threshold = 4\nfleet_window = \"1h\"\n"
	hosts := map[string]*harness{}
	for _, name := range []string{"a", "b", "c"} {
		h := newHarness(t)
		writeConfig(t, h.dir, fmt.Sprintf("[detection]\nthreshold = 3\n[audit]\nlog = \"\"\n[fleet]\nnats_url = %q\nname = %q\n%s",
			n.url(), name, extra))
		h.logf("Server listening on 0.0.0.0 port 22.")
		h.start()
		hosts[name] = h
	}
	testkit.Eventually(t, 20*time.Second, "counting partitioned", func() (bool, string) {
		for _, h := range hosts {
			if st := h.fleet(); st.Fleetwide == nil || !st.Fleetwide.Listening || !strings.HasPrefix(st.Fleetwide.Mode, "partitioned") {
				return false, fmt.Sprintf("%+v", st.Fleetwide)
			}
		}
		return true, ""
	})
	const first = "198.51.100.99"
	for i, name := range []string{"a", "b"} {
		for j := range 2 {
			hosts[name].logf("Failed password for root from %s port %d ssh2", first, 41000+10*i+j)
		}
	}
	for _, h := range hosts {
		h.waitBan(first+"/32", true)
	}
	counter, received := "", int64(0)
	for name, h := range hosts {
		st := h.fleet().Fleetwide
		received += st.Received
		if st.Received > 0 {
			counter = name
		}
	}
	if received != 4 {
		t.Fatalf("%d attempts received fleet-wide, want 4 (counted in one place)", received)
	}
	if o := hosts[counter].bans()[first+"/32"].Origin; o != "fleetwide" {
		t.Errorf("the counting host %s: origin %q", counter, o)
	}
	for name, h := range hosts {
		if o := h.bans()[first+"/32"].Origin; name != counter && o != "fleet:"+counter {
			t.Errorf("host %s: origin %q, want fleet:%s", name, o, counter)
		}
	}
	// The counting host dies; an address of the same partition.
	part := share.PartitionOf(netip.MustParsePrefix(first+"/32"), share.DefaultPartitions)
	second := ""
	for i := 1; second == ""; i++ {
		if a := fmt.Sprintf("203.0.113.%d", i); share.PartitionOf(netip.MustParsePrefix(a+"/32"), share.DefaultPartitions) == part {
			second = a
		}
	}
	hosts[counter].halt()
	delete(hosts, counter)
	i := 0
	for _, h := range hosts {
		for j := range 2 {
			h.logf("Failed password for root from %s port %d ssh2", second, 42000+10*i+j)
		}
		i++
	}
	for name, h := range hosts {
		testkit.Eventually(t, 60*time.Second, "the fleet-wide ban of "+second+" on "+name, func() (bool, string) {
			_, ok := h.bans()[second+"/32"]
			return ok, fmt.Sprintf("%+v", h.fleet().Fleetwide)
		})
	}
}
