package share

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"sshguard-go/internal/store"
	"sshguard-go/internal/testkit"
)

// TestStandbysBounded: 20 hosts counting fleet-wide on 4 partitions,
// started together: each partition ends with standbyMin to standbyMax
// hosts pulling on it (as the hosts say, and the server's waiting pulls
// within that), not 20. Every standby of partition 0 stopped: others
// take it up again, so the partition is never left without one; its
// consumer deleted and made again: the hosts pull on the new one.
func TestStandbysBounded(t *testing.T) {
	url := startServer(t, "")
	const hosts, parts = 20, 4
	pool := PoolTimes{First: 50 * time.Millisecond, Soon: 200 * time.Millisecond, Every: 400 * time.Millisecond}
	var sharers []*Sharer
	var stops []context.CancelFunc
	for i := range hosts {
		s, stop := poolSharer(t, url, fmt.Sprintf("h%02d", i), parts, pool)
		sharers, stops = append(sharers, s), append(stops, stop)
	}
	standbys := func(part int) (on []int) {
		for i, s := range sharers {
			if stops[i] != nil && slices.Contains(s.Counter.Status().Standby, part) {
				on = append(on, i)
			}
		}
		return on
	}
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	waiting := func(part int) int {
		c, err := js.Consumer(context.Background(), countStreamName("SSHGUARD_BANS"), fmt.Sprintf("count-%d", part))
		if err != nil {
			return -1
		}
		return c.CachedInfo().NumWaiting
	}
	bounded := func(what string) {
		t.Helper()
		testkit.Eventually(t, 30*time.Second, what, func() (bool, string) {
			var why string
			ok := true
			for k := range parts {
				on, w := standbys(k), waiting(k)
				why += fmt.Sprintf("partition %d: hosts %v, %d pulls waiting; ", k, on, w)
				if len(on) < standbyMin || len(on) > standbyMax+1 || w < 1 || w > 2*(standbyMax+1) {
					ok = false
				}
			}
			return ok, why
		})
	}
	bounded("4 to 8 standbys a partition")
	for _, i := range standbys(0) {
		stops[i]()
		stops[i] = nil
	}
	bounded("partition 0 taken up again")
	// Its consumer deleted and made again (a daemon restarted after the
	// stream of attempts was lost): the clients of the old one gave up,
	// and the hosts notice and pull on the new one.
	ctx := context.Background()
	stream := countStreamName("SSHGUARD_BANS")
	if err := js.DeleteConsumer(ctx, stream, "count-0"); err != nil {
		t.Fatal(err)
	}
	if _, err := countConsumer(ctx, js, stream, 0); err != nil {
		t.Fatal(err)
	}
	bounded("the new consumer of partition 0 pulled on")
	testkit.Eventually(t, 30*time.Second, "every host standing by for partition 0 pulling on it", func() (bool, string) {
		on, w := standbys(0), waiting(0)
		return len(on) <= w, fmt.Sprintf("hosts %v, %d pulls waiting", on, w)
	})
}

// poolSharer is a host of the fleet sharing its bans and counting
// fleet-wide on parts partitions with the pool's times; the function
// returned stops it.
func poolSharer(t *testing.T, url, name string, parts int, pool PoolTimes) (*Sharer, context.CancelFunc) {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "state.db"), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	s := NewSharer(ShareConfig{URLs: []string{url}, Name: name, Stream: "SSHGUARD_BANS", Share: true, Apply: true,
		MaxAge: time.Hour, Instance: db.Instance()}, db, &recorder{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	s.Counter = NewCounter(CountConfig{Name: name, Threshold: 10, Window: time.Hour, Quorum: 2, HostCap: 3, MaxTracked: 1000,
		Partitions: parts, Pool: pool})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	var once bool
	stop := func() {
		if !once {
			once = true
			cancel()
			<-done
		}
	}
	t.Cleanup(stop)
	return s, stop
}
