package share

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// The three streams a fleet shares (its bans, its attempts for
// partitioned counting, its hosts' summaries) are where its trust lies: a
// stream that transforms, republishes, mirrors or sources subjects, or
// that schedules or batches messages, makes the server publish, in no
// host's name, on a subject the publisher's own permissions deny it: one
// host's message stored as another's ban or unban, or counted as a second
// host's attempts. A stream with other limits than a host makes them can
// purge every host's bans.
//
// So a host may make these streams (the first host to start does) but
// never change them (fleet nats-config grants no update), a host makes all
// three at its start whether it uses them or not (none is left for another
// to make first, its own way), and a host trusts a stream only as a host
// makes it: one that is not is refused, named, and nothing of the fleet's
// is taken or sent through it until the NATS administrator mends or
// deletes it.

// distrust is why a stream's configuration have is not one a host made
// with want: each feature that makes the server publish or store on
// another subject than the one published to, named; nil when none.
func distrust(have, want jetstream.StreamConfig) error {
	var why []string
	if !slices.Equal(have.Subjects, want.Subjects) {
		why = append(why, fmt.Sprintf("subjects %q (a host makes %q)", have.Subjects, want.Subjects))
	}
	if t := have.SubjectTransform; t != nil {
		why = append(why, fmt.Sprintf("a subject transform (%s -> %s)", t.Source, t.Destination))
	}
	if r := have.RePublish; r != nil {
		why = append(why, fmt.Sprintf("a republish (%s -> %s)", r.Source, r.Destination))
	}
	if have.Mirror != nil {
		why = append(why, "a mirror of "+have.Mirror.Name)
	}
	for _, src := range have.Sources {
		if src != nil {
			why = append(why, "a source "+src.Name)
		}
	}
	for _, f := range []struct {
		name string
		on   bool
	}{
		{"message schedules", have.AllowMsgSchedules},
		{"batched publishing", have.AllowBatchPublish},
		{"atomic publishing", have.AllowAtomicPublish},
		{"message counters", have.AllowMsgCounter},
		{"rollups", have.AllowRollup && !want.AllowRollup},
		{"sealed", have.Sealed},
	} {
		if f.on {
			why = append(why, f.name)
		}
	}
	if have.Retention != want.Retention {
		why = append(why, fmt.Sprintf("retention %s (a host makes %s)", have.Retention, want.Retention))
	}
	if len(why) == 0 {
		return nil
	}
	return &untrustedError{fmt.Sprintf("stream %s is not as a host makes it: %s; not trusted: the fleet's bans and attempts are neither taken nor sent through it until the NATS administrator deletes it (`nats stream rm %s`; a host makes it again) or mends it",
		have.Name, strings.Join(why, ", "), have.Name)}
}

// untrustedError is distrust's: a stream or consumer not as a host makes
// it.
type untrustedError struct{ msg string }

func (e *untrustedError) Error() string { return e.msg }

// limitsDiffer names the limits of have that are not want's (a host
// made the stream with others, or the fleet's configuration changed
// since): a host may not change them, the administrator may.
func limitsDiffer(have, want jetstream.StreamConfig) []string {
	var out []string
	add := func(name string, h, w any) {
		if h != w {
			out = append(out, fmt.Sprintf("%s %v (a host wants %v)", name, h, w))
		}
	}
	norm := func(n int64) int64 { // 0 and -1: no limit
		if n <= 0 {
			return -1
		}
		return n
	}
	add("max_age", have.MaxAge, want.MaxAge)
	add("max_msgs_per_subject", norm(have.MaxMsgsPerSubject), norm(want.MaxMsgsPerSubject))
	add("max_msgs", norm(have.MaxMsgs), norm(want.MaxMsgs))
	add("max_bytes", norm(have.MaxBytes), norm(want.MaxBytes))
	add("max_msg_size", have.MaxMsgSize, want.MaxMsgSize)
	add("discard", have.Discard, want.Discard)
	if want.Duplicates > 0 {
		add("duplicate_window", have.Duplicates, want.Duplicates)
	}
	return out
}

// ensureSiblings makes the stream of attempts and the summaries' bucket
// when they are missing, and checks them (and the bucket's replicas):
// the error of one not to be trusted. One the server would not make
// (fleet.replicas more than it can keep) is said in the log and left to
// what uses it, which asks again.
func (s *Sharer) ensureSiblings(ctx context.Context, js jetstream.JetStream) error {
	var untrusted *untrustedError
	if _, err := s.ensureCountStream(ctx, js); errors.As(err, &untrusted) {
		return err
	} else if err != nil && ctx.Err() == nil {
		s.log.Warn("fleet: the stream of attempts", "err", err)
	}
	_, problem, err := openSummaries(ctx, js, s.replicaCount())
	if errors.As(err, &untrusted) {
		return err
	} else if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("fleet: the summaries' bucket", "err", err)
		}
		return nil
	}
	s.setReplicasProblem("bucket", problem)
	return nil
}

// updateTimeout bounds a host's asking to change a stream: a server
// whose users may not (fleet nats-config's) never answers it.
const updateTimeout = 2 * time.Second
