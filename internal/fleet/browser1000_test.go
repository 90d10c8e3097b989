package fleet

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"sshguard-go/internal/browsertest"
	"sshguard-go/internal/testkit"
)

// TestFleetOf1000InBrowser: fleet serve --nats over 1,000 hosts' summaries
// in an embedded nats-server's bucket, in headless Chromium. The top
// attackers table lists the address every host lists, with where it is
// banned; the hosts table sorts by a click on a header (both ways) and
// filters by the box; a host's link opens its page built from its
// summary (the bucket knows no host's API), a down host's says it is
// unreachable, when it last told, and why, as text; each has a way back
// to the fleet. At 390 px wide neither page scrolls sideways.
func TestFleetOf1000InBrowser(t *testing.T) {
	const n = 1000
	url := startNATS(t)
	sf := putFleet(t, url, n)
	src := watchFleet(t, url, n)
	fl := NewView(src, time.Second)
	agg := httptest.NewServer(fl.Handler(fleetTok))
	defer agg.Close()
	date := sf.now.Format(time.DateOnly)
	shots := os.Getenv("SCREENSHOTS")
	if shots == "" {
		t.Setenv("SCREENSHOTS", t.TempDir())
	}

	p := browsertest.Open(t, agg.URL+"/", 1280, 900, false)
	login := func(p *browsertest.Page) {
		p.Do(chromedp.WaitVisible("#login"), chromedp.SendKeys("#token", fleetTok), chromedp.Click("#login button"))
		p.Do(chromedp.WaitReady(`body[data-loaded="1"]`))
	}
	login(p)
	eval := func(p *browsertest.Page, js string) string { return browsertest.Eval[string](p, js) }
	text := func(p *browsertest.Page, sel string) string {
		return eval(p, fmt.Sprintf("(document.querySelector(%q) || {}).textContent || ''", sel))
	}
	visible := func() []string {
		return browsertest.Eval[[]string](p, `Array.from(document.querySelectorAll("#hosts tbody tr")).filter((r) => !r.hidden).map((r) => r.dataset.host)`)
	}
	if got := visible(); len(got) != n || !slices.IsSorted(got) {
		t.Fatalf("%d host rows, sorted %v", len(got), slices.IsSorted(got))
	}

	// Top attackers: the address every host lists, on the hosts up, banned
	// on every tenth; its hosts are links.
	up := n - len(sf.down)
	if got := text(p, "#attackers tbody tr:first-child td:nth-child(1)") + " " + text(p, "#attackers tbody tr:first-child td:nth-child(2)"); got != fmt.Sprintf("%s %d", commonAttacker, up) {
		t.Errorf("first attacker %q", got)
	}
	where := text(p, "#attackers tbody tr:first-child td:nth-child(5)")
	if !strings.HasPrefix(where, "web-0000, web-0010, ") || !strings.HasSuffix(where, fmt.Sprintf("and %d more", n/10-len(sf.down)-maxBannedOn)) {
		t.Errorf("banned on %q", where)
	}
	if got := eval(p, `document.querySelector("#attackers tbody tr:first-child td:nth-child(5) a").getAttribute("href")`); got != "hosts/web-0000/#day="+date {
		t.Errorf("its first host's link %q", got)
	}
	if got := eval(p, `document.documentElement.dataset.pwned || String(document.querySelectorAll("main img").length)`); got != "0" {
		t.Errorf("a host's string made an element: %q", got)
	}

	// Sort: Failed, the most first, then the least first; the down hosts
	// have none.
	p.Do(chromedp.Click(`#hosts th[data-key="failed"] button`))
	if got := visible(); got[0] != simName(n-1) || got[n-1] != sortedDown(sf)[len(sf.down)-1] {
		t.Errorf("by failed, the most first: %s ... %s", got[0], got[n-1])
	}
	p.Do(chromedp.Click(`#hosts th[data-key="failed"] button`))
	if got := visible(); !sf.down[got[0]] || got[len(sf.down)] != simName(0) {
		t.Errorf("by failed, the least first: %v", got[:len(sf.down)+1])
	}
	if got := eval(p, `document.querySelector('#hosts th[data-key="failed"]').getAttribute("aria-sort")`); got != "ascending" {
		t.Errorf("aria-sort %q", got)
	}
	p.Do(chromedp.Click(`#hosts th[data-key="name"] button`))

	// Filter: a name's prefix, then "down".
	p.Do(chromedp.SendKeys("#filter", "web-09"))
	if got := visible(); len(got) != 100 || got[0] != "web-0900" || got[99] != "web-0999" {
		t.Errorf("filter web-09: %d rows", len(got))
	}
	if got := text(p, "#shown"); !strings.HasPrefix(got, "100 of 1,000 hosts") {
		t.Errorf("shown %q", got)
	}
	p.Do(chromedp.Evaluate[chromedp.Void](`document.getElementById("filter").value = ""`), chromedp.SendKeys("#filter", "down"))
	if got := visible(); !slices.Equal(got, sortedDown(sf)) {
		t.Errorf("filter down: %v", got)
	}
	p.Screenshot("fleet-1000-filtered")

	// A down host's page: readable, not JSON; then the way back.
	p.Do(chromedp.Click(`tr[data-host="web-0050"] td.name a`))
	testkit.Eventually(t, 10*time.Second, "web-0050's page", func() (bool, string) {
		u := browsertest.Poll(p, `location.pathname + " " + document.contentType + " " + (document.body && document.body.dataset.loaded)`)
		return u == "/hosts/web-0050/status text/html 1", u
	})
	if got := text(p, "#up"); !strings.Contains(got, "unreachable") {
		t.Errorf("the down host's state %q", got)
	}
	if got := text(p, "#updated"); !strings.HasPrefix(got, "last summary ") {
		t.Errorf("its last summary %q", got)
	}
	if got := text(p, "#why"); !strings.HasPrefix(got, "Why: no summary since "+sf.now.Add(-10*time.Minute).Format("2006-01-02T15:04")) {
		t.Errorf("why %q", got)
	}
	if blank := p.Blank("#perday canvas"); len(blank) != 1 || blank[0] {
		t.Errorf("its chart: %v", blank)
	}
	p.Screenshot("fleet-host-down")
	p.Do(chromedp.Click(`#fleet a`))
	testkit.Eventually(t, 10*time.Second, "the fleet's page again", func() (bool, string) {
		u := browsertest.Poll(p, `location.pathname + location.search + " " + (document.body && document.body.dataset.loaded)`)
		return u == "/?date="+date+" 1", u
	})

	// An up host's link (NATS mode: no API known): its page from its summary.
	p.Do(chromedp.Click(`tr[data-host="web-0123"] td:nth-child(3)`))
	testkit.Eventually(t, 10*time.Second, "web-0123's page", func() (bool, string) {
		u := browsertest.Poll(p, `location.pathname + " " + (document.body && document.body.dataset.loaded)`)
		return u == "/hosts/web-0123/ 1", u
	})
	if got := strings.ReplaceAll(text(p, "#fig-failed b"), ",", ""); got != fmt.Sprint(sf.failed["web-0123"]) {
		t.Errorf("web-0123's failed today %q, want %d", got, sf.failed["web-0123"])
	}
	if got := text(p, "#up") + " | " + text(p, "#addrs tbody tr:first-child td:first-child"); got != "up it answers | "+commonAttacker {
		t.Errorf("web-0123's page: %q", got)
	}
	if got := eval(p, `document.querySelector("#fleet a").href`); got != agg.URL+"/?date="+date {
		t.Errorf("the way back %q", got)
	}
	if pr := slices.DeleteFunc(p.Problems(), func(s string) bool {
		return strings.Contains(s, "401 (Unauthorized)") && strings.Contains(s, "/api/v1/fleet/summary")
	}); len(pr) > 0 {
		t.Errorf("console: %q", pr)
	}
	if fr := p.Foreign(agg.URL); len(fr) > 0 {
		t.Errorf("requests off the aggregator: %q", fr)
	}

	// A phone: 390 px wide, nothing scrolls sideways.
	q := browsertest.Open(t, agg.URL+"/", 390, 844, false)
	login(q)
	for _, page := range []struct{ path, shot string }{{"/", "fleet-phone"}, {"/hosts/web-0050/status#day=" + date, "fleet-host-phone"}} {
		if page.path != "/" {
			q.Do(chromedp.Navigate(agg.URL + page.path))
			testkit.Eventually(t, 30*time.Second, page.path, func() (bool, string) {
				u := browsertest.Poll(q, `location.pathname + " " + (document.body && document.body.dataset.loaded) + " " + document.getElementById("state").textContent`)
				return strings.HasPrefix(u, "/hosts/web-0050/status 1 updated"), u
			})
		}
		if w := browsertest.Eval[int](q, `document.documentElement.scrollWidth`); w > 390 {
			t.Errorf("%s at 390 px: %d px wide", page.path, w)
		}
		// Nor is a table cut inside its card.
		if cut := browsertest.Eval[[]string](q, `Array.from(document.querySelectorAll("main table")).filter((t) => t.scrollWidth > t.parentElement.clientWidth).map((t) => t.id)`); len(cut) > 0 {
			t.Errorf("%s at 390 px: tables cut %q", page.path, cut)
		}
		if page.path == "/" { // a page short enough for a screenshot
			q.Do(chromedp.SendKeys("#filter", "web-000"))
		}
		q.Screenshot(page.shot)
	}
}

// sortedDown are the down hosts' names, sorted.
func sortedDown(sf *simFleet) []string {
	var out []string
	for h := range sf.down {
		out = append(out, h)
	}
	slices.Sort(out)
	return out
}

// TestDownHostPageInBrowser: with hosts.toml, a host whose API answers
// every request with an error whose text is HTML. Its row says down with
// that text, as text; its link opens a readable page saying it is
// unreachable, that it never answered, and why (as text, no element made
// of it), with a way back; its dashboard, opened directly, goes to that
// page.
func TestDownHostPageInBrowser(t *testing.T) {
	const evil = `<img src=x onerror="document.documentElement.dataset.pwned=1">broken disk`
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		json.NewEncoder(w).Encode(map[string]string{"error": evil})
	}))
	defer broken.Close()
	a := startHost(t, 12, "", 0)
	f, err := Load(writeFile(t, "hosts.toml", fmt.Sprintf("[[host]]\nname = \"web-01\"\nurl = %q\n[[host]]\nname = \"broken\"\nurl = %q\n", a.url, broken.URL)))
	if err != nil {
		t.Fatal(err)
	}
	fl, err := New(f)
	if err != nil {
		t.Fatal(err)
	}
	agg := httptest.NewServer(fl.Handler(fleetTok))
	defer agg.Close()
	date := time.Now().Format(time.DateOnly)

	p := browsertest.Open(t, agg.URL+"/", 1280, 800, false)
	p.Do(chromedp.WaitVisible("#login"), chromedp.SendKeys("#token", fleetTok), chromedp.Click("#login button"))
	p.Do(chromedp.WaitReady(`body[data-loaded="1"]`))
	text := func(sel string) string {
		return browsertest.Eval[string](p, fmt.Sprintf("(document.querySelector(%q) || {}).textContent || ''", sel))
	}
	if got := text(`tr[data-host="broken"] td:nth-child(2)`); got != "down 500 Internal Server Error: "+evil {
		t.Errorf("broken's state %q", got)
	}
	p.Do(chromedp.Click(`tr[data-host="broken"] td.name a`))
	testkit.Eventually(t, 10*time.Second, "broken's page", func() (bool, string) {
		u := browsertest.Poll(p, `location.pathname + " " + document.contentType + " " + (document.body && document.body.dataset.loaded)`)
		return u == "/hosts/broken/status text/html 1", u
	})
	for sel, want := range map[string]string{"#up": "unreachable it does not answer the aggregator", "#updated": "no summary from it yet",
		"#why": "Why: 500 Internal Server Error: " + evil, "#source": "from its API"} {
		if got := text(sel); got != want {
			t.Errorf("%s: %q, want %q", sel, got, want)
		}
	}
	if got := browsertest.Eval[string](p, `[document.documentElement.dataset.pwned || "", document.querySelectorAll("main img").length, document.getElementById("nothing").hidden, document.getElementById("live").hidden].join(" ")`); got != " 0 false true" {
		t.Errorf("pwned, images, nothing known hidden, live link hidden: %q", got)
	}
	p.Screenshot("fleet-host-unreachable")
	if got := browsertest.Eval[string](p, `document.querySelector("#fleet a").href`); got != agg.URL+"/?date="+date {
		t.Errorf("the way back %q", got)
	}

	// Its dashboard opened directly: the host's first answer is an error,
	// so the page of what is known of it instead.
	p.Do(chromedp.Navigate(agg.URL + "/hosts/broken/#day=" + date))
	testkit.Eventually(t, 10*time.Second, "the dashboard giving way", func() (bool, string) {
		u := browsertest.Poll(p, `location.pathname + location.hash + " " + (document.body && document.body.dataset.loaded)`)
		return u == "/hosts/broken/status#day="+date+" 1", u
	})
}
