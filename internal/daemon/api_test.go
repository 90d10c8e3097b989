package daemon

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"sshguard-go/internal/api"
	"sshguard-go/internal/config"
	"sshguard-go/internal/detect"
	"sshguard-go/internal/loggen"
	"sshguard-go/internal/report"
	"sshguard-go/internal/testkit"
)

// getJSON reads url into v, with token as bearer when set; it returns the
// status.
func getJSON(t *testing.T, c *http.Client, url, token string, v any) int {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == 200 && v != nil {
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
	}
	return resp.StatusCode
}

// TestAPIAgreesWithReport: a daemon reads a generated log of six days
// from its start; its API's days, top addresses and users equal what the
// offline report counts from the same file, day by day in the daemon's
// time zone (UTC+3 here, so that days are not UTC days).
func TestAPIAgreesWithReport(t *testing.T) {
	const lines, zone = 6000, "Etc/GMT-3"
	h := newHarness(t)
	f, err := os.Create(filepath.Join(h.dir, "auth.log"))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 11, 1, 17, 0, 0, 0, time.UTC)
	if err := loggen.WriteSpan(f, lines, 7, loggen.RFC3339, start, 3*time.Minute); err != nil {
		t.Fatal(err)
	}
	f.Close()
	tok := "0123456789abcdef0123456789abcdef"
	os.WriteFile(filepath.Join(h.dir, "token"), []byte(tok+"\n"), 0o600)
	writeConfig(t, h.dir, `[log]
from_start = true
[detection]
threshold = 3
[alerts]
timezone = "`+zone+`"
hostname = "web-01"
[api]
listen = "127.0.0.1:0"
token_file = "`+filepath.Join(h.dir, "token")+`"
`)
	h.start()
	h.readAll(t, lines, 20*time.Second) // and the bans and logins decided written
	// The counts reach the database every minute and at the end; the API
	// adds those still in memory. The same answer while the daemon runs
	// and from a second run, which finds nothing new to read.
	loc, _ := time.LoadLocation(zone)
	first, last := start.In(loc).Format(time.DateOnly), start.Add(7*24*time.Hour).In(loc).Format(time.DateOnly)
	var live api.Summary
	getJSON(t, http.DefaultClient, "http://"+h.d.APIAddr()+"/api/v1/summary?from="+first+"&to="+last, "", &live)
	h.halt()
	h.start()
	base := "http://" + h.d.APIAddr()

	// What the offline report makes of the file, per day in the zone.
	type dayWant struct {
		sum   *report.Summary
		conns map[string]bool
	}
	want := map[string]*dayWant{}
	week := &report.Summary{}
	var sc detect.Scanner
	emit := func(r *detect.Record) {
		d := r.Time.In(loc).Format(time.DateOnly)
		w := want[d]
		if w == nil {
			y, m, dd := r.Time.In(loc).Date()
			mid := time.Date(y, m, dd, 0, 0, 0, 0, loc)
			w = &dayWant{sum: &report.Summary{Window: report.Window{Since: mid, Until: mid.AddDate(0, 0, 1)}}, conns: map[string]bool{}}
			want[d] = w
		}
		w.sum.Add(r)
		week.Add(r)
		if r.PID != 0 {
			w.conns[fmt.Sprint(r.Host, r.PID)] = true
		}
	}
	rf, _ := os.Open(filepath.Join(h.dir, "auth.log"))
	s := bufio.NewScanner(rf)
	for n := int64(1); s.Scan(); n++ {
		sc.Line("auth.log", n, s.Text(), emit)
	}
	sc.Flush(emit)
	rf.Close()

	var got api.Summary
	if code := getJSON(t, http.DefaultClient, base+"/api/v1/summary?from="+first+"&to="+last, "", &got); code != 200 {
		t.Fatalf("summary: %d", code)
	}
	if got.Host != "web-01" || got.Timezone != zone || len(got.Days) != 8 {
		t.Fatalf("summary head: %s %s %d days", got.Host, got.Timezone, len(got.Days))
	}
	if !reflect.DeepEqual(live.Days, got.Days) {
		t.Errorf("live %+v\nafter a restart %+v", live.Days, got.Days)
	}
	days := 0
	for _, d := range got.Days {
		w := want[d.Date]
		var exp api.Day
		if w != nil {
			days++
			for _, c := range w.sum.Sorted() {
				exp.Failed += c.Failed
				exp.Probes += c.Probes
				exp.Logins += c.Successes
				exp.Addresses++
			}
			exp.Connections = int64(len(w.conns))
		}
		exp.Date, d.Bans = d.Date, 0 // bans start when the daemon reads: today
		if !reflect.DeepEqual(d, exp) {
			t.Errorf("%s: API %+v, report %+v", d.Date, d, exp)
		}
		// The day's hours add up to the day (connections and addresses
		// are distinct per hour: at least the day's).
		var one api.Day
		getJSON(t, http.DefaultClient, base+"/api/v1/days/"+d.Date, "", &one)
		var sum api.Day
		for _, hr := range one.Hours {
			sum.Add(hr)
		}
		if len(one.Hours) != 24 || sum.Failed != d.Failed || sum.Probes != d.Probes || sum.Logins != d.Logins || sum.Addresses < d.Addresses {
			t.Errorf("%s by the hour: %d hours, sum %+v, day %+v", d.Date, len(one.Hours), sum, d)
		}
	}
	if days < 5 {
		t.Fatalf("the log covers %d days of the summary, want at least 5", days)
	}

	// Top addresses: each with the report's counts, none left out that
	// has more.
	counts := map[string][2]int64{}
	for _, c := range week.Sorted() {
		counts[c.Client] = [2]int64{c.Failed, c.Probes}
	}
	if len(got.TopAddresses) != 20 {
		t.Fatalf("%d top addresses", len(got.TopAddresses))
	}
	in := map[string]bool{}
	for _, a := range got.TopAddresses {
		in[a.IP] = true
		if c := counts[a.IP]; c != [2]int64{a.Failed, a.Probes} {
			t.Errorf("top %s: API %d/%d, report %d/%d", a.IP, a.Failed, a.Probes, c[0], c[1])
		}
	}
	lowest := got.TopAddresses[19]
	for ip, c := range counts {
		if !in[ip] && (c[0] > lowest.Failed || c[0] == lowest.Failed && c[1] > lowest.Probes) {
			t.Errorf("%s (%d/%d) ranks above the last of the top (%+v)", ip, c[0], c[1], lowest)
		}
	}

	// Bans: made at the log's own times, as a daemon that ran through
	// those days would have made them: each day's count is the bans that
	// started on it, and a month later none is in force.
	hist, err := h.d.db.History(time.Time{})
	if err != nil || len(hist) == 0 {
		t.Fatalf("%d bans made, %v", len(hist), err)
	}
	perDay := map[string]int64{}
	for _, b := range hist {
		if b.Start.Before(start) || b.Start.After(start.Add(7*24*time.Hour)) {
			t.Errorf("ban %s started %v, outside the log's days", b.Prefix, b.Start)
		}
		perDay[b.Start.In(loc).Format(time.DateOnly)]++
	}
	for _, d := range got.Days {
		if d.Bans != perDay[d.Date] {
			t.Errorf("%s: %d bans in the API, %d started that day", d.Date, d.Bans, perDay[d.Date])
		}
	}
	var bans api.Bans
	if code := getJSON(t, http.DefaultClient, base+"/api/v1/bans", tok, &bans); code != 200 {
		t.Fatalf("bans: %d", code)
	}
	if bans.Total != 0 {
		t.Errorf("%d bans in force a month after the log's last line", bans.Total)
	}
	for _, a := range got.TopAddresses {
		if a.Banned {
			t.Errorf("%s shown banned", a.IP)
		}
	}
}

// TestAPIAuth: off loopback the configuration needs credentials; a token
// is checked (none or a wrong one: 401 on every path that names logins,
// sessions, events or bans, and on loopback only on those; the dashboard
// page itself holds no data so it loads); off loopback the counts need
// it too; with client certificates, one signed by another CA is refused
// in the handshake and one signed by the CA opens every path (and the
// daemon makes no token of its own); every endpoint refuses writes.
func TestAPIAuth(t *testing.T) {
	dir := t.TempDir()
	for _, listen := range []string{"0.0.0.0:9612", "192.0.2.1:9612", ":9612", "[::]:9612"} {
		p := writeConfig(t, dir, "[api]\nlisten = \""+listen+"\"\n")
		_, err := config.Load(p, true)
		if err == nil || !strings.Contains(err.Error(), "api.listen") || !strings.Contains(err.Error(), "token_file") {
			t.Errorf("listen %s without credentials: %v", listen, err)
		}
	}

	h := newHarness(t)
	tok := "0123456789abcdef0123456789abcdef"
	os.WriteFile(filepath.Join(h.dir, "token"), []byte(tok+"\n"), 0o600)
	writeConfig(t, h.dir, "[api]\nlisten = \"127.0.0.1:0\"\ntoken_file = \""+filepath.Join(h.dir, "token")+"\"\n")
	h.logf("Server listening on 0.0.0.0 port 22.")
	h.start()
	base := "http://" + h.d.APIAddr()
	for _, c := range []struct {
		path, token string
		want        int
	}{
		{"/api/v1/summary", "", 200}, {"/api/v1/summary", "wrong", 200}, {"/api/v1/days/2026-11-28", "", 200},
		{"/api/v1/bans", "", 401}, {"/api/v1/events", tok + "x", 401}, {"/api/v1/sessions", tok[:31], 401},
		{"/api/v1/sessions?active=1", "", 401}, {"/api/v1/logins", "wrong", 401}, {"/api/v1/sessions", tok, 200},
		{"/api/v1/summary", tok, 200}, {"/api/v1/bans", tok, 200}, {"/api/v1/logins", tok, 200}, {"/api/v1/events", tok, 200},
		{"/api/v1/days/2026-11-28", tok, 200}, {"/api/v1/days/2026-13-28", tok, 400}, {"/api/v1/summary?from=x", tok, 400},
		{"/api/v1/summary?from=2020-01-01&to=2026-01-01", tok, 400}, {"/api/v1/events?limit=0", tok, 400},
		{"/", "", 200}, {"/api/docs", "", 200}, {"/api/v1/openapi.json", "", 200}, {"/assets/app.js", "", 200},
	} {
		if got := getJSON(t, http.DefaultClient, base+c.path, c.token, nil); got != c.want {
			t.Errorf("GET %s with token %q: %d, want %d", c.path, c.token, got, c.want)
		}
	}
	for _, m := range []string{"POST", "PUT", "DELETE"} {
		req, _ := http.NewRequest(m, base+"/api/v1/bans", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("%s /api/v1/bans: %v %v", m, resp.Status, err)
		}
	}
	h.halt()

	// Off loopback (every address: the test reaches it on 127.0.0.1) the
	// counts need the token too.
	writeConfig(t, h.dir, "[api]\nlisten = \"0.0.0.0:0\"\ntoken_file = \""+filepath.Join(h.dir, "token")+"\"\n")
	h.start()
	_, port, _ := net.SplitHostPort(h.d.APIAddr())
	base = "http://127.0.0.1:" + port
	for _, c := range []struct {
		path, token string
		want        int
	}{
		{"/api/v1/summary", "", 401}, {"/api/v1/summary", "wrong", 401}, {"/api/v1/days/2026-11-28", "", 401}, {"/api/v1/sessions", "", 401},
		{"/api/v1/summary", tok, 200}, {"/api/v1/sessions", tok, 200}, {"/", "", 200}, {"/assets/app.js", "", 200},
	} {
		if got := getJSON(t, http.DefaultClient, base+c.path, c.token, nil); got != c.want {
			t.Errorf("off loopback: GET %s with token %q: %d, want %d", c.path, c.token, got, c.want)
		}
	}
	h.halt()

	// Client certificates.
	ca, other := testkit.NewCA(t, "sshguard-go test CA"), testkit.NewCA(t, "another CA")
	srv := ca.Issue(t, "127.0.0.1", h.dir, "server")
	good, bad := ca.Issue(t, "admin", h.dir, "client"), other.Issue(t, "admin", h.dir, "stranger")
	writeConfig(t, h.dir, fmt.Sprintf("[api]\nlisten = \"127.0.0.1:0\"\ntls_cert = %q\ntls_key = %q\nclient_ca = %q\n",
		srv.Cert, srv.Key, ca.File))
	h.start()
	base = "https://" + h.d.APIAddr()
	if _, err := os.Lstat(filepath.Join(h.dir, "api.token")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("with client certificates and no token_file, the daemon made a token: %v", err)
	}
	for _, c := range []struct {
		name string
		cert *testkit.Pair
		ok   bool
	}{{"signed by the CA", good, true}, {"signed by another CA", bad, false}, {"no certificate", nil, false}} {
		cl := ca.Client(t, c.cert)
		resp, err := cl.Get(base + "/api/v1/sessions")
		if c.ok && err != nil {
			t.Errorf("%s: %v", c.name, err)
		} else if c.ok && resp.StatusCode != 200 {
			t.Errorf("%s: %s", c.name, resp.Status)
		}
		if !c.ok && err == nil {
			t.Errorf("%s: %s, want a refused handshake", c.name, resp.Status)
		}
		if resp != nil {
			resp.Body.Close()
		}
	}
}

// TestAPIRecordedLog: the same agreement on the log recorded from a real
// sshd (scripts/record-samples.sh): the day's numbers and the top
// addresses are what report makes of the file.
func TestAPIRecordedLog(t *testing.T) {
	h := newHarness(t)
	rec, err := os.ReadFile("../../testdata/recorded/openssh-9.2-rfc3339.log")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(h.dir, "auth.log"), rec, 0o644)
	writeConfig(t, h.dir, "[log]\nfrom_start = true\n[alerts]\ntimezone = \"UTC\"\n[api]\nlisten = \"127.0.0.1:0\"\n")
	h.start()
	lines := int64(strings.Count(string(rec), "\n"))
	testkit.Eventually(t, 10*time.Second, "every line read", func() (bool, string) {
		n := h.d.Stats().Scan.Lines
		return n == lines, fmt.Sprint(n)
	})
	h.halt() // the counts flushed, the scanner's held records emitted
	h.start()
	var sum report.Summary
	conns := map[string]bool{}
	var sc detect.Scanner
	emit := func(r *detect.Record) {
		sum.Add(r)
		if r.PID != 0 {
			conns[fmt.Sprint(r.Host, r.PID)] = true
		}
	}
	for i, line := range strings.Split(strings.TrimSuffix(string(rec), "\n"), "\n") {
		sc.Line("auth.log", int64(i+1), line, emit)
	}
	sc.Flush(emit)
	var want api.Day
	want.Date = "2026-11-24"
	for _, c := range sum.Sorted() {
		want.Failed += c.Failed
		want.Probes += c.Probes
		want.Logins += c.Successes
		want.Addresses++
	}
	want.Connections = int64(len(conns))
	var got api.Summary
	getJSON(t, http.DefaultClient, "http://"+h.d.APIAddr()+"/api/v1/summary?from=2026-11-24&to=2026-11-24", "", &got)
	d := got.Days[0]
	d.Bans = 0 // bans start when the daemon reads: today
	if !reflect.DeepEqual(d, want) {
		t.Errorf("API %+v, report %+v", d, want)
	}
	list := sum.Sorted()
	if len(got.TopAddresses) != len(list) {
		t.Fatalf("%d top addresses, report %d", len(got.TopAddresses), len(list))
	}
	for i, a := range got.TopAddresses {
		if a.IP != list[i].Client || a.Failed != list[i].Failed || a.Probes != list[i].Probes {
			t.Errorf("top %d: API %+v, report %s %d/%d", i, a, list[i].Client, list[i].Failed, list[i].Probes)
		}
	}
}
