package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"sshguard-go/internal/session"
	"sshguard-go/internal/store"
	"sshguard-go/internal/testkit"
)

var now = time.Date(2026, 11, 28, 15, 30, 0, 0, time.UTC)

// testToken is the bearer token of the tests' servers.
const testToken = "test-token-0123456789abcdef"

// server is an API on a fresh database with one hour of counts, a ban, a
// login and two events.
func server(t *testing.T) *httptest.Server {
	t.Helper()
	ts := httptest.NewServer(testServer(t).Handler())
	t.Cleanup(ts.Close)
	return ts
}

// testServer is server's Server, not serving yet.
func testServer(t *testing.T) *Server {
	t.Helper()
	db, _ := testkit.OpenDB(t)
	var c store.Counts
	c.Add("failure", "203.0.113.7", "root", true, false)
	c.Add("probe", "203.0.113.8", "", false, true)
	c.Add("success", "198.51.100.1", "alice", false, false)
	c.Conns, c.Addresses, c.DayConns, c.DayAddresses = 3, 3, 3, 3
	if err := db.AddCounts(now.Add(-time.Hour), c); err != nil {
		t.Fatal(err)
	}
	testkit.RecordBans(t, db, &store.Ban{Prefix: netip.MustParsePrefix("203.0.113.0/24"), Start: now.Add(-time.Minute), Expires: now.Add(time.Hour), Reason: "test"})
	testkit.RecordBans(t, db, &store.Ban{Prefix: netip.MustParsePrefix("192.0.2.1/32"), Start: now.Add(-time.Minute), Reason: "forever"})
	db.RecordLogin(store.Login{Time: now.Add(-time.Hour), User: "alice", Addr: netip.MustParseAddr("198.51.100.1"), Method: "publickey"},
		func(store.LoginHistory, *store.Login) []byte { return nil })
	end := now.Add(-50 * time.Minute)
	for _, ss := range []*session.Session{
		{Host: "web-01", PID: 10, User: "alice", IP: "198.51.100.1", Port: 5000, Method: "publickey", Key: "ED25519 SHA256:abc", Start: now.Add(-time.Hour),
			End: &end, Duration: 600, EndReason: session.EndLogout, AuditID: 7, Alerted: []string{"transfer"},
			Transfers: []session.Transfer{{Time: end, Path: "/home/alice/x", BytesWritten: 10}}, Commands: []session.Command{{Time: end, Argv: []string{"id"}, Cwd: "/"}}},
		{Host: "web-01", PID: 11, User: "bob", IP: "198.51.100.2", Port: 5001, Method: "password", Start: now.Add(-time.Minute), Active: true},
	} {
		db.PutSession(store.SessionKey(ss.Start, ss.Host, ss.PID), ss.Marshal(), ss.Active)
	}
	ev := NewEvents(3)
	for i := range 5 { // the ring keeps the last 3
		ev.Add(now.Add(time.Duration(i)*time.Second), "failure", "failed_password", "203.0.113.7", fmt.Sprint("user", i))
	}
	return &Server{DB: db, Host: "web-01", Loc: time.UTC, Events: ev, Now: func() time.Time { return now }, Token: testToken, OpenCounts: true}
}

type schema struct {
	Ref        string             `json:"$ref"`
	Type       any                `json:"type"`
	Properties map[string]*schema `json:"properties"`
	Required   []string           `json:"required"`
	Items      *schema            `json:"items"`
}

type document struct {
	Paths map[string]map[string]struct {
		Security   []map[string][]string
		Parameters []struct{ Name, In string }
		Responses  map[string]struct {
			Content map[string]struct{ Schema *schema }
		}
	}
	Components struct{ Schemas map[string]*schema }
}

// check compares v (decoded JSON) with sch: every required field there,
// no field the document does not name, recursively.
func (d *document) check(t *testing.T, where string, sch *schema, v any) {
	t.Helper()
	if sch.Ref != "" {
		sch = d.Components.Schemas[strings.TrimPrefix(sch.Ref, "#/components/schemas/")]
	}
	switch v := v.(type) {
	case map[string]any:
		for _, k := range sch.Required {
			if _, ok := v[k]; !ok {
				t.Errorf("%s: field %q missing", where, k)
			}
		}
		for k, x := range v {
			p, ok := sch.Properties[k]
			if !ok {
				t.Errorf("%s: field %q is not in the document", where, k)
				continue
			}
			d.check(t, where+"."+k, p, x)
		}
	case []any:
		if sch.Items == nil {
			t.Errorf("%s: an array where the document has %v", where, sch.Type)
			return
		}
		for i, x := range v {
			d.check(t, fmt.Sprintf("%s[%d]", where, i), sch.Items, x)
		}
	}
}

// TestOpenAPI: the document lists exactly the handlers' paths, and what
// each answers has the fields the document gives it.
func TestOpenAPI(t *testing.T) {
	var doc document
	if err := json.Unmarshal(openapi, &doc); err != nil {
		t.Fatal(err)
	}
	var served, documented []string
	for _, rt := range (&Server{}).routes() {
		if rt.data == nil {
			continue // a page or a document
		}
		served = append(served, rt.Path)
		// The document's security says what the route's access does:
		// the token (or a certificate) always, or none on loopback.
		sec := doc.Paths[rt.Path]["get"].Security
		open := slices.ContainsFunc(sec, func(m map[string][]string) bool { return len(m) == 0 })
		bearer := slices.ContainsFunc(sec, func(m map[string][]string) bool { _, ok := m["bearer"]; return ok })
		cert := slices.ContainsFunc(sec, func(m map[string][]string) bool { _, ok := m["clientCertificate"]; return ok })
		if !bearer || !cert || open != (rt.Access == Counts) {
			t.Errorf("%s (%v): security %v", rt.Path, rt.Access, sec)
		}
	}
	for p := range doc.Paths {
		documented = append(documented, p)
	}
	slices.Sort(served)
	slices.Sort(documented)
	if !slices.Equal(served, documented) {
		t.Fatalf("served %v, documented %v", served, documented)
	}
	ts := server(t)
	for path, ops := range doc.Paths {
		op := ops["get"]
		url := strings.ReplaceAll(path, "{date}", "2026-11-28")
		var q []string
		for _, p := range op.Parameters {
			switch {
			case p.In == "path":
			case p.Name == "since":
				q = append(q, "since=2026-11-01T00:00:00Z")
			case p.Name == "from":
				q = append(q, "from=2026-11-27")
			case p.Name == "to":
				q = append(q, "to=2026-11-28")
			case p.Name == "active":
				q = append(q, "active=0")
			case p.Name == "limit":
				q = append(q, "limit=10")
			default:
				t.Errorf("%s: parameter %s not tried", path, p.Name)
			}
		}
		for _, u := range []string{url, url + "?" + strings.Join(q, "&")} {
			resp := fetch(t, ts.URL+u, testToken)
			var v any
			json.NewDecoder(resp.Body).Decode(&v)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("GET %s: %d %v", u, resp.StatusCode, v)
				continue
			}
			doc.check(t, "GET "+u, op.Responses["200"].Content["application/json"].Schema, v)
		}
	}
}

// fetch GETs url, with token as the bearer token unless "".
func fetch(t *testing.T, url, token string) *http.Response {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// get reads url's JSON, with the tests' token.
func get[T any](t *testing.T, url string) T {
	t.Helper()
	resp := fetch(t, url, testToken)
	defer resp.Body.Close()
	var v T
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestEndpoints: the numbers of a known database, the default ranges, the
// banned flag through a wider ban, permanent bans with a null expiry, the
// ring's last events newest first, and the headers that keep the page
// on its origin.
func TestEndpoints(t *testing.T) {
	ts := server(t)
	s := get[Summary](t, ts.URL+"/api/v1/summary")
	if s.From != "2026-11-22" || s.To != "2026-11-28" || len(s.Days) != 7 {
		t.Fatalf("default range %s..%s, %d days", s.From, s.To, len(s.Days))
	}
	d := s.Days[6]
	if d.Failed != 1 || d.Probes != 1 || d.Logins != 1 || d.Connections != 3 || d.Addresses != 3 || d.Bans != 0 {
		t.Errorf("today %+v", d)
	}
	if len(s.TopAddresses) != 2 || s.TopAddresses[0] != (AddrCount{"203.0.113.7", 1, 0, true}) || !s.TopAddresses[1].Banned {
		t.Errorf("top %+v", s.TopAddresses)
	}
	if len(s.TopUsers) != 1 || s.TopUsers[0] != (UserCount{"root", 1}) {
		t.Errorf("users %+v", s.TopUsers)
	}
	day := get[Day](t, ts.URL+"/api/v1/days/2026-11-28")
	if len(day.Hours) != 24 || day.Hours[14].Failed != 1 || day.Hours[14].Hour != "2026-11-28T14:00:00Z" || day.Failed != 1 {
		t.Errorf("day %+v", day)
	}
	bans := get[Bans](t, ts.URL+"/api/v1/bans")
	if bans.Total != 2 || len(bans.Bans) != 2 {
		t.Fatalf("bans %+v", bans)
	}
	for _, b := range bans.Bans {
		if (b.Prefix == "192.0.2.1/32") != (b.Expires == nil) {
			t.Errorf("ban %+v", b)
		}
	}
	if n := get[Bans](t, ts.URL+"/api/v1/bans?limit=1"); n.Total != 2 || len(n.Bans) != 1 {
		t.Errorf("limit 1: %+v", n)
	}
	logins := get[[]Login](t, ts.URL+"/api/v1/logins")
	if len(logins) != 1 || logins[0].User != "alice" || logins[0].IP != "198.51.100.1" {
		t.Errorf("logins %+v", logins)
	}
	if l := get[[]Login](t, ts.URL+"/api/v1/logins?since=2026-11-28T15:00:00Z"); len(l) != 0 {
		t.Errorf("logins since: %+v", l)
	}
	if ss := get[[]map[string]any](t, ts.URL+"/api/v1/sessions"); len(ss) != 2 || ss[0]["user"] != "bob" || ss[1]["end_reason"] != "logout" {
		t.Errorf("sessions %v", ss)
	}
	if ss := get[[]map[string]any](t, ts.URL+"/api/v1/sessions?active=1"); len(ss) != 1 || ss[0]["user"] != "bob" {
		t.Errorf("active sessions %v", ss)
	}
	ev := get[[]Event](t, ts.URL+"/api/v1/events")
	if len(ev) != 3 || ev[0].User != "user4" || ev[2].User != "user2" {
		t.Errorf("events %+v", ev)
	}
	if e := get[[]Event](t, ts.URL+"/api/v1/events?limit=1&since=2026-11-28T15:30:03Z"); len(e) != 1 || e[0].User != "user4" {
		t.Errorf("events since, limit: %+v", e)
	}
	resp, err := http.Get(ts.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "connect-src 'self'") {
		t.Errorf("CSP %q", csp)
	}
}

// TestEventsBounded: the ring holds its size whatever comes, and cuts
// the user names attackers choose.
func TestEventsBounded(t *testing.T) {
	ev := NewEvents(100)
	long := strings.Repeat("x", 10000)
	for i := range 100000 {
		ev.Add(now.Add(time.Duration(i)), "failure", "failed_password", "203.0.113.7", long)
	}
	got := ev.Since(time.Time{}, maxList)
	if len(got) != 100 || len(got[0].User) != maxUser || !got[0].Time.Equal(now.Add(99999)) {
		t.Fatalf("%d events, first %+v", len(got), got[0].Time)
	}
	var none *Events
	if got := none.Since(time.Time{}, 10); len(got) != 0 {
		t.Fatal("nil ring")
	}
}
