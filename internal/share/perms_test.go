package share

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"sshguard-go/internal/api"
	"sshguard-go/internal/store"
	"sshguard-go/internal/testkit"
)

// recorder is an Applier that keeps what it was asked to ban.
type recorder struct {
	mu   sync.Mutex
	bans map[netip.Prefix]int
}

func (r *recorder) BanRemote(_ context.Context, bans []Remote) ([]string, []error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, b := range bans {
		r.bans[b.Prefix]++
	}
	return make([]string, len(bans)), make([]error, len(bans))
}

func (r *recorder) UnbanRemote(context.Context, netip.Prefix, string) (bool, error) { return true, nil }
func (r *recorder) BanHere(context.Context, netip.Prefix, string) (string, error)   { return "", nil }

func (r *recorder) count(p netip.Prefix) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.bans[p]
}

// testSharer runs a Sharer named name on url with a database of its own
// until the test ends.
func testSharer(t *testing.T, url, name string, replicas int, opts ...nats.Option) (*Sharer, *store.DB, *recorder) {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "state.db"), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	rec := &recorder{bans: map[netip.Prefix]int{}}
	s := NewSharer(ShareConfig{URLs: []string{url}, Name: name, Stream: "SSHGUARD_BANS", Replicas: replicas, Share: true, Apply: true,
		MaxAge: time.Hour, Options: opts, Instance: db.Instance(), SummaryEvery: 100 * time.Millisecond}, db, rec, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	go s.PublishSummaries(ctx, func() (api.Summary, error) { return api.Summary{}, nil })
	t.Cleanup(func() { cancel(); <-done })
	return s, db, rec
}

// localBan records a ban of p on db with its message in the share outbox,
// as the engine does.
func localBan(t *testing.T, s *Sharer, db *store.DB, p netip.Prefix) {
	t.Helper()
	b := &store.Ban{Prefix: p, Start: time.Now(), Expires: time.Now().Add(time.Hour), Reason: "test", Origin: "detected"}
	if _, err := db.RecordBans([]*store.Ban{b}, nil, BanMessage); err != nil {
		t.Fatal(err)
	}
	s.Wake()
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startServer starts a nats-server with JetStream from the configuration
// text conf (its listen and store lines added).
func startServer(t *testing.T, conf string) string {
	t.Helper()
	port := freePort(t)
	path := filepath.Join(t.TempDir(), "nats.conf")
	conf = fmt.Sprintf("listen: 127.0.0.1:%d\njetstream { store_dir: %q }\n%s", port, t.TempDir(), conf)
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(path)
	if err != nil {
		t.Fatalf("%v\n%s", err, conf)
	}
	opts.NoLog, opts.NoSigs = true, true
	srv, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS server not ready")
	}
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	return fmt.Sprintf("nats://127.0.0.1:%d", port)
}

// TestHostPermissions: a server whose users are NATSUser's output (the
// README's block): hosts a and b share their bans and summaries and
// apply each other's; a cannot publish on b's subject (nor on b's
// summary, nor pull from b's consumer), so nothing reaches the stream in
// b's name.
func TestHostPermissions(t *testing.T) {
	conf := "authorization {\n  users = [\n" + NATSUser("SSHGUARD_BANS", "a", `"pa"`) + NATSUser("SSHGUARD_BANS", "b", `"pb"`) + "  ]\n}\n"
	url := startServer(t, conf)
	sa, dba, reca := testSharer(t, url, "a", 1, nats.UserInfo("a", "pa"))
	sb, dbb, recb := testSharer(t, url, "b", 1, nats.UserInfo("b", "pb"))
	pa, pb := netip.MustParsePrefix("203.0.113.1/32"), netip.MustParsePrefix("203.0.113.2/32")
	localBan(t, sa, dba, pa)
	localBan(t, sb, dbb, pb)
	testkit.Eventually(t, 10*time.Second, "each applied the other's", func() (bool, string) {
		return recb.count(pa) == 1 && reca.count(pb) == 1, fmt.Sprintf("a: %+v, b: %+v", sa.Status(), sb.Status())
	})
	for _, s := range []*Sharer{sa, sb} {
		testkit.Eventually(t, 10*time.Second, "nothing refused", func() (bool, string) {
			st := s.Status()
			return st.Pending == 0 && st.LastError == "", fmt.Sprintf("%+v", st)
		})
	}

	testkit.Eventually(t, 10*time.Second, "both summaries in the bucket", func() (bool, string) {
		sa.mu.Lock()
		js := sa.js
		sa.mu.Unlock()
		if js == nil {
			return false, "not connected"
		}
		st, err := js.Stream(t.Context(), "KV_"+SummaryBucket)
		if err != nil {
			return false, err.Error()
		}
		info, err := st.Info(t.Context(), jetstream.WithSubjectFilter("$KV."+SummaryBucket+".>"))
		if err != nil {
			return false, err.Error()
		}
		subj := info.State.Subjects
		return subj["$KV."+SummaryBucket+".a"] >= 1 && subj["$KV."+SummaryBucket+".b"] >= 1, fmt.Sprint(subj)
	})

	// a as itself, trying b's subjects.
	errs := make(chan error, 10)
	nc, err := nats.Connect(url, nats.UserInfo("a", "pa"), nats.CustomInboxPrefix(InboxPrefix("a")),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { errs <- err }))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	forged := BanMessage(&store.Ban{Prefix: netip.MustParsePrefix("192.0.2.9/32"), Start: time.Now(), Expires: time.Now().Add(time.Hour), Origin: "detected"})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := js.Publish(ctx, subjectPrefix+"a", forged); err != nil {
		t.Fatalf("a cannot publish its own: %v", err)
	}
	for _, subj := range []string{subjectPrefix + "b", "$KV." + SummaryBucket + ".b", "$JS.API.CONSUMER.MSG.NEXT.SSHGUARD_BANS.host-b", "$JS.API.STREAM.DELETE.SSHGUARD_BANS"} {
		if err := nc.Publish(subj, []byte("{}")); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-errs:
			if !strings.Contains(err.Error(), "Permissions Violation") || !strings.Contains(err.Error(), subj) {
				t.Errorf("%s: %v", subj, err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("%s: no permissions violation", subj)
		}
	}
	if _, err := nc.SubscribeSync(InboxPrefix("b") + ".x"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errs:
		if !strings.Contains(err.Error(), "Permissions Violation") {
			t.Errorf("subscribe to b's inbox: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("a subscribed to b's inbox")
	}
	// In the stream: a's two, b's one; nothing more in b's name.
	st, err := js.Stream(ctx, "SSHGUARD_BANS")
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(subjectPrefix+">"))
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Subjects[subjectPrefix+"b"] != 1 || info.State.Subjects[subjectPrefix+"a"] != 2 {
		t.Errorf("stream subjects %v", info.State.Subjects)
	}
}
