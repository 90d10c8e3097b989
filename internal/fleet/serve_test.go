package fleet

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"sshguard-go/internal/api"
	"sshguard-go/internal/config"
	"sshguard-go/internal/testkit"
)

// manyHosts is a Source of n hosts that all answered.
type manyHosts struct{ n int }

func (m manyHosts) Summary(_ context.Context, day time.Time) *Summary {
	s := &Summary{Date: day.Format(time.DateOnly), Hosts: make([]HostDay, m.n)}
	for i := range s.Hosts {
		s.Hosts[i] = HostDay{Name: fmt.Sprintf("web-%05d", i), OK: true, MS: 12,
			Day: &api.Day{Date: s.Date, Failed: 1200, Probes: 300, Connections: 2000, Addresses: 80, Bans: 7, Logins: 3}}
		s.Hosts[i].days = []api.Day{*s.Hosts[i].Day}
	}
	total(s, day)
	return s
}

func (manyHosts) API(string) HostAPI { return nil }

// TestSlowClientsHoldNoFleetServe: fleet serve under slow clients, one of
// them never reading the summary of 5,000 hosts (1.5 MB): a viewer opening
// the fleet page is answered beside them and each is closed after its
// timeout.
func TestSlowClientsHoldNoFleetServe(t *testing.T) {
	fl := NewView(manyHosts{5000}, time.Hour)
	lim := fl.Limits()
	lim.ReadHeader, lim.Read, lim.Write, lim.Idle, lim.Grace = 2*time.Second, 2*time.Second, 2*time.Second, 2*time.Second, time.Second
	lim.MaxConns, lim.MaxRequests = 16, 4
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	ready := make(chan string, 1)
	go func() { done <- Serve(ctx, "127.0.0.1:0", fl.Handler(""), nil, lim, func(url string) { ready <- url }) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	var url string
	select {
	case url = <-ready:
	case err := <-done:
		t.Fatal(err)
	}
	const summary = "/api/v1/fleet/summary?date=2026-11-28"
	if _, err := fl.Summary(ctx, "2026-11-28"); err != nil { // cached: the answer's size is what is tried
		t.Fatal(err)
	}
	fresh := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	testkit.HoldsNoServer(t, testkit.SlowTarget{Network: "tcp", Addr: strings.TrimSuffix(strings.TrimPrefix(url, "http://"), "/"), Limits: lim,
		Request: "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		Big:     "GET " + summary + " HTTP/1.1\r\nHost: x\r\n\r\n",
		Normal: func() error {
			resp, err := fresh.Get(url) // the fleet page
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				return fmt.Errorf("%s", resp.Status)
			}
			return nil
		}})
}

// TestFleetLimitsWaitForTheSlowestSummary: fleet serve's answers may take
// as long as a summary whose hosts all hang: every round of "concurrency"
// hosts at its timeout, and 30 s more; a minute at least.
func TestFleetLimitsWaitForTheSlowestSummary(t *testing.T) {
	for _, c := range []struct {
		hosts, concurrency int
		timeout, want      time.Duration
	}{
		{1000, 32, 5 * time.Second, 190 * time.Second}, // 32 rounds
		{10, 32, 5 * time.Second, time.Minute},
		{64, 8, 10 * time.Second, 110 * time.Second}, // 8 rounds
	} {
		f := &File{Timeout: config.Duration(c.timeout), Concurrency: c.concurrency}
		for i := range c.hosts {
			f.Hosts = append(f.Hosts, Host{Name: fmt.Sprintf("web-%04d", i), URL: fmt.Sprintf("http://10.0.%d.%d:9612", i>>8, i&255)})
		}
		fl, err := New(f)
		if err != nil {
			t.Fatal(err)
		}
		if got := fl.Limits().Write; got != c.want {
			t.Errorf("%d hosts, %d at once, %v each: write timeout %v, want %v", c.hosts, c.concurrency, c.timeout, got, c.want)
		}
	}
	if got := NewView(manyHosts{1}, time.Second).Limits().Write; got != time.Minute {
		t.Errorf("a source that answers at once (the summaries' bucket): write timeout %v, want 1m", got)
	}
}
