package share

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// A NATS cluster keeps the stream of bans and the summaries' bucket on
// fleet.replicas servers: with 3, one server lost (or cut off) leaves two
// that hold every acknowledged ban and elect a leader among them.

// StreamCluster is what the server reports of the stream's placement.
type StreamCluster struct {
	Replicas int    `json:"replicas"` // the stream's replica count
	Cluster  string `json:"cluster,omitempty"`
	Leader   string `json:"leader,omitempty"` // the server leading the stream ("" : none, or a single server)
	Peers    []Peer `json:"peers,omitempty"`  // the other replicas
	Error    string `json:"error,omitempty"`  // the stream's information could not be read
}

// Peer is one replica of the stream besides its leader.
type Peer struct {
	Name    string `json:"name"`
	Current bool   `json:"current"` // up to date with the leader
	Offline bool   `json:"offline,omitempty"`
	Lag     uint64 `json:"lag,omitempty"` // operations behind the leader
}

// clusterEvery is how often the stream's placement is asked for (for
// fleet status and the metrics, which then never wait for the server).
const clusterEvery = 2 * time.Second

// replicasRetry is how often a replica count the server refused is asked
// for again: a cluster whose servers are starting (or one is down) says
// "no suitable peers" until they are up, and a daemon started before them
// must still end with fleet.replicas.
const replicasRetry = 5 * time.Second

// watchCluster keeps what the server says of the stream until ctx ends,
// and asks again for fleet.replicas while the server refuses it.
func (s *Sharer) watchCluster(ctx context.Context, js jetstream.JetStream) {
	tick := time.NewTicker(clusterEvery)
	defer tick.Stop()
	var retried time.Time
	for {
		if s.connected() && time.Since(retried) >= replicasRetry && s.replicasRefused() {
			retried = time.Now()
			s.retryReplicas(ctx, js)
		}
		if s.connected() {
			c := streamCluster(ctx, js, s.cfg.Stream)
			s.mu.Lock()
			s.cluster = c
			s.mu.Unlock()
			if c.Error == "" && c.Replicas == s.replicaCount() {
				// Another host's change took (the server refused ours
				// while a server was down): no problem left.
				s.setReplicasProblem("stream", "")
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// replicasRefused says whether the stream or the bucket has not
// fleet.replicas.
func (s *Sharer) replicasRefused() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.replicas) > 0
}

// retryReplicas asks the server again for fleet.replicas on what has
// another count.
func (s *Sharer) retryReplicas(ctx context.Context, js jetstream.JetStream) {
	s.mu.Lock()
	_, stream := s.replicas["stream"]
	_, bucket := s.replicas["bucket"]
	s.mu.Unlock()
	if stream {
		if err := s.ensureStream(ctx, js); err != nil && ctx.Err() == nil {
			s.log.Debug("fleet: the stream's replicas asked again", "err", err)
		}
	}
	if bucket {
		if _, problem, err := openSummaries(ctx, js, s.replicaCount()); err == nil {
			s.setReplicasProblem("bucket", problem)
		}
	}
}

func (s *Sharer) connected() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.server != "" // kept by the connection's handlers: never waits on it
}

// streamCluster asks the server about stream (2 s at most).
func streamCluster(ctx context.Context, js jetstream.JetStream, stream string) *StreamCluster {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, stream)
	if err != nil {
		return &StreamCluster{Error: err.Error()}
	}
	info := st.CachedInfo()
	out := &StreamCluster{Replicas: info.Config.Replicas}
	if c := info.Cluster; c != nil {
		out.Cluster, out.Leader = c.Name, c.Leader
		for _, p := range c.Replicas {
			if p != nil {
				out.Peers = append(out.Peers, Peer{Name: p.Name, Current: p.Current, Offline: p.Offline, Lag: p.Lag})
			}
		}
	}
	return out
}

// replicaCount is fleet.replicas (1 when unset).
func (s *Sharer) replicaCount() int {
	if s.cfg.Replicas < 1 {
		return 1
	}
	return s.cfg.Replicas
}

// setReplicasProblem records (and logs, when new) why what ("stream",
// "bucket") has not fleet.replicas; "" clears it.
func (s *Sharer) setReplicasProblem(what, problem string) {
	s.mu.Lock()
	old := s.replicas[what]
	if problem == "" {
		delete(s.replicas, what)
	} else {
		if s.replicas == nil {
			s.replicas = map[string]string{}
		}
		s.replicas[what] = problem
	}
	s.mu.Unlock()
	if problem != "" && problem != old {
		s.log.Warn("fleet: " + problem)
	}
}

func (s *Sharer) replicasProblem() string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(s.replicas)) {
		out = append(out, s.replicas[k])
	}
	return strings.Join(out, "; ")
}

// streamReplicas is "" when have is want, else why not.
func streamReplicas(stream string, have, want int, refused error) string {
	switch {
	case have == want:
		return ""
	case refused != nil:
		return fmt.Sprintf("stream %s keeps %d replicas, fleet.replicas is %d: the server refused the change (%v); %s", stream, have, want, refused, replicasHint(want))
	default:
		return fmt.Sprintf("stream %s keeps %d replicas, fleet.replicas is %d (the server's choice); %s", stream, have, want, replicasHint(want))
	}
}

// replicasErr explains a refusal to make what with replicas.
func replicasErr(what string, replicas int, err error) error {
	var apiErr *jetstream.APIError
	if replicas > 1 && (errors.As(err, &apiErr) || errors.Is(err, jetstream.ErrJetStreamNotEnabled)) {
		return fmt.Errorf("making %s with %d replicas: %w; %s", what, replicas, err, replicasHint(replicas))
	}
	return err
}

func replicasHint(want int) string {
	if want > 1 {
		return fmt.Sprintf("a single server keeps 1 replica, a cluster needs %d servers with JetStream up: set fleet.replicas to what the servers can keep", want)
	}
	return "set fleet.replicas to the stream's count, or change the stream with `nats stream edit`"
}
