package share

import (
	"context"
	"encoding/json"
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

// OpenSummaries makes sure the summaries' bucket exists and returns it.
func OpenSummaries(ctx context.Context, js jetstream.JetStream) (jetstream.KeyValue, error) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return js.CreateOrUpdateKeyValue(cctx, jetstream.KeyValueConfig{Bucket: SummaryBucket, TTL: summaryTTL, History: 1,
		MaxValueSize: 1 << 20, Storage: jetstream.FileStorage, Description: "sshguard-go: each host's last days (key: the host)"})
}

// SummaryEvery is how often a host puts its summary in the bucket.
var SummaryEvery = time.Minute

// PublishSummaries puts summary() into the bucket now and every
// SummaryEvery until ctx ends (quietly skipping while NATS is away).
func (s *Sharer) PublishSummaries(ctx context.Context, summary func() (api.Summary, error)) {
	var kv jetstream.KeyValue
	tick := time.NewTicker(SummaryEvery)
	defer tick.Stop()
	for {
		s.mu.Lock()
		js := s.js
		s.mu.Unlock()
		if js != nil {
			var err error
			if kv == nil {
				kv, err = OpenSummaries(ctx, js)
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
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
