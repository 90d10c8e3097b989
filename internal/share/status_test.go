package share

import (
	"strings"
	"testing"
)

// TestWriteStatus: fleet status in words, off and on.
func TestWriteStatus(t *testing.T) {
	var b strings.Builder
	WriteStatus(&b, nil)
	if !strings.Contains(b.String(), "fleet: off") {
		t.Errorf("%q", b.String())
	}
	b.Reset()
	WriteStatus(&b, &Status{Name: "web-02", Stream: "SSHGUARD_BANS", Lag: 4, Counts: Counts{Published: 12,
		Received: map[string]map[string]int64{"web-01": {"applied": 41, "refused_allowlist": 1}}}})
	for _, want := range []string{"name web-02, server (not connected)", "published 12", "not yet applied 4", "from web-01: applied 41, refused_allowlist 1"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("no %q in %q", want, b.String())
		}
	}
}

// TestWriteStatusCluster: the replicas asked, what the server reports
// (leader, each replica current, lagging or offline) and a refusal.
func TestWriteStatusCluster(t *testing.T) {
	var b strings.Builder
	WriteStatus(&b, &Status{Name: "web-01", Replicas: 3, ReplicasProblem: "stream X keeps 1 replicas",
		Cluster: &StreamCluster{Replicas: 3, Cluster: "sshguard", Leader: "nats-2",
			Peers: []Peer{{Name: "nats-1", Current: true}, {Name: "nats-3", Lag: 12}, {Name: "nats-4", Offline: true}}}})
	for _, want := range []string{"replicas 3 (the stream has 3: cluster sshguard, leader nats-2, nats-1 current, nats-3 lagging 12, nats-4 offline)\n",
		"warning: stream X keeps 1 replicas\n"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("no %q in %q", want, b.String())
		}
	}
}
