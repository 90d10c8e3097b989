package api

import (
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"sshguard-go/internal/browsertest"
	"sshguard-go/internal/session"
	"sshguard-go/internal/store"
	"sshguard-go/internal/testkit"
)

// liveServer is an API on a database with 30 days of attacks up to now,
// bans in force and logins of each severity.
func liveServer(t *testing.T) (*httptest.Server, *Server) {
	t.Helper()
	db, _ := testkit.OpenDB(t)
	rnd := rand.New(rand.NewPCG(1, 2))
	now := time.Now()
	for h := 30 * 24; h >= 0; h-- {
		var c store.Counts
		n := 5 + rnd.IntN(40)
		if h%24 > 18 {
			n *= 4 // evenings are busy
		}
		for i := range n {
			ip := fmt.Sprintf("203.0.113.%d", rnd.IntN(30))
			if i%5 == 0 {
				c.Add("probe", ip, "", false, true)
				continue
			}
			c.Add("failure", ip, []string{"root", "admin", "oracle", "ubuntu", "test"}[rnd.IntN(5)], true, false)
		}
		c.Conns, c.Addresses, c.DayConns, c.DayAddresses = int64(n), int64(n/3), int64(n), int64(n/10)
		db.AddCounts(now.Add(-time.Duration(h)*time.Hour), c)
	}
	for i := range 3 {
		testkit.RecordBans(t, db, &store.Ban{Prefix: netip.MustParsePrefix(fmt.Sprintf("203.0.113.%d/32", i)), Start: now.Add(-time.Duration(i) * time.Minute),
			Expires: now.Add(time.Duration(i+1) * time.Hour), Reason: fmt.Sprintf("%d failed attempts in 10m", 5+i)})
	}
	testkit.RecordBans(t, db, &store.Ban{Prefix: netip.MustParsePrefix("2001:db8:bad::/48"), Start: now, Reason: "permanent after 5 bans"})
	for i, sev := range []string{"info", "warning", "high"} {
		db.RecordLogin(store.Login{Time: now.Add(-time.Duration(i) * time.Hour), User: "alice", Addr: netip.MustParseAddr("198.51.100.7"), Method: "publickey",
			Key: "ED25519 SHA256:abc"}, func(_ store.LoginHistory, l *store.Login) []byte {
			l.Severity = sev
			if sev != "info" {
				l.Tags = []string{"new network"}
			}
			return nil
		})
	}
	end := now.Add(-2 * time.Hour)
	for _, ss := range []*session.Session{
		{Host: "web-01", PID: 20, User: "alice", IP: "198.51.100.7", Port: 50000, Method: "publickey", Start: now.Add(-3 * time.Hour), End: &end,
			Duration: 3600, EndReason: session.EndLogout, Transfers: []session.Transfer{{Path: "/srv/backup.tar", BytesRead: 52428800}},
			Commands: []session.Command{{Argv: []string{"tar", "cf", "-", "/srv"}}}},
		{Host: "web-01", PID: 21, User: "bob", IP: "198.51.100.8", Port: 50001, Method: "password", Start: now.Add(-10 * time.Minute), Active: true,
			Transfers: []session.Transfer{}, Commands: []session.Command{}},
	} {
		db.PutSession(store.SessionKey(ss.Start, ss.Host, ss.PID), ss.Marshal(), ss.Active)
	}
	s := &Server{DB: db, Host: "web-01", Loc: time.Local, Events: NewEvents(10), Token: testToken, OpenCounts: true}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return ts, s
}

// TestDashboardInBrowser: the host dashboard in a real headless Chromium,
// as on a desktop in light mode and on a phone in dark mode. Without the
// token (on loopback) it draws the counts and asks for the token, showing
// nothing of the bans, logins and sessions; with it, everything: no
// console error, no request off the page's origin, both charts drawn,
// and the numbers shown are the API's.
func TestDashboardInBrowser(t *testing.T) {
	ts, _ := liveServer(t)
	week := get[Summary](t, ts.URL+"/api/v1/summary")
	bans := get[Bans](t, ts.URL+"/api/v1/bans")
	for _, c := range []struct {
		name          string
		width, height int
		dark          bool
	}{{"dashboard-host", 1280, 900, false}, {"dashboard-host-phone-dark", 390, 844, true}} {
		t.Run(c.name, func(t *testing.T) {
			p := browsertest.Open(t, ts.URL+"/", c.width, c.height, c.dark)
			text := func(sel string) string {
				return browsertest.Eval[string](p, fmt.Sprintf("document.querySelector(%q).textContent", sel))
			}
			today := week.Days[len(week.Days)-1]
			counts := func() {
				t.Helper()
				if blank := p.Blank("#perday canvas, #perhour canvas"); len(blank) != 2 || blank[0] || blank[1] {
					t.Errorf("charts blank: %v", blank)
				}
				if got := text("#fig-failed b"); got != fmt.Sprint(today.Failed) && got != fmtThousands(today.Failed) {
					t.Errorf("failed today shown %q, API %d", got, today.Failed)
				}
			}

			// No token yet: the counts, and the form asking for it.
			p.Do(chromedp.WaitReady(`body[data-counts="1"]`), chromedp.WaitVisible(`#login`))
			counts()
			if got := text("#fig-bans b"); got != "–" {
				t.Errorf("bans in force shown %q without the token", got)
			}
			for _, sel := range []string{"#bans tbody", "#logins tbody", "#active tbody", "#sessions tbody"} {
				if got := text(sel); got != "" {
					t.Errorf("%s without the token: %q", sel, got)
				}
			}
			if got := browsertest.Eval[string](p, `document.body.dataset.loaded || ""`); got != "" {
				t.Errorf("loaded %q without the token", got)
			}

			// The token given: everything.
			p.Do(chromedp.SendKeys(`#token`, testToken), chromedp.Click(`#login button`))
			p.Do(chromedp.WaitReady(`body[data-loaded="1"]`))
			counts()
			if got := text("#fig-bans b"); got != fmt.Sprint(bans.Total) {
				t.Errorf("bans shown %q, API %d", got, bans.Total)
			}
			if got := text("#addrs tbody tr td"); got != week.TopAddresses[0].IP {
				t.Errorf("first address %q, API %q", got, week.TopAddresses[0].IP)
			}
			if got := text("#users tbody tr td:nth-child(2)"); got != fmt.Sprint(week.TopUsers[0].Failed) {
				t.Errorf("first user's count %q, API %d", got, week.TopUsers[0].Failed)
			}
			if got := browsertest.Eval[int](p, `document.querySelectorAll("#bans tbody tr").length`); got != bans.Total {
				t.Errorf("%d ban rows, API %d", got, bans.Total)
			}
			if got := text("#logins tbody"); !strings.Contains(got, "high") || !strings.Contains(got, "new network") {
				t.Errorf("logins %q", got)
			}
			if got := text("#active tbody"); !strings.Contains(got, "bob") || strings.Contains(got, "alice") {
				t.Errorf("logged in now: %q", got)
			}
			if got := text("#sessions tbody"); !strings.Contains(got, "logout") || !strings.Contains(got, "50.0 MiB") || !strings.Contains(got, "open") {
				t.Errorf("last sessions: %q", got)
			}
			if c.dark {
				if bg := browsertest.Eval[string](p, `getComputedStyle(document.body).backgroundColor`); bg != "rgb(13, 17, 23)" {
					t.Errorf("dark mode background %s", bg)
				}
				if w := browsertest.Eval[int](p, `document.documentElement.scrollWidth`); w > c.width {
					t.Errorf("the page is %d px wide on a %d px phone", w, c.width)
				}
			}
			p.Screenshot(c.name)
			// The one error expected: the browser logs the 401 of the bans
			// asked for without the token.
			pr := slices.DeleteFunc(p.Problems(), func(m string) bool {
				return strings.Contains(m, "status of 401") && strings.Contains(m, ts.URL+"/api/v1/bans?")
			})
			if len(pr) > 0 {
				t.Errorf("console: %q", pr)
			}
			if f := p.Foreign(ts.URL); len(f) > 0 {
				t.Errorf("requests to another origin: %q", f)
			}
		})
	}
}

// fmtThousands writes n as the page does (en: 1,234).
func fmtThousands(n int64) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
