package fleet

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"sshguard-go/internal/api"
	"sshguard-go/internal/share"
	"sshguard-go/internal/store"
	"sshguard-go/internal/testkit"
)

// host is one real host API in the test: its own database with n counted
// failed attempts per hour over the last days.
type host struct {
	url      string
	requests atomic.Int64

	mu    sync.Mutex
	paths []string // every request's path, in order
}

// seen is every path the host was asked for.
func (h *host) seen() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.paths...)
}

func startHost(tb testing.TB, n int, token string, delay time.Duration) *host {
	tb.Helper()
	db, _ := testkit.OpenDB(tb)
	now := time.Now()
	var c store.Counts
	for i := range n {
		c.Add("failure", fmt.Sprintf("203.0.113.%d", i%50), "root", true, false)
	}
	c.Add("success", "198.51.100.1", "alice", false, false)
	c.Conns, c.Addresses, c.DayConns, c.DayAddresses = int64(n), 5, int64(n), 5
	for d := range 3 {
		if err := db.AddCounts(now.AddDate(0, 0, -d), c); err != nil {
			tb.Fatal(err)
		}
	}
	h := &host{}
	// As the daemon serves it on loopback: the counts open, the rest
	// behind the token.
	srv := (&api.Server{DB: db, Host: "h", Loc: time.Local, Token: token, OpenCounts: true}).Handler()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.requests.Add(1)
		h.mu.Lock()
		h.paths = append(h.paths, r.URL.Path)
		h.mu.Unlock()
		time.Sleep(delay)
		srv.ServeHTTP(w, r)
	}))
	tb.Cleanup(ts.Close)
	h.url = ts.URL
	return h
}

// deadAddr is a loopback address where nothing listens.
func deadAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// silent accepts connections and never answers.
func silent(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	conns := make(chan net.Conn, 100)
	t.Cleanup(func() {
		l.Close()
		close(conns)
		for c := range conns {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			select {
			case conns <- c:
			default:
				c.Close()
			}
		}
	}()
	return l.Addr().String()
}

func writeFile(t *testing.T, name, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSummaryWithBrokenHosts: three hosts answer; one address has nothing
// listening, one never answers, one answers 500, one answers garbage: the
// summary lists all seven, the total is over the three, the cache
// answers the next asks.
func TestSummaryWithBrokenHosts(t *testing.T) {
	tok := "secret-token-of-web-02-xxxxxxxx"
	hosts := []*host{startHost(t, 10, "", 0), startHost(t, 20, tok, 0), startHost(t, 30, "", 0)}
	status500 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "database on fire", http.StatusInternalServerError)
	}))
	defer status500.Close()
	garbage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("<html>hello")) }))
	defer garbage.Close()
	tokFile := writeFile(t, "web-02.token", tok+"\n")
	file := writeFile(t, "hosts.toml", fmt.Sprintf(`timeout = "1s"
cache = "1m"
[[host]]
name = "web-01"
url = %q
[[host]]
name = "web-02"
url = %q
token_file = %q
[[host]]
name = "web-03"
url = %q
[[host]]
name = "nothing-listens"
url = "http://%s"
[[host]]
name = "never-answers"
url = "http://%s"
[[host]]
name = "answers-500"
url = %q
[[host]]
name = "answers-garbage"
url = %q
`, hosts[0].url, hosts[1].url, tokFile, hosts[2].url, deadAddr(t), silent(t), status500.URL, garbage.URL))
	f, err := Load(file)
	if err != nil {
		t.Fatal(err)
	}
	fl, err := New(f)
	if err != nil {
		t.Fatal(err)
	}
	date := time.Now().Format(time.DateOnly)
	start := time.Now()
	s, err := fl.Summary(context.Background(), date)
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("took %v: the silent host held the others up", took)
	}
	if len(s.Hosts) != 7 || s.Answered != 3 || s.Failed != 4 {
		t.Fatalf("%d hosts, %d answered, %d failed: %+v", len(s.Hosts), s.Answered, s.Failed, s.Hosts)
	}
	wantErr := map[string]string{"nothing-listens": "connection refused", "never-answers": "no answer within 1s",
		"answers-500": "500 Internal Server Error", "answers-garbage": "not the API's JSON"}
	for i, h := range s.Hosts {
		if i < 3 {
			if !h.OK || h.Day == nil || h.Day.Failed != int64(10*(i+1)) || h.Day.Logins != 1 {
				t.Errorf("%s: %+v %+v", h.Name, h, h.Day)
			}
			continue
		}
		if h.OK || h.Day != nil || !strings.Contains(h.Error, wantErr[h.Name]) {
			t.Errorf("%s: ok %v, error %q, want %q", h.Name, h.OK, h.Error, wantErr[h.Name])
		}
	}
	if s.Total.Failed != 60 || s.Total.Logins != 3 || s.Total.Connections != 60 || len(s.Days) != Days || s.Days[Days-1].Failed != 60 || s.Days[Days-2].Failed != 60 {
		t.Errorf("total %+v, days %+v", s.Total, s.Days[Days-3:])
	}
	// Cached: asking again does not reach the hosts.
	before := hosts[0].requests.Load()
	for range 10 {
		if again, _ := fl.Summary(context.Background(), date); again != s {
			t.Fatal("not the cached answer")
		}
	}
	if n := hosts[0].requests.Load(); n != before {
		t.Errorf("%d requests more to web-01 within the cache's minute", n-before)
	}
	if _, err := fl.Summary(context.Background(), "2026-13-01"); err == nil {
		t.Error("a bad date accepted")
	}
}

// TestLoadErrors: a broken hosts file names the file, the line and the
// key.
func TestLoadErrors(t *testing.T) {
	for _, c := range []struct{ text, want string }{
		{"[[host]]\nname = \"a\"\nurl = \"http://x:1\"\ntokn_file = \"/t\"\n", `:4: unknown key "host.tokn_file"`},
		{"[[host]]\nname = \"a\"\nurl = \"http://x:1\"\n[[host]]\nname = \"a\"\nurl = \"http://y:1\"\n", `:4: host[2]: name: "a" is host[1]'s name too`},
		{"[[host]]\nname = \"a\"\nurl = \"ftp://x\"\n", `:1: host[1]: url: "ftp://x"`},
		{"[[host]]\nname = \"a b\"\nurl = \"http://x:1\"\n", `host[1]: name: "a b"`},
		{"timeout = \"0s\"\n[[host]]\nname = \"a\"\nurl = \"http://x:1\"\n", "timeout: must be in (0, 5m]"},
		{"concurrency = 100\n[[host]]\nname = \"a\"\nurl = \"http://x:1\"\n", "concurrency: must be in [1, 32]"},
		{"", "no [[host]] listed"},
		{"timeout = \"nan\"\n", `:1: timeout`},
	} {
		_, err := Load(writeFile(t, "hosts.toml", c.text))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want %q", c.text, err, c.want)
		}
	}
}

// TestProxy: a host's API through the aggregator, with the host's token
// put in and the browser's taken out; the aggregator's own token guards
// the data. The host's dashboard and assets are the aggregator's own: the
// host is asked for its API only.
func TestProxy(t *testing.T) {
	tok := "host-token-xxxxxxxxxxxxxxxxxxxx"
	h := startHost(t, 7, tok, 0)
	file := writeFile(t, "hosts.toml", fmt.Sprintf("[[host]]\nname = \"web-01\"\nurl = %q\ntoken_file = %q\n", h.url, writeFile(t, "t", tok)))
	f, _ := Load(file)
	fl, err := New(f)
	if err != nil {
		t.Fatal(err)
	}
	fleetTok := "fleet-token-yyyyyyyyyyyyyyyyyy"
	agg := httptest.NewServer(fl.Handler(fleetTok))
	defer agg.Close()
	get := func(path, token string) (int, string) {
		req, _ := http.NewRequest("GET", agg.URL+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b strings.Builder
		buf := make([]byte, 4096)
		for {
			n, err := resp.Body.Read(buf)
			b.Write(buf[:n])
			if err != nil {
				break
			}
		}
		return resp.StatusCode, b.String()
	}
	for _, c := range []struct {
		path, token string
		code        int
		has         string
	}{
		{"/hosts/web-01/api/v1/summary", fleetTok, 200, `"failed":7`},
		{"/hosts/web-01/api/v1/summary", "", 401, "token"},
		{"/hosts/web-01/api/v1/summary", tok, 401, "token"}, // the host's token is not the fleet's
		{"/hosts/web-01/", "", 200, "assets/app.js"},
		{"/hosts/web-01/assets/app.js", "", 200, "refresh"},
		{"/hosts/web-01/api/docs", "", 200, "openapi.json"},
		{"/hosts/web-01/api/v1/openapi.json", "", 200, `"openapi"`},
		{"/hosts/web-01/api/v1/days/" + time.Now().Format(time.DateOnly), fleetTok, 200, `"hours"`},
		{"/hosts/web-01/api/v1/summary?from=2026-01-01&to=2025-01-01", fleetTok, 400, "is after to"},
		{"/hosts/nobody/", "", 404, ""},
		{"/api/v1/fleet/summary", fleetTok, 200, `"answered":1`},
		{"/api/v1/fleet/summary", "", 401, ""},
		{"/api/v1/fleet/summary?date=x", fleetTok, 400, "YYYY-MM-DD"},
		{"/", "", 200, "fleet.js"},
	} {
		code, body := get(c.path, c.token)
		if code != c.code || !strings.Contains(body, c.has) {
			t.Errorf("GET %s: %d, want %d with %q:\n%.300s", c.path, code, c.code, c.has, body)
		}
	}
	for _, p := range h.seen() {
		if !strings.HasPrefix(p, "/api/v1/") || p == "/api/v1/openapi.json" {
			t.Errorf("the host was asked %s", p)
		}
	}
}

// TestDeployExample: the hosts file shipped as an example loads.
func TestDeployExample(t *testing.T) {
	f, err := Load("../../deploy/hosts.toml")
	if err != nil || len(f.Hosts) != 2 || f.Hosts[1].CertFile == "" || time.Duration(f.Timeout) != 5*time.Second {
		t.Fatalf("%+v %v", f, err)
	}
}

// TestKVStale: in the view built from the summaries' bucket, a host whose
// summary is older than 3 minutes, or unreadable, is listed down with why;
// the total is over the others.
func TestKVStale(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	day := api.Summary{Days: []api.Day{{Date: "2026-11-30", Failed: 7}}}
	src := &KVSource{now: func() time.Time { return now }, hosts: map[string]share.HostSummary{
		"fresh": {Updated: now.Add(-time.Minute), Summary: day},
		"stale": {Updated: now.Add(-time.Hour), Summary: day},
	}, bad: map[string]string{"broken": "its summary is not the API's JSON"}}
	s := src.Summary(context.Background(), now)
	if len(s.Hosts) != 3 || s.Answered != 1 || s.Failed != 2 || s.Total.Failed != 7 {
		t.Fatalf("%+v", s)
	}
	for _, h := range s.Hosts {
		if (h.Name == "fresh") != h.OK || h.Name == "stale" && !strings.HasPrefix(h.Error, "no summary since") {
			t.Errorf("%+v", h)
		}
	}
}

// TestNoTokenOnlyCounts: an aggregator without a token of its own (on
// loopback) passes a host's counts, never its bans, logins, events or
// sessions: it would hand them, with the host's token, to every user of
// its machine. The host is not even asked.
func TestNoTokenOnlyCounts(t *testing.T) {
	tok := "host-token-xxxxxxxxxxxxxxxxxxxx"
	h := startHost(t, 7, tok, 0)
	f, _ := Load(writeFile(t, "hosts.toml", fmt.Sprintf("[[host]]\nname = \"web-01\"\nurl = %q\ntoken_file = %q\n", h.url, writeFile(t, "t", tok))))
	fl, err := New(f)
	if err != nil {
		t.Fatal(err)
	}
	agg := httptest.NewServer(fl.Handler(""))
	defer agg.Close()
	for _, rt := range api.Endpoints() {
		path := strings.Replace(rt.Path, "{date}", time.Now().Format(time.DateOnly), 1)
		resp, err := http.Get(agg.URL + "/hosts/web-01" + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		want := http.StatusOK
		if rt.Access == api.Private {
			want = http.StatusForbidden
		}
		if resp.StatusCode != want {
			t.Errorf("%s (%v): %d, want %d", path, rt.Access, resp.StatusCode, want)
		}
	}
	for _, p := range h.seen() {
		if !strings.HasPrefix(p, "/api/v1/summary") && !strings.HasPrefix(p, "/api/v1/days/") {
			t.Errorf("the host was asked for %s", p)
		}
	}
}
