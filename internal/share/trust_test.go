package share

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"sshguard-go/internal/store"
	"sshguard-go/internal/testkit"
)

// trustServer is a server whose users are NATSUser's (hosts a, b and a
// compromised evil) and an administrator with every right.
func trustServer(t *testing.T) string {
	t.Helper()
	conf := "authorization {\n  users = [\n" + NATSUser("SSHGUARD_BANS", "a", `"pa"`) + NATSUser("SSHGUARD_BANS", "b", `"pb"`) +
		NATSUser("SSHGUARD_BANS", "evil", `"pe"`) + "{ user: admin, password: padmin }\n  ]\n}\n"
	return startServer(t, conf)
}

// jsAs connects to url as user (with its own inbox prefix, as a host does).
func jsAs(t *testing.T, url, user, password string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(url, nats.UserInfo(user, password), nats.CustomInboxPrefix(InboxPrefix(user)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// TestHostCannotRewriteStreams: a compromised host, with its own
// credentials of fleet nats-config, can change none of the fleet's three
// streams (a subject transform would store its bans as another host's, a
// republish would count its attempts as a second host's, a limit of one
// message would purge every host's bans), nor make a partition's consumer
// with another filter; every stream stays as the hosts made it.
func TestHostCannotRewriteStreams(t *testing.T) {
	url := trustServer(t)
	testSharer(t, url, "a", 1, nats.UserInfo("a", "pa"))
	db, err := store.Open(filepath.Join(t.TempDir(), "state.db"), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	sb := NewSharer(ShareConfig{URLs: []string{url}, Name: "b", Stream: "SSHGUARD_BANS", Share: true, Apply: true, MaxAge: time.Hour,
		Options: []nats.Option{nats.UserInfo("b", "pb")}, Instance: db.Instance()}, db, &recorder{bans: map[netip.Prefix]int{}},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	sb.Counter = NewCounter(CountConfig{Name: "b", Threshold: 6, Window: time.Hour, Quorum: 2, HostCap: 3, MaxTracked: 1000, Partitions: 4})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); sb.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	// b counts by partitions with its own credentials: its consumers made.
	testkit.Eventually(t, 15*time.Second, "b counting by partitions", func() (bool, string) {
		f := sb.Status().Fleetwide
		return f != nil && f.Listening && strings.HasPrefix(f.Mode, "partitioned"), fmt.Sprintf("%+v %q", f, sb.Status().LastError)
	})

	errs := make(chan error, 64)
	nc, err := nats.Connect(url, nats.UserInfo("evil", "pe"), nats.CustomInboxPrefix(InboxPrefix("evil")),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { errs <- err }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	// denied asks the server subject with v as a request and waits for
	// the server's refusal of that subject.
	denied := func(subject string, v any) {
		t.Helper()
		data, _ := json.Marshal(v)
		if err := nc.PublishRequest(subject, InboxPrefix("evil")+".x", data); err != nil {
			t.Fatal(err)
		}
		for {
			select {
			case err := <-errs:
				if strings.Contains(err.Error(), "Permissions Violation") && strings.Contains(err.Error(), subject) {
					return
				}
			case <-time.After(10 * time.Second):
				t.Errorf("no permissions violation for %s", subject)
				return
			}
		}
	}
	streams := []string{"SSHGUARD_BANS", countStreamName("SSHGUARD_BANS"), "KV_" + SummaryBucket}
	before := map[string]jetstream.StreamConfig{}
	for _, name := range streams {
		testkit.Eventually(t, 10*time.Second, "stream "+name, func() (bool, string) {
			st, err := js.Stream(t.Context(), name)
			if err != nil {
				return false, err.Error()
			}
			before[name] = st.CachedInfo().Config
			return true, ""
		})
	}
	for _, name := range streams {
		for _, change := range []func(*jetstream.StreamConfig){
			func(c *jetstream.StreamConfig) { // its bans stored as b's
				c.SubjectTransform = &jetstream.SubjectTransformConfig{Source: subjectPrefix + "evil", Destination: subjectPrefix + "b"}
			},
			func(c *jetstream.StreamConfig) { // its messages counted as a second host's attempts
				c.RePublish = &jetstream.RePublish{Source: ">", Destination: attemptsPrefix + "ghost"}
			},
			func(c *jetstream.StreamConfig) { c.MaxMsgs = 1 }, // every host's bans purged
		} {
			cfg := before[name]
			change(&cfg)
			denied("$JS.API.STREAM.UPDATE."+name, cfg)
		}
	}
	for _, name := range streams {
		st, err := js.Stream(t.Context(), name)
		if err != nil {
			t.Fatal(err)
		}
		if err := distrust(st.CachedInfo().Config, before[name]); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if h := st.CachedInfo().Config; h.MaxMsgs != before[name].MaxMsgs {
			t.Errorf("%s: max_msgs %d", name, h.MaxMsgs)
		}
	}
	// A partition's consumer with a filter that is not a partition's
	// subjects is refused; so is a consumer of evil's making elsewhere.
	cs := countStreamName("SSHGUARD_BANS")
	denied("$JS.API.CONSUMER.CREATE."+cs+".count-0."+partPrefix+">",
		map[string]any{"stream_name": cs, "config": jetstream.ConsumerConfig{Durable: "count-0", FilterSubject: partPrefix + ">"}})
	denied("$JS.API.CONSUMER.CREATE."+cs+".evil-all", map[string]any{"stream_name": cs, "config": jetstream.ConsumerConfig{Durable: "evil-all"}})
	// A consumer made with a partition's filter, but not the hosts' way
	// (acknowledged, so each attempt would be delivered again and counted
	// twice), is refused by a host that finds it.
	cctx, ccancel := context.WithTimeout(t.Context(), 10*time.Second)
	_, err = js.CreateOrUpdateConsumer(cctx, cs, jetstream.ConsumerConfig{Durable: "count-5", FilterSubject: partPrefix + "5.*",
		AckPolicy: jetstream.AckExplicitPolicy, AckWait: time.Second})
	ccancel()
	if err != nil {
		t.Fatalf("evil's consumer with a partition's filter: %v", err)
	}
	if _, err := countConsumer(t.Context(), js, cs, 5); err == nil || !strings.Contains(err.Error(), "not as a host makes it") {
		t.Errorf("a host took evil's consumer count-5: %v", err)
	}
}

// TestHostRefusesHostileStream: a compromised host that makes the stream
// of bans before any other, its own way (republishing what it publishes
// as another host's attempts), has it refused: a host names what is wrong
// in fleet status and neither takes nor sends anything through it; once
// the NATS administrator deletes it, the host makes it again and shares.
// The same for the stream of attempts and the summaries' bucket.
func TestHostRefusesHostileStream(t *testing.T) {
	for _, which := range []string{"bans", "attempts", "bucket"} {
		t.Run(which, func(t *testing.T) {
			url := trustServer(t)
			_, js := jsAs(t, url, "evil", "pe")
			cfg := jetstream.StreamConfig{Name: "SSHGUARD_BANS", Subjects: []string{subjectPrefix + ">"}, Storage: jetstream.FileStorage,
				RePublish: &jetstream.RePublish{Source: subjectPrefix + "evil", Destination: attemptsPrefix + "ghost"}}
			switch which {
			case "attempts":
				cfg.Name, cfg.Subjects = countStreamName("SSHGUARD_BANS"), []string{partPrefix + ">"}
				cfg.RePublish.Source = partPrefix + "*.evil"
			case "bucket":
				cfg.Name, cfg.Subjects = "KV_"+SummaryBucket, []string{"$KV." + SummaryBucket + ".>"}
				cfg.MaxMsgsPerSubject, cfg.AllowRollup, cfg.DenyDelete = 1, true, true // a key-value bucket's
				cfg.RePublish.Source = "$KV." + SummaryBucket + ".evil"
			}
			if _, err := js.CreateStream(t.Context(), cfg); err != nil {
				t.Fatalf("evil making %s: %v", cfg.Name, err)
			}
			sa, dba, _ := testSharer(t, url, "a", 1, nats.UserInfo("a", "pa"))
			testkit.Eventually(t, 15*time.Second, "a refuses "+cfg.Name, func() (bool, string) {
				e := sa.Status().LastError
				return strings.Contains(e, "stream "+cfg.Name+" is not as a host makes it") && strings.Contains(e, "republish"), e
			})
			localBan(t, sa, dba, netip.MustParsePrefix("203.0.113.9/32"))
			if st := sa.Status(); st.Published != 0 {
				t.Errorf("a published %d bans through a stream it does not trust", st.Published)
			}

			_, adm := jsAs(t, url, "admin", "padmin")
			if err := adm.DeleteStream(t.Context(), cfg.Name); err != nil {
				t.Fatal(err)
			}
			testkit.Eventually(t, 15*time.Second, "a shares once the stream is its own", func() (bool, string) {
				st := sa.Status()
				return st.Published == 1, fmt.Sprintf("%+v", st)
			})
			st, err := adm.Stream(t.Context(), cfg.Name)
			if err != nil {
				t.Fatal(err)
			}
			if st.CachedInfo().Config.RePublish != nil {
				t.Errorf("%s made again with a republish", cfg.Name)
			}
		})
	}
}

// TestDistrust names each feature of a stream that makes the server
// publish or store in another subject than the one published to, and
// takes a stream as a host makes it.
func TestDistrust(t *testing.T) {
	want := jetstream.StreamConfig{Name: "S", Subjects: []string{"sshguard.bans.>"}}
	if err := distrust(want, want); err != nil {
		t.Fatal(err)
	}
	for name, change := range map[string]func(*jetstream.StreamConfig){
		"subjects": func(c *jetstream.StreamConfig) { c.Subjects = []string{">"} },
		"subject transform": func(c *jetstream.StreamConfig) {
			c.SubjectTransform = &jetstream.SubjectTransformConfig{Source: "a", Destination: "b"}
		},
		"republish":          func(c *jetstream.StreamConfig) { c.RePublish = &jetstream.RePublish{Source: ">", Destination: "x.>"} },
		"mirror":             func(c *jetstream.StreamConfig) { c.Mirror = &jetstream.StreamSource{Name: "O"} },
		"source":             func(c *jetstream.StreamConfig) { c.Sources = []*jetstream.StreamSource{{Name: "O"}} },
		"message schedules":  func(c *jetstream.StreamConfig) { c.AllowMsgSchedules = true },
		"batched publishing": func(c *jetstream.StreamConfig) { c.AllowBatchPublish = true },
		"atomic publishing":  func(c *jetstream.StreamConfig) { c.AllowAtomicPublish = true },
		"message counters":   func(c *jetstream.StreamConfig) { c.AllowMsgCounter = true },
		"rollups":            func(c *jetstream.StreamConfig) { c.AllowRollup = true },
		"sealed":             func(c *jetstream.StreamConfig) { c.Sealed = true },
		"retention":          func(c *jetstream.StreamConfig) { c.Retention = jetstream.WorkQueuePolicy },
	} {
		have := want
		change(&have)
		if err := distrust(have, want); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
