package fleet

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"sshguard-go/internal/api"
	"sshguard-go/internal/share"
	"sshguard-go/internal/testkit"
)

// startNATS runs an embedded nats-server with JetStream on loopback for
// the test and returns its URL.
func startNATS(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: tb.TempDir(), NoLog: true, NoSigs: true})
	if err != nil {
		tb.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		tb.Fatal("NATS server not ready")
	}
	tb.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return fmt.Sprintf("nats://127.0.0.1:%d", port)
}

// simFleet is what putFleet put in the bucket, to check the view against.
type simFleet struct {
	n      int
	now    time.Time
	down   map[string]bool  // hosts whose summary is 10 minutes old
	failed map[string]int64 // each host's failed attempts today
	names  []string
}

// Every host lists the common attacker first, banned on every tenth host;
// 198.51.100.K on the hosts i%10 == K; the rest its own addresses.
const commonAttacker = "203.0.113.7"

func simName(i int) string { return fmt.Sprintf("web-%04d", i) }

// putFleet puts n hosts' summaries in the bucket at url: every 100th host
// (from the 50th) silent for 10 minutes, the others fresh. Host 0's top
// addresses also hold what a hostile host would send (HTML for an
// address, negative and huge counts), which the view must drop or bound.
func putFleet(tb testing.TB, url string, n int) *simFleet {
	tb.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		tb.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	kv, err := share.OpenSummaries(ctx, js)
	if err != nil {
		tb.Fatal(err)
	}
	now := time.Now()
	sf := &simFleet{n: n, now: now, down: map[string]bool{}, failed: map[string]int64{}}
	for i := range n {
		name := simName(i)
		sf.names = append(sf.names, name)
		var days []api.Day
		for d := share.SummaryDays - 1; d >= 0; d-- {
			days = append(days, api.Day{Date: now.AddDate(0, 0, -d).Format(time.DateOnly), Failed: int64(10*i + d), Probes: int64(i % 7), Addresses: 3, Bans: int64(i % 3), Logins: 1})
		}
		sf.failed[name] = int64(10 * i)
		top := []api.AddrCount{{IP: commonAttacker, Failed: 5, Probes: 1, Banned: i%10 == 0},
			{IP: fmt.Sprintf("198.51.100.%d", i%10), Failed: 3}}
		for j := range 18 {
			top = append(top, api.AddrCount{IP: fmt.Sprintf("10.%d.%d.%d", i/256, i%256, j), Failed: 1})
		}
		if i == 0 {
			top = append([]api.AddrCount{{IP: `<img src=x onerror="document.documentElement.dataset.pwned=1">`, Failed: 1 << 50}, {IP: "192.0.2.1", Failed: -5, Probes: 1 << 62}}, top...)
		}
		updated := now
		if i%100 == 50 {
			updated = now.Add(-10 * time.Minute)
			sf.down[name] = true
		}
		data, _ := json.Marshal(share.HostSummary{Updated: updated, Summary: api.Summary{Host: name, Days: days, TopAddresses: top, TopUsers: []api.UserCount{}}})
		if _, err := kv.Put(ctx, name, data); err != nil {
			tb.Fatal(err)
		}
	}
	return sf
}

// watchFleet follows the bucket at url until the test ends and waits for
// n hosts in it.
func watchFleet(tb testing.TB, url string, n int) *KVSource {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	tb.Cleanup(cancel)
	src, err := WatchSummaries(ctx, []string{url})
	if err != nil {
		tb.Fatal(err)
	}
	testkit.Eventually(tb, time.Minute, fmt.Sprintf("%d hosts in the view", n), func() (bool, string) {
		src.mu.Lock()
		defer src.mu.Unlock()
		got := len(src.hosts) + len(src.bad)
		return got == n, fmt.Sprint(got)
	})
	return src
}

// TestFleetViewFromBucket: 200 hosts' summaries in the bucket of an
// embedded nats-server, one of them hostile: the view's top attackers
// are the address every host lists (on every host up, banned on every
// tenth, their names sorted and bounded), then the ones on a tenth of the
// hosts; an address that is HTML is dropped, counts are bounded; a host
// silent for 10 minutes has its own page with its last summary's time and
// days, behind the fleet token.
func TestFleetViewFromBucket(t *testing.T) {
	const n = 200
	url := startNATS(t)
	sf := putFleet(t, url, n)
	src := watchFleet(t, url, n)
	fl := NewView(src, time.Second)
	s, err := fl.Summary(t.Context(), sf.now.Format(time.DateOnly))
	if err != nil {
		t.Fatal(err)
	}
	up, bannedUp := n-len(sf.down), 0
	for i := 0; i < n; i += 10 {
		if !sf.down[simName(i)] {
			bannedUp++
		}
	}
	if len(s.Attackers) == 0 || len(s.Attackers) > MaxAttackers {
		t.Fatalf("%d attackers", len(s.Attackers))
	}
	a := s.Attackers[0]
	if a.IP != commonAttacker || a.Hosts != up || a.Failed != int64(5*up) || a.Banned != bannedUp || len(a.BannedOn) != min(bannedUp, maxBannedOn) || a.BannedOn[0] != "web-0000" || a.BannedOn[1] != "web-0010" {
		t.Errorf("first attacker %+v; want %s on %d hosts, banned on %d", a, commonAttacker, up, bannedUp)
	}
	if !strings.HasPrefix(s.Attackers[1].IP, "198.51.100.") || s.Attackers[1].Hosts != n/10 {
		t.Errorf("second attacker %+v", s.Attackers[1])
	}
	for _, a := range s.Attackers {
		if strings.ContainsAny(a.IP, "<>\"") || a.Failed < 0 || a.Probes > maxCount*int64(n) {
			t.Errorf("attacker %+v", a)
		}
	}
	h0, _ := fl.Host(t.Context(), "web-0000")
	if len(h0.Top) != maxTopPerHost || h0.Top[0].IP != "192.0.2.1" || h0.Top[0].Failed != 0 || h0.Top[0].Probes != maxCount {
		t.Errorf("the hostile host's top addresses, as kept: %d, first %+v", len(h0.Top), h0.Top[0])
	}

	agg := httptest.NewServer(fl.Handler(fleetTok))
	defer agg.Close()
	if a := get(t, agg.URL+"/api/v1/fleet/hosts/web-0050", false); a.code != http.StatusUnauthorized {
		t.Errorf("a host's page without the token: %d", a.code)
	}
	a50 := get(t, agg.URL+"/api/v1/fleet/hosts/web-0050", true)
	var hp HostPage
	if err := json.Unmarshal([]byte(a50.body), &hp); err != nil || a50.code != 200 || hp.OK || !strings.HasPrefix(hp.Error, "no summary since ") ||
		hp.Updated.Before(sf.now.Add(-11*time.Minute)) || len(hp.Days) != share.SummaryDays || hp.Source != "nats" || hp.Live {
		t.Errorf("the down host's page: %d %v %+v", a50.code, err, hp)
	}
	if a := get(t, agg.URL+"/api/v1/fleet/hosts/nobody", true); a.code != 404 {
		t.Errorf("no such host: %d", a.code)
	}
}

// TestNATSWithHostsFile: fleet serve --nats with --hosts too: the view is
// the bucket's; a host the file lists has its own dashboard, its API asked
// through the aggregator as without --nats; a host only in the bucket has
// the page of what its summary says.
func TestNATSWithHostsFile(t *testing.T) {
	url := startNATS(t)
	putFleet(t, url, 3)
	h := startHost(t, 7, "", 0)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	hosts, err := Load(writeFile(t, "hosts.toml", fmt.Sprintf("[[host]]\nname = %q\nurl = %q\n", simName(1), h.url)))
	if err != nil {
		t.Fatal(err)
	}
	fl, err := OpenView(ctx, hosts, NATS{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, time.Minute, "3 hosts in the view", func() (bool, string) {
		s, _ := fl.Summary(ctx, time.Now().Format(time.DateOnly))
		return len(s.Hosts) == 3, fmt.Sprint(len(s.Hosts))
	})
	agg := httptest.NewServer(fl.Handler(""))
	defer agg.Close()
	for path, want := range map[string]string{
		"/hosts/web-0001/":       embedded(api.Page("index.html"), "/"),
		"/hosts/web-0001/status": embedded(api.Page("fleethost.html"), "/"),
		"/hosts/web-0002/":       embedded(api.Page("fleethost.html"), "/"),
	} {
		if a := get(t, agg.URL+path, false); a.code != 200 || a.body != want {
			t.Errorf("GET %s: %d, not the page wanted", path, a.code)
		}
	}
	if a := get(t, agg.URL+"/hosts/web-0001/api/v1/summary", false); a.code != 200 || !strings.Contains(a.body, `"host":"h"`) {
		t.Errorf("web-0001's API through the aggregator: %d %.200s", a.code, a.body)
	}
	if a := get(t, agg.URL+"/hosts/web-0002/api/v1/summary", false); a.code != 404 {
		t.Errorf("web-0002's API (no URL known): %d", a.code)
	}
	for name, live := range map[string]bool{"web-0001": true, "web-0002": false} {
		var hp HostPage
		a := get(t, agg.URL+"/api/v1/fleet/hosts/"+name, false)
		if err := json.Unmarshal([]byte(a.body), &hp); err != nil || hp.Live != live || hp.Source != "nats" || !hp.OK {
			t.Errorf("%s's page: %d %v %+v", name, a.code, err, hp)
		}
	}
	if len(h.seen()) == 0 {
		t.Error("web-0001 was never asked")
	}
}
