package fleet

import (
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"sshguard-go/internal/browsertest"
	"sshguard-go/internal/testkit"
)

// TestFleetDashboardInBrowser: the fleet dashboard in headless Chromium
// over two hosts and one that is down: the totals are the API's, the
// down host says so, the chart is drawn; a host's row opens its own
// dashboard through the aggregator, which draws its charts too.
func TestFleetDashboardInBrowser(t *testing.T) {
	a, b := startHost(t, 12, "", 0), startHost(t, 30, "", 0)
	file := writeFile(t, "hosts.toml", fmt.Sprintf("timeout = \"1s\"\n[[host]]\nname = \"web-01\"\nurl = %q\n[[host]]\nname = \"web-02\"\nurl = %q\n[[host]]\nname = \"db-01\"\nurl = \"http://%s\"\n",
		a.url, b.url, deadAddr(t)))
	f, _ := Load(file)
	fl, err := New(f)
	if err != nil {
		t.Fatal(err)
	}
	agg := httptest.NewServer(fl.Handler(""))
	defer agg.Close()
	s, _ := fl.Summary(t.Context(), time.Now().Format(time.DateOnly))

	p := browsertest.Open(t, agg.URL+"/", 1280, 800, false)
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
		u := browsertest.Eval[string](p, `location.pathname + " " + (document.body && document.body.dataset.loaded)`)
		return u == "/hosts/web-02/ 1", u
	})
	if got := text("#fig-failed b"); got != "30" {
		t.Errorf("web-02's dashboard shows %q failed", got)
	}
	if blank := p.Blank("#perday canvas, #perhour canvas"); len(blank) != 2 || blank[0] || blank[1] {
		t.Errorf("host charts blank: %v", blank)
	}
	if pr := p.Problems(); len(pr) > 0 {
		t.Errorf("console: %q", pr)
	}
	if fr := p.Foreign(agg.URL); len(fr) > 0 {
		t.Errorf("requests off the aggregator: %q", fr)
	}
}
