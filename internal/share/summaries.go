package share

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"sshguard-go/internal/api"
)

// Summaries in a key-value bucket: each host with fleet sharing puts its
// last days there every minute (key: its name), and `fleet serve --nats`
// builds the fleet view from the bucket, watching it, without asking any
// host: for fleets of thousands.

// SummaryDays is how many days, up to today, a host's summary holds (the
// fleet chart's length).
const SummaryDays = 14

// SummaryBucket is the key-value bucket of the hosts' summaries.
const SummaryBucket = "SSHGUARD_SUMMARIES"

// summaryTTL is how long a host's summary stays without an update.
const summaryTTL = 7 * 24 * time.Hour

// HostSummary is one host's entry in the bucket.
type HostSummary struct {
	Updated time.Time   `json:"updated"`
	Summary api.Summary `json:"summary"`
}

// OpenSummaries returns the summaries' bucket, making it (one replica)
// when it does not exist yet; one that exists is taken as it is (its
// replicas are the hosts' fleet.replicas: a reader never changes them).
func OpenSummaries(ctx context.Context, js jetstream.JetStream) (jetstream.KeyValue, error) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	kv, err := js.KeyValue(cctx, SummaryBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return js.CreateOrUpdateKeyValue(cctx, summaryConfig(1))
	}
	return kv, err
}

func summaryConfig(replicas int) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{Bucket: SummaryBucket, TTL: summaryTTL, History: 1, Replicas: replicas,
		MaxValueSize: 1 << 20, Storage: jetstream.FileStorage, Description: "sshguard-go: each host's last days (key: the host)"}
}

// openSummaries makes the bucket as a host wants it, with replicas, when
// it is missing, and checks it (see distrust); a server refusing the
// replica count (or a host's user that may not change the bucket) leaves
// the bucket as it is, and problem says so.
func openSummaries(ctx context.Context, js jetstream.JetStream, replicas int) (kv jetstream.KeyValue, problem string, err error) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	kv, err = js.KeyValue(cctx, SummaryBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = js.CreateKeyValue(cctx, summaryConfig(replicas))
		if errors.Is(err, jetstream.ErrBucketExists) {
			kv, err = js.KeyValue(cctx, SummaryBucket) // another host made it meanwhile
		}
	}
	if err != nil {
		return nil, "", replicasErr("bucket "+SummaryBucket, replicas, err)
	}
	st, err := kv.Status(cctx)
	if err != nil {
		return nil, "", err
	}
	bs, ok := st.(*jetstream.KeyValueBucketStatus)
	if !ok {
		return nil, "", fmt.Errorf("bucket %s: no stream information", SummaryBucket)
	}
	have := bs.StreamInfo().Config
	want := jetstream.StreamConfig{Name: "KV_" + SummaryBucket, Subjects: []string{"$KV." + SummaryBucket + ".>"},
		Retention: jetstream.LimitsPolicy, AllowRollup: true}
	if err := distrust(have, want); err != nil {
		return nil, "", err
	}
	if have.Replicas == replicas {
		return kv, "", nil
	}
	uctx, ucancel := context.WithTimeout(cctx, updateTimeout)
	defer ucancel()
	kv2, err := js.UpdateKeyValue(uctx, summaryConfig(replicas))
	if err == nil {
		return kv2, bucketReplicas(cctx, kv2, replicas), nil
	}
	return kv, fmt.Sprintf("bucket %s keeps %d replicas, fleet.replicas is %d: the server refused the change (%v); %s", SummaryBucket, have.Replicas, replicas, err, replicasHint(replicas)), nil
}

// bucketReplicas is "" when kv has replicas, else why not.
func bucketReplicas(ctx context.Context, kv jetstream.KeyValue, replicas int) string {
	st, err := kv.Status(ctx)
	if err != nil {
		return ""
	}
	bs, ok := st.(*jetstream.KeyValueBucketStatus)
	if !ok {
		return ""
	}
	if have := bs.StreamInfo().Config.Replicas; have != replicas {
		return fmt.Sprintf("bucket %s keeps %d replicas, fleet.replicas is %d (the server's choice)", SummaryBucket, have, replicas)
	}
	return ""
}

// DefaultSummaryEvery is how often a host puts its summary in the bucket
// unless ShareConfig.SummaryEvery says otherwise.
const DefaultSummaryEvery = time.Minute

// PublishSummaries puts summary() into the bucket once connected, then
// every ShareConfig.SummaryEvery until ctx ends (quietly skipping while
// NATS is away).
func (s *Sharer) PublishSummaries(ctx context.Context, summary func() (api.Summary, error)) {
	select {
	case <-ctx.Done():
		return
	case <-s.ready:
	}
	s.mu.Lock()
	js := s.js
	s.mu.Unlock()
	every := s.cfg.SummaryEvery
	if every <= 0 {
		every = DefaultSummaryEvery
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	var kv jetstream.KeyValue
	for {
		var err error
		if kv == nil {
			var problem string
			if kv, problem, err = openSummaries(ctx, js, s.replicaCount()); err == nil {
				s.setReplicasProblem("bucket", problem)
			}
		}
		if err == nil {
			var sum api.Summary
			if sum, err = summary(); err == nil {
				data, _ := json.Marshal(HostSummary{Updated: time.Now(), Summary: sum})
				cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				_, err = kv.Put(cctx, s.cfg.Name, data)
				cancel()
			}
		}
		if err != nil && ctx.Err() == nil {
			s.fail("summary", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
