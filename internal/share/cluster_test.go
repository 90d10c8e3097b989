package share

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"sshguard-go/internal/testkit"
)

// TestReplicasRefused: a single server and fleet.replicas = 3. A stream
// made before with one replica cannot have three there: the sharer says
// why (status, and the warning line of fleet status) and shares on with
// the stream as it is; the bucket likewise.
func TestReplicasRefused(t *testing.T) {
	url := startServer(t, "")
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	if _, err := js.CreateStream(t.Context(), jetstream.StreamConfig{Name: "SSHGUARD_BANS", Subjects: []string{subjectPrefix + ">"}, Replicas: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateKeyValue(t.Context(), summaryConfig(1)); err != nil {
		t.Fatal(err)
	}
	sa, dba, _ := testSharer(t, url, "a", 3)
	var st Status
	testkit.Eventually(t, 10*time.Second, "the refusal explained", func() (bool, string) {
		st = sa.Status()
		return st.Cluster != nil && strings.Contains(st.ReplicasProblem, "stream SSHGUARD_BANS keeps 1 replicas, fleet.replicas is 3") &&
			strings.Contains(st.ReplicasProblem, "bucket "+SummaryBucket+" keeps 1 replicas"), fmt.Sprintf("%+v", st)
	})
	// b once a has changed the stream's limits: the embedded server
	// (nats-server 2.15.2) reads a stream's configuration without its lock
	// while it makes a consumer, and the race detector fails the test when
	// a's change and b's consumer meet.
	_, _, recb := testSharer(t, url, "b", 3)
	if st.Replicas != 3 || st.Cluster == nil || st.Cluster.Replicas != 1 || st.Cluster.Cluster != "" {
		t.Errorf("status %+v, cluster %+v", st, st.Cluster)
	}
	var b strings.Builder
	WriteStatus(&b, &st)
	if !strings.Contains(b.String(), "replicas 3 (the stream has 1, a single server)\nwarning: ") || !strings.Contains(b.String(), "stream SSHGUARD_BANS keeps 1 replicas, fleet.replicas is 3") {
		t.Errorf("fleet status:\n%s", b.String())
	}
	p := netip.MustParsePrefix("203.0.113.3/32")
	localBan(t, sa, dba, p)
	testkit.Eventually(t, 10*time.Second, "shared all the same", func() (bool, string) {
		return recb.count(p) == 1, fmt.Sprintf("%+v", sa.Status())
	})
}

// TestReplicasNew: a single server asked to make the stream with three
// replicas: the error says what to do.
func TestReplicasNew(t *testing.T) {
	url := startServer(t, "")
	sa, _, _ := testSharer(t, url, "a", 3)
	testkit.Eventually(t, 10*time.Second, "the error explained", func() (bool, string) {
		st := sa.Status()
		return strings.Contains(st.LastError+st.ReplicasProblem, "fleet.replicas"), fmt.Sprintf("%+v", st)
	})
}
