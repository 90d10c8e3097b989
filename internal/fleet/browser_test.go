package fleet

import (
	"context"
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"sshguard-go/internal/browsertest"
	"sshguard-go/internal/testkit"
)

// TestFleetDashboardInBrowser: the fleet dashboard in headless Chromium
// over two hosts and one that is down: the totals are the API's, the
// down host says so, the chart is drawn; a host's row opens its
// dashboard through the aggregator, which draws its charts too and links
// back to the fleet.
func TestFleetDashboardInBrowser(t *testing.T) {
	// The hosts' own dashboards show their logins and sessions only with
	// their tokens, which the aggregator puts in.
	tokA, tokB := "token-of-web-01-xxxxxxxxxxxxxxxx", "token-of-web-02-xxxxxxxxxxxxxxxx"
	a, b := startHost(t, 12, tokA, 0), startHost(t, 30, tokB, 0)
	file := writeFile(t, "hosts.toml", fmt.Sprintf("timeout = \"1s\"\n[[host]]\nname = \"web-01\"\nurl = %q\ntoken_file = %q\n[[host]]\nname = \"web-02\"\nurl = %q\ntoken_file = %q\n[[host]]\nname = \"db-01\"\nurl = \"http://%s\"\n",
		a.url, writeFile(t, "a.token", tokA), b.url, writeFile(t, "b.token", tokB), deadAddr(t)))
	f, _ := Load(file)
	fl, err := New(f)
	if err != nil {
		t.Fatal(err)
	}
	const fleetTok = "fleet-token-yyyyyyyyyyyyyyyyyy"
	agg := httptest.NewServer(fl.Handler(fleetTok))
	defer agg.Close()
	s, _ := fl.Summary(t.Context(), time.Now().Format(time.DateOnly))

	p := browsertest.Open(t, agg.URL+"/", 1280, 800, false)
	p.Do(chromedp.WaitVisible("#login"), chromedp.SendKeys("#token", fleetTok), chromedp.Click("#login button"))
	p.Do(chromedp.WaitReady(`body[data-loaded="1"]`))
	text := func(sel string) string {
		return browsertest.Eval[string](p, fmt.Sprintf("document.querySelector(%q).textContent", sel))
	}
	if got := text("#total-failed b"); got != fmt.Sprint(s.Total.Failed) {
		t.Errorf("fleet failed %q, API %d", got, s.Total.Failed)
	}
	if got := text("#total-down b"); got != "1" {
		t.Errorf("hosts down %q", got)
	}
	if got := text(`tr[data-host="db-01"] td:nth-child(2)`); got[:4] != "down" {
		t.Errorf("db-01 state %q", got)
	}
	if got := text(`tr[data-host="web-02"] td:nth-child(3)`); got != "30" {
		t.Errorf("web-02 failed %q", got)
	}
	if blank := p.Blank("#perday canvas"); len(blank) != 1 || blank[0] {
		t.Errorf("chart blank: %v", blank)
	}
	p.Screenshot("dashboard-fleet")

	// A row opens that host's dashboard, through the aggregator.
	p.Do(chromedp.Click(`tr[data-host="web-02"] td:nth-child(3)`))
	testkit.Eventually(t, 10*time.Second, "web-02's dashboard", func() (bool, string) {
		u := browsertest.Poll(p, `location.pathname + " " + (document.body && document.body.dataset.loaded)`)
		return u == "/hosts/web-02/ 1", u
	})
	if got := text("#fig-failed b"); got != "30" {
		t.Errorf("web-02's dashboard shows %q failed", got)
	}
	if blank := p.Blank("#perday canvas, #perhour canvas"); len(blank) != 2 || blank[0] || blank[1] {
		t.Errorf("host charts blank: %v", blank)
	}
	// The one error expected: the first summary's 401, which asked for the
	// token.
	if pr := slices.DeleteFunc(p.Problems(), func(s string) bool {
		return strings.Contains(s, "401 (Unauthorized)") && strings.Contains(s, "/api/v1/fleet/summary")
	}); len(pr) > 0 {
		t.Errorf("console: %q", pr)
	}
	// Its "← fleet" link goes back to the fleet's page, on the same day.
	p.Do(chromedp.Click(`#fleet a`))
	testkit.Eventually(t, 10*time.Second, "the fleet's page again", func() (bool, string) {
		u := browsertest.Poll(p, `location.pathname + location.search + " " + (document.body && document.body.dataset.loaded) + " " + document.getElementById("date")?.value`)
		return u == "/?date="+s.Date+" 1 "+s.Date, u
	})
	if fr := p.Foreign(agg.URL); len(fr) > 0 {
		t.Errorf("requests off the aggregator: %q", fr)
	}

	// Without a token of its own the aggregator shows a host's counts,
	// and says why its bans, logins and sessions are not there.
	open := httptest.NewServer(fl.Handler(""))
	defer open.Close()
	q := browsertest.Open(t, open.URL+"/hosts/web-02/", 1280, 800, false)
	q.Do(chromedp.WaitReady(`body[data-loaded="1"]`))
	note := browsertest.Eval[string](q, `document.getElementById("closed").hidden ? "" : document.getElementById("closed").textContent`)
	if got := browsertest.Eval[string](q, `document.querySelector("#fig-failed b").textContent`); got != "30" || !strings.Contains(note, "without --token-file") {
		t.Errorf("without a token: %q failed shown, note %q", got, note)
	}
}

// TestHostileHostInBrowser: a host in an attacker's hands serves a page
// and scripts that, run on the aggregator's origin, would read the fleet
// token from session storage, fetch the other host's bans through the
// aggregator and navigate away with both; its API's strings are HTML. In
// headless Chromium, logged in on the fleet page and opening that host's
// row: the page is the aggregator's own host dashboard, the host's
// script never ran (no mark, nothing reached the exfil server, the other
// host was never asked for its bans, no request left the origin), and the
// host's strings are shown as text. Its HTML or redirect, asked for by the
// page or opened directly, is a JSON error naming it, sandboxed: no
// origin, no storage.
func TestHostileHostInBrowser(t *testing.T) {
	hf := startHostileFleet(t)
	date := time.Now().Format(time.DateOnly)

	p := browsertest.Open(t, hf.agg.URL+"/", 1280, 900, false)
	p.Do(chromedp.WaitVisible("#login"), chromedp.SendKeys("#token", fleetTok), chromedp.Click("#login button"))
	p.Do(chromedp.WaitReady(`body[data-loaded="1"]`), chromedp.Click(`tr[data-host="hostile"] td:nth-child(3)`))
	testkit.Eventually(t, 10*time.Second, "the hostile host's dashboard", func() (bool, string) {
		u := browsertest.Poll(p, `location.href + " " + (document.body && document.body.dataset.loaded)`)
		return u == hf.agg.URL+"/hosts/hostile/#day="+date+" 1", u
	})
	text := func(sel string) string {
		return browsertest.Eval[string](p, fmt.Sprintf("document.querySelector(%q).textContent", sel))
	}
	if mark := browsertest.Eval[string](p, `document.documentElement.dataset.pwned || ""`); mark != "" {
		t.Errorf("the host's script ran: %q", mark)
	}
	if n := browsertest.Eval[int](p, `document.querySelectorAll("#hostile-page").length`); n != 0 {
		t.Error("the host's page is shown")
	}
	if got := text("#fig-failed b"); got != "9" {
		t.Errorf("failed today shown %q, the host said 9", got)
	}
	if blank := p.Blank("#perday canvas, #perhour canvas"); len(blank) != 2 || blank[0] || blank[1] {
		t.Errorf("charts blank: %v", blank)
	}
	for sel, want := range map[string]string{"#host": evilHost, "#addrs tbody td": evilIP, "#users tbody td": evilUser,
		"#bans tbody td:nth-child(3)": evilReason, "#logins tbody td:nth-child(2)": evilUser, "#sessions tbody td:nth-child(5)": evilReason} {
		if got := text(sel); got != want {
			t.Errorf("%s shows %q, want the host's string as text, %q", sel, got, want)
		}
	}
	if n := browsertest.Eval[int](p, `document.querySelectorAll("header img, main img, main script, main iframe, #injected").length`); n != 0 {
		t.Errorf("%d elements made of the host's strings", n)
	}
	if a := browsertest.Eval[string](p, `document.querySelector("#fleet:not([hidden]) a").href`); a != hf.agg.URL+"/?date="+date {
		t.Errorf("the way back to the fleet: %q", a)
	}

	// The page asks for a day the host answers with HTML: the error shown
	// names the host.
	p.Do(chromedp.Evaluate[chromedp.Void](`location.hash = "day=1999-01-01"`))
	testkit.Eventually(t, 10*time.Second, "the refused day's error", func() (bool, string) {
		s := text("#state")
		return strings.Contains(s, `host hostile: its answer is "text/html", not JSON`), s
	})

	// Opened directly (the fleet token sent, as a client of the fleet's
	// API would), the host's HTML and its redirect are JSON errors in a
	// sandbox: an opaque origin, no storage.
	p.Do(chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Authorization": "Bearer " + fleetTok}})
		return err
	}))
	for _, path := range []string{"/hosts/hostile/api/v1/days/1999-01-01", "/hosts/hostile/api/v1/events"} {
		ctx, cancel := context.WithTimeout(p.Ctx, 30*time.Second)
		resp, err := chromedp.Run(ctx, chromedp.NavigateResponse(hf.agg.URL+path))
		cancel()
		if err != nil {
			t.Fatalf("open %s: %v", path, err)
		}
		if csp, _ := resp.Headers["Content-Security-Policy"].(string); resp.Status != 502 || resp.MimeType != "application/json" || !strings.HasPrefix(csp, "sandbox;") {
			t.Errorf("%s: %d %s, CSP %q", path, resp.Status, resp.MimeType, csp)
		}
		got := browsertest.Eval[string](p, `[location.href, document.contentType, self.origin,
			(() => { try { sessionStorage.length; return "storage readable" } catch (e) { return e.name } })(),
			JSON.parse(document.body.innerText).error].join(" | ")`)
		want := hf.agg.URL + path + " | application/json | null | SecurityError | host hostile: "
		if !strings.HasPrefix(got, want) {
			t.Errorf("%s opened:\n %s\nwant\n %s...", path, got, want)
		}
	}

	if got := hf.exfil.requests(); len(got) > 0 {
		t.Errorf("the exfil server had %q", got)
	}
	for _, path := range hf.other.seen() {
		if path != "/api/v1/summary" {
			t.Errorf("the other host was asked %s", path)
		}
	}
	for _, path := range hf.hostile.seen() {
		if !strings.HasPrefix(path, "/api/v1/") {
			t.Errorf("the hostile host was asked %s", path)
		}
	}
	if fr := p.Foreign(hf.agg.URL); len(fr) > 0 {
		t.Errorf("requests off the aggregator: %q", fr)
	}
}
