package alert

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/wneessen/go-mail"

	"sshguard-go/internal/alerttest"
	"sshguard-go/internal/store"
	"sshguard-go/internal/testkit"
)

var t0 = time.Date(2026, 11, 24, 14, 0, 0, 0, time.UTC)

func banMsg(host, addr string, users ...string) *Message {
	p := netip.MustParsePrefix(addr)
	pol := Policy{Host: host, Routes: []Route{{Channel: "email", Kinds: Kinds}}}
	return pol.BanMessage(Ban{Prefix: p, Attempts: float64(5 + len(users)), Users: users, Duration: time.Hour, Nth: 2,
		Reason: "5 failed attempts in 10m", First: "Failed password for root from " + p.Addr().String(), Last: "last line"}, t0)
}

func mailer(t *testing.T, s *alerttest.SMTP, tlsMode, auth string, to ...string) *Mailer {
	t.Helper()
	if len(to) == 0 {
		to = []string{"admin@example.org", "oncall@example.org"}
	}
	m, err := NewMailer(MailConfig{Host: s.Host, Port: s.Port, TLS: tlsMode, Auth: auth, Username: s.User, Password: s.Password,
		From: "sshguard-go@web-01.example.org", To: to, CAFile: s.CAFile, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestMail(t *testing.T) {
	for _, tc := range []struct {
		name     string
		implicit bool
		tls      string
		auth     string
	}{
		{"starttls plain", false, "starttls", "plain"},
		{"starttls login", false, "starttls", "login"},
		{"implicit tls", true, "tls", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := alerttest.StartSMTP(t, alerttest.Options{ImplicitTLS: tc.implicit})
			m := banMsg("web-01", "203.0.113.7/32", "root", "admin", "test")
			if err := mailer(t, s, tc.tls, tc.auth).Send(context.Background(), Render(m, "7.email")); err != nil {
				t.Fatal(err)
			}
			got := s.Wait(1, 5*time.Second)[0]
			wantAuth := strings.ToUpper(tc.auth)
			if wantAuth == "" {
				wantAuth = "PLAIN"
			}
			if !got.TLS || got.Auth != wantAuth {
				t.Errorf("tls %v auth %q, want encrypted and %s", got.TLS, got.Auth, wantAuth)
			}
			if want := "[web-01] banned 203.0.113.7 (8 failed attempts, root/admin/test)"; got.Header.Get("Subject") != want {
				t.Errorf("subject %q, want %q", got.Header.Get("Subject"), want)
			}
			if len(got.To) != 2 || got.From != "sshguard-go@web-01.example.org" {
				t.Errorf("envelope from %q to %v", got.From, got.To)
			}
			if !strings.Contains(got.Header.Get("To"), "oncall@example.org") || got.Header.Get("Date") == "" ||
				!strings.Contains(got.Header.Get("Message-Id"), "7.email.sshguard-go@web-01.example.org") {
				t.Errorf("headers: %v", got.Header)
			}
			if got.Header.Get("X-Sshguard-Severity") != "warning" {
				t.Errorf("severity header %q", got.Header.Get("X-Sshguard-Severity"))
			}
			for _, want := range []string{"Banned: 203.0.113.7 for 1h0m0s (ban number 2", "Users tried: root, admin, test",
				"Counted failed attempts: 8", "First evidence: Failed password for root from 203.0.113.7", "sshguard-go unban 203.0.113.7"} {
				if !strings.Contains(got.Text, want) {
					t.Errorf("text part lacks %q:\n%s", want, got.Text)
				}
				if !strings.Contains(got.HTML, want) {
					t.Errorf("HTML part lacks %q:\n%s", want, got.HTML)
				}
			}
		})
	}
}

// TestMailHostileText: user names are the attacker's words; they must not
// add headers or markup.
func TestMailHostileText(t *testing.T) {
	s := alerttest.StartSMTP(t, alerttest.Options{})
	m := banMsg("web-01", "203.0.113.9/32", "<script>alert(1)</script>", "x\r\nBcc: victim@example.org")
	if err := mailer(t, s, "starttls", "").Send(context.Background(), Render(m, "1.email")); err != nil {
		t.Fatal(err)
	}
	got := s.Wait(1, 5*time.Second)[0]
	if got.Header.Get("Bcc") != "" || len(got.To) != 2 {
		t.Fatalf("header injected: %v, rcpt %v", got.Header, got.To)
	}
	if strings.Contains(got.HTML, "<script>") || !strings.Contains(got.HTML, "&lt;script&gt;") {
		t.Fatalf("HTML not escaped:\n%s", got.HTML)
	}
}

func TestMailErrors(t *testing.T) {
	s := alerttest.StartSMTP(t, alerttest.Options{})
	r := Render(banMsg("web-01", "203.0.113.7/32"), "1.email")
	bad := mailer(t, s, "starttls", "plain")
	bad.opts = append(bad.opts[:len(bad.opts):len(bad.opts)], mail.WithPassword("wrong"))
	err := bad.Send(context.Background(), r)
	var perm *PermanentError
	if err == nil || !strings.Contains(err.Error(), "535") || errors.As(err, &perm) {
		t.Errorf("wrong password: %v (want a retried error with the server's 535)", err)
	}
	err = mailer(t, s, "starttls", "plain", "reject@example.org").Send(context.Background(), r)
	if !errors.As(err, &perm) || !strings.Contains(err.Error(), "no such mailbox") {
		t.Errorf("rejected recipient: %v (want a permanent error with the server's text)", err)
	}
	// One mailbox gone among three: the other two still get the alert,
	// and the error says who has it; a retry with Done sends nothing.
	three := mailer(t, s, "starttls", "plain", "admin@example.org", "reject@example.org", "oncall@example.org")
	before := len(s.Mails())
	err = three.Send(context.Background(), r)
	var part *PartialError
	if !errors.As(err, &part) || !errors.As(err, &perm) || !slices.Equal(part.Done, []string{"admin@example.org", "oncall@example.org"}) ||
		!strings.Contains(err.Error(), "no such mailbox") {
		t.Errorf("one recipient refused: %v (want a permanent PartialError for the other two)", err)
	}
	var got []string
	for _, m := range s.Mails()[before:] {
		got = append(got, m.To...)
	}
	if !slices.Equal(got, []string{"admin@example.org", "oncall@example.org"}) {
		t.Errorf("delivered to %v", got)
	}
	r2 := r
	r2.Done = part.Done
	if err := mailer(t, s, "starttls", "plain", "admin@example.org", "oncall@example.org").Send(context.Background(), r2); err != nil || len(s.Mails()) != before+2 {
		t.Errorf("retry with every recipient done: %v, %d mails", err, len(s.Mails())-before)
	}
	s.Stop()
	err = mailer(t, s, "starttls", "plain").Send(context.Background(), r)
	if err == nil || errors.As(err, &perm) {
		t.Errorf("server down: %v (want a retried error)", err)
	}
}

func TestSMS(t *testing.T) {
	tw := alerttest.StartTwilio(t)
	m := (&Policy{Host: "web-01", Routes: []Route{{Channel: "sms", Kinds: Kinds}}}).
		LoginMessage(Login{User: "alice", Addr: netip.MustParseAddr("198.51.100.4"), Method: "publickey"}, History{SeenNet: true}, t0)
	sms, err := NewSMS(SMSConfig{AccountSID: tw.SID, AuthToken: tw.Token, From: "+15005550006", To: []string{"+15551230001", "+15551230002"}, BaseURL: tw.URL})
	if err != nil {
		t.Fatal(err)
	}
	if err := sms.Send(context.Background(), Render(m, "1.sms")); err != nil {
		t.Fatal(err)
	}
	got := tw.Messages()
	if len(got) != 2 || got[0].To != "+15551230001" || got[1].To != "+15551230002" || got[0].From != "+15005550006" {
		t.Fatalf("messages %+v", got)
	}
	if got[0].Body != "web-01: login: alice from 198.51.100.4 (publickey)" {
		t.Errorf("body %q", got[0].Body)
	}
	// A messaging service instead of a number.
	svc, _ := NewSMS(SMSConfig{AccountSID: tw.SID, AuthToken: tw.Token, MessagingServiceSID: "MG123", To: []string{"+15551230001"}, BaseURL: tw.URL})
	if err := svc.Send(context.Background(), Render(m, "2.sms")); err != nil || tw.Messages()[2].MessagingServiceSid != "MG123" {
		t.Fatalf("messaging service: %v %+v", err, tw.Messages())
	}
	// Twilio's errors: an invalid number is permanent and says why; a
	// server error is retried; a wrong token names the auth failure.
	var perm *PermanentError
	tw.FailNext(400, 21211, "The 'To' number +1555 is not a valid phone number.")
	if err := svc.Send(context.Background(), Render(m, "3.sms")); !errors.As(err, &perm) || !strings.Contains(err.Error(), "21211") ||
		!strings.Contains(err.Error(), "not a valid phone number") {
		t.Errorf("invalid number: %v", err)
	}
	tw.FailNext(503, 20500, "Service unavailable")
	if err := svc.Send(context.Background(), Render(m, "4.sms")); err == nil || errors.As(err, &perm) {
		t.Errorf("503: %v (want a retried error)", err)
	}
	wrong, _ := NewSMS(SMSConfig{AccountSID: tw.SID, AuthToken: "nope", From: "+15005550006", To: []string{"+15551230001"}, BaseURL: tw.URL})
	if err := wrong.Send(context.Background(), Render(m, "5.sms")); err == nil || !strings.Contains(err.Error(), "20003") {
		t.Errorf("wrong token: %v", err)
	}
}

func TestWebhook(t *testing.T) {
	var mu sync.Mutex
	var bodies []WebhookBody
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Content-Type") != "application/json" || r.Header.Get("Authorization") != "Bearer x" {
			http.Error(w, "bad request", 400)
			return
		}
		var b WebhookBody
		data, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(data, &b); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		mu.Lock()
		bodies = append(bodies, b)
		mu.Unlock()
	}))
	defer srv.Close()
	wh, err := NewWebhook(WebhookConfig{URL: srv.URL, Headers: map[string]string{"Authorization": "Bearer x"}})
	if err != nil {
		t.Fatal(err)
	}
	m := banMsg("web-01", "2001:db8:1:2::/64", "root")
	if err := wh.Send(context.Background(), Render(m, "1.webhook")); err != nil {
		t.Fatal(err)
	}
	if len(bodies) != 1 || !strings.HasPrefix(bodies[0].Text, "[web-01] banned 2001:db8:1:2::/64 (6 failed attempts, root)") ||
		bodies[0].Alert == nil || bodies[0].Alert.Ban.Prefix.String() != "2001:db8:1:2::/64" || bodies[0].Kind != KindBan {
		t.Fatalf("webhook got %+v", bodies)
	}
	// User names are the attacker's words: no mentions, no links in chat.
	if err := wh.Send(context.Background(), Render(banMsg("web-01", "192.0.2.8/32", "<!channel>", "@all", "<https://evil.example|click>"), "4.webhook")); err != nil {
		t.Fatal(err)
	}
	if txt := bodies[len(bodies)-1].Text; strings.Contains(txt, "<!channel>") || strings.Contains(txt, "@all") || strings.Contains(txt, "<https://") ||
		!strings.Contains(txt, "&lt;!channel&gt;") {
		t.Errorf("webhook text not made inert: %q", txt)
	}
	bad, _ := NewWebhook(WebhookConfig{URL: srv.URL})
	var perm *PermanentError
	if err := bad.Send(context.Background(), Render(m, "2.webhook")); !errors.As(err, &perm) {
		t.Fatalf("a 400 must be permanent: %v", err)
	}
	// The URL is the secret of a Slack webhook: errors never show it.
	srv.Close()
	secret, _ := NewWebhook(WebhookConfig{URL: srv.URL + "/services/T000/B000/XXXXSECRET"})
	if err := secret.Send(context.Background(), Render(m, "3.webhook")); err == nil || strings.Contains(err.Error(), "XXXXSECRET") {
		t.Fatalf("unreachable webhook: %v", err)
	}
}

func TestLoginSeverity(t *testing.T) {
	hours, err := ParseWorkingHours("08:00-18:00", []string{"mon", "tue", "wed", "thu", "fri"}, "Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	pol := &Policy{Host: "web-01", Hours: hours, Routes: []Route{{Channel: "email", Kinds: Kinds}}}
	alice := Login{User: "alice", Addr: netip.MustParseAddr("198.51.100.4"), Method: "publickey"}
	tue10 := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC) // Tuesday 10:00 in Berlin
	for _, tc := range []struct {
		name    string
		l       Login
		h       History
		at      time.Time
		want    Severity
		reasons int
		none    bool
	}{
		{"known network in working hours", alice, History{SeenNet: true}, tue10, Info, 0, false},
		{"new network", alice, History{}, tue10, Warning, 1, false},
		{"at night", alice, History{SeenNet: true}, tue10.Add(12 * time.Hour), Warning, 1, false},
		{"saturday", alice, History{SeenNet: true}, tue10.Add(4 * 24 * time.Hour), Warning, 1, false},
		{"new network at night", alice, History{}, tue10.Add(12 * time.Hour), High, 2, false},
		{"after failed attempts", Login{User: "alice", Addr: alice.Addr, Method: "password", Failed: 4}, History{SeenNet: true}, tue10, High, 1, false},
		{"again within 5 minutes", alice, History{SeenNet: true, LastFromAddr: tue10.Add(-4 * time.Minute)}, tue10, 0, 0, true},
		{"again after 5 minutes", alice, History{SeenNet: true, LastFromAddr: tue10.Add(-6 * time.Minute)}, tue10, Info, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := pol.LoginMessage(tc.l, tc.h, tc.at)
			if tc.none {
				if m != nil {
					t.Fatalf("want no alert, got %+v", m)
				}
				return
			}
			if m == nil || m.Severity != tc.want || len(m.Reasons) != tc.reasons {
				t.Fatalf("got %+v, want severity %v with %d reasons", m, tc.want, tc.reasons)
			}
			r := Render(m, "1.email")
			if tc.want > Info && !strings.Contains(r.Subject, "["+strings.ToUpper(tc.want.String())+"]") {
				t.Errorf("subject does not say the severity: %q", r.Subject)
			}
			for _, reason := range m.Reasons {
				if !strings.Contains(r.Text, reason) {
					t.Errorf("text does not say %q", reason)
				}
			}
			if len(r.Short) > 160 || len(m.Tags) != tc.reasons || (tc.reasons > 0 && !strings.Contains(r.Short, m.Tags[0])) {
				t.Errorf("SMS text %q (%d bytes), tags %q", r.Short, len(r.Short), m.Tags)
			}
		})
	}
	// Routing by kind and minimum severity.
	pol.Routes = []Route{{Channel: "sms", Kinds: []Kind{KindLogin}, MinSeverity: High}, {Channel: "email", Kinds: Kinds}}
	if m := pol.LoginMessage(alice, History{SeenNet: true}, tue10); len(m.Deliveries) != 1 || m.Deliveries["email"] == nil {
		t.Errorf("info login routed to %v", m.Deliveries)
	}
	if m := pol.LoginMessage(alice, History{}, tue10.Add(12*time.Hour)); len(m.Deliveries) != 2 {
		t.Errorf("high login routed to %v", m.Deliveries)
	}
	if m := pol.BanMessage(Ban{Prefix: netip.MustParsePrefix("192.0.2.1/32"), Duration: time.Hour}, tue10); len(m.Deliveries) != 1 {
		t.Errorf("ban routed to %v", m.Deliveries)
	}
}

func TestWorkingHoursOvernight(t *testing.T) {
	w, err := ParseWorkingHours("22:00-06:00", []string{"mon"}, "UTC")
	if err != nil {
		t.Fatal(err)
	}
	mon := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	for h, want := range map[int]bool{21: true, 23: false, 24 + 3: false, 24 + 7: true, 3: true} {
		if got := w.Outside(mon.Add(time.Duration(h) * time.Hour)); got != want {
			t.Errorf("monday+%dh outside = %v, want %v", h, got, want)
		}
	}
	if _, err := ParseWorkingHours("8-18", nil, "UTC"); err == nil {
		t.Error("8-18 accepted")
	}
	if _, err := ParseWorkingHours("08:00-18:00", []string{"monday"}, "UTC"); err == nil {
		t.Error("day monday accepted")
	}
}

func openDB(t *testing.T, path string) *store.DB {
	t.Helper()
	db, err := store.Open(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return db
}

var msgID = regexp.MustCompile(`<(\d+)\.email\.`)

// TestOutage: the SMTP server is down while 3 bans and 2 logins happen,
// the worker (the daemon) is restarted in between, the server comes back:
// every alert arrives exactly once.
func TestOutage(t *testing.T) {
	s := alerttest.StartSMTP(t, alerttest.Options{})
	s.Stop()
	path := filepath.Join(t.TempDir(), "state.db")
	db := openDB(t, path)
	clk := testkit.NewClock(t0)
	pol := &Policy{Host: "web-01", Routes: []Route{{Channel: "email", Kinds: Kinds}}}
	w := NewWorker(WorkerConfig{Host: "web-01"}, db, []Channel{mailer(t, s, "starttls", "")}, clk.Now, nil)
	for i := range 3 {
		b := &store.Ban{Prefix: netip.MustParsePrefix(fmt.Sprintf("203.0.113.%d/32", i+1)), Start: clk.Now()}
		if _, err := db.RecordBans([]*store.Ban{b}, func(b *store.Ban) []byte {
			return pol.BanMessage(Ban{Prefix: b.Prefix, Nth: b.Count, Duration: time.Hour}, b.Start).Marshal()
		}, nil); err != nil {
			t.Fatal(err)
		}
		if err := w.DeliverDue(context.Background()); err != nil {
			t.Fatal(err)
		}
		clk.Add(time.Minute)
	}
	db.Close() // the daemon restarts
	db = openDB(t, path)
	defer db.Close()
	w = NewWorker(WorkerConfig{Host: "web-01"}, db, []Channel{mailer(t, s, "starttls", "")}, clk.Now, nil)
	for _, u := range []string{"alice", "bob"} {
		l := store.Login{Time: clk.Now(), User: u, Addr: netip.MustParseAddr("198.51.100.4"), Method: "publickey"}
		if _, err := db.RecordLogin(l, func(h store.LoginHistory, _ *store.Login) []byte {
			return pol.LoginMessage(Login{User: l.User, Addr: l.Addr, Method: l.Method}, History{SeenNet: h.SeenNet, LastFromAddr: h.LastFromAddr}, l.Time).Marshal()
		}); err != nil {
			t.Fatal(err)
		}
		w.DeliverDue(context.Background())
		clk.Add(time.Minute)
	}
	if n := len(s.Mails()); n != 0 {
		t.Fatalf("%d mails while the server was down", n)
	}
	// Every alert waits; the channel is tried, and paused after a failure
	// rather than hammered with the rest.
	pending, tried := 0, 0
	db.Pending(func(id uint64, data []byte) error {
		m, _ := Unmarshal(data)
		d := m.Deliveries["email"]
		if d.State != Pending {
			t.Errorf("alert %d delivery %+v", id, d)
		}
		if d.Attempts > 0 && strings.Contains(d.Error, "connection refused") {
			tried++
		}
		pending++
		return nil
	})
	if tried == 0 {
		t.Error("no delivery was tried while the server was down")
	}
	if pending != 5 {
		t.Fatalf("%d pending, want 5", pending)
	}
	s.Restart()
	for range 10 { // retries come with backoff: at most 10 min apart
		clk.Add(10 * time.Minute)
		if err := w.DeliverDue(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	mails := s.Mails()
	seen := map[string]int{}
	for _, m := range mails {
		seen[msgID.FindStringSubmatch(m.Header.Get("Message-Id"))[1]]++
	}
	if len(mails) != 5 || len(seen) != 5 {
		t.Fatalf("%d mails for %d alerts, want 5 each: %v", len(mails), len(seen), seen)
	}
	db.Pending(func(id uint64, _ []byte) error { t.Errorf("alert %d still pending", id); return nil })
}

func TestRetryLimits(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	db := openDB(t, path)
	defer db.Close()
	clk := testkit.NewClock(t0)
	tw := alerttest.StartTwilio(t)
	sms, _ := NewSMS(SMSConfig{AccountSID: tw.SID, AuthToken: tw.Token, From: "+15005550006", To: []string{"+15551230001"}, BaseURL: tw.URL})
	down := &failing{}
	w := NewWorker(WorkerConfig{MaxAge: time.Hour}, db, []Channel{sms, down}, clk.Now, nil)
	w.Jitter = rand.New(rand.NewPCG(1, 2)).Float64 // repeatable: the attempt count below depends on it
	var results []string
	w.OnResult = func(ch, r string) { results = append(results, ch+" "+r) }
	m := banMsg("web-01", "192.0.2.7/32")
	m.Deliveries = map[string]*Delivery{"sms": {State: Pending}, "down": {State: Pending}, "gone": {State: Pending}}
	m.Time = clk.Now()
	tw.FailNext(400, 21211, "The 'To' number is not a valid phone number.")
	id, _ := w.Enqueue(m)
	var lastNext time.Time
	var gaps []time.Duration
	for range 40 {
		w.DeliverDue(context.Background())
		var got *Message
		db.Alerts(1, func(_ uint64, data []byte, _ bool) bool { got, _ = Unmarshal(data); return false })
		if d := got.Deliveries["down"]; !d.Next.IsZero() && d.Next != lastNext {
			gaps = append(gaps, d.Next.Sub(clk.Now()))
			lastNext = d.Next
		}
		clk.Add(2 * time.Minute)
	}
	var got *Message
	pending := true
	db.Alerts(1, func(i uint64, data []byte, p bool) bool {
		got, _ = Unmarshal(data)
		pending = p && i == id
		return false
	})
	if got.Deliveries["sms"].State != Failed || !strings.Contains(got.Deliveries["sms"].Error, "21211") {
		t.Errorf("sms refused by Twilio: %+v", got.Deliveries["sms"])
	}
	if got.Deliveries["gone"].State != Failed {
		t.Errorf("unconfigured channel: %+v", got.Deliveries["gone"])
	}
	if d := got.Deliveries["down"]; d.State != Expired || d.Attempts < 5 || d.Attempts > 12 {
		t.Errorf("failing channel after an hour: %+v", d)
	}
	if pending {
		t.Error("alert still pending when every channel has ended")
	}
	for i := 1; i < len(gaps) && i < 4; i++ {
		if gaps[i] <= gaps[i-1]/2 || gaps[i] > 15*time.Minute {
			t.Errorf("backoff gaps %v do not grow within bounds", gaps)
		}
	}
	if r := strings.Join(results, ","); !strings.Contains(r, "down retry") || !strings.Contains(r, "down expired") || !strings.Contains(r, "sms failed") {
		t.Errorf("results %v", results)
	}
}

// TestSMSPartial: when one of several numbers fails, the retry texts only
// that number (each phone gets the alert once), and a number Twilio
// refuses for good ends the delivery as failed, naming who got it.
func TestSMSPartial(t *testing.T) {
	tw := alerttest.StartTwilio(t)
	db, _ := testkit.OpenDB(t)
	defer db.Close()
	clk := testkit.NewClock(t0)
	nums := []string{"+15551230001", "+15551230002", "+15551230003"}
	sms, err := NewSMS(SMSConfig{AccountSID: tw.SID, AuthToken: tw.Token, From: "+15005550006", To: nums, BaseURL: tw.URL})
	if err != nil {
		t.Fatal(err)
	}
	w := NewWorker(WorkerConfig{MaxAge: time.Hour}, db, []Channel{sms}, clk.Now, nil)
	pol := &Policy{Host: "web-01", Routes: []Route{{Channel: "sms", Kinds: Kinds}}}
	login := pol.LoginMessage(Login{User: "alice", Addr: netip.MustParseAddr("198.51.100.4"), Method: "publickey"}, History{SeenNet: true}, t0)
	id, err := w.Enqueue(login)
	if err != nil {
		t.Fatal(err)
	}
	delivery := func(id uint64) *Delivery {
		var d *Delivery
		db.Alerts(0, func(i uint64, data []byte, _ bool) bool {
			if i == id {
				m, _ := Unmarshal(data)
				d = m.Deliveries["sms"]
			}
			return true
		})
		return d
	}
	count := func() map[string]int {
		n := map[string]int{}
		for _, m := range tw.Messages() {
			n[m.To]++
		}
		return n
	}

	tw.FailTo(nums[1], 503, 20500, "Service unavailable")
	w.DeliverDue(context.Background())
	if d := delivery(id); d.State != Pending || !slices.Equal(d.Done, []string{nums[0], nums[2]}) || !strings.Contains(d.Error, "20500") {
		t.Fatalf("after the first try: %+v", d)
	}
	clk.Add(time.Hour / 2)
	w.DeliverDue(context.Background())
	if d := delivery(id); d.State != Sent {
		t.Fatalf("after the retry: %+v", d)
	}
	if n := count(); len(n) != 3 || n[nums[0]] != 1 || n[nums[1]] != 1 || n[nums[2]] != 1 {
		t.Errorf("texts per number %v, want one each", n)
	}

	// One number refused for good, the others reached: failed, with who has it.
	id, _ = w.Enqueue(pol.LoginMessage(Login{User: "bob", Addr: netip.MustParseAddr("198.51.100.5"), Method: "password"}, History{SeenNet: true}, clk.Now()))
	tw.FailTo(nums[0], 400, 21211, "The 'To' number is not a valid phone number.")
	w.DeliverDue(context.Background())
	if d := delivery(id); d.State != Failed || !slices.Equal(d.Done, nums[1:]) || !strings.Contains(d.Error, "21211") {
		t.Errorf("one number refused: %+v", d)
	}
}

// TestReconfigure: a running Worker takes new channel settings at once: a
// fixed password delivers what waited for its backoff, a channel added
// gets the alerts routed to it, a channel removed stops and its pending
// deliveries end as failed.
func TestReconfigure(t *testing.T) {
	s := alerttest.StartSMTP(t, alerttest.Options{})
	tw := alerttest.StartTwilio(t)
	db, _ := testkit.OpenDB(t)
	defer db.Close()
	wrong := mailer(t, s, "starttls", "plain")
	wrong.opts = append(wrong.opts[:len(wrong.opts):len(wrong.opts)], mail.WithPassword("wrong"))
	cfg := WorkerConfig{MinBackoff: time.Hour, MaxBackoff: time.Hour}
	w := NewWorker(cfg, db, []Channel{wrong}, nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		testkit.Eventually(t, 30*time.Second, what, func() (bool, string) { return ok(), "not yet" })
	}
	delivery := func(id uint64, ch string) (d Delivery) {
		db.Alerts(0, func(i uint64, data []byte, _ bool) bool {
			if i == id {
				m, _ := Unmarshal(data)
				if m.Deliveries[ch] != nil {
					d = *m.Deliveries[ch]
				}
			}
			return true
		})
		return d
	}

	emailOnly := &Policy{Host: "web-01", Routes: []Route{{Channel: "email", Kinds: Kinds}}}
	both := &Policy{Host: "web-01", Routes: []Route{{Channel: "email", Kinds: Kinds}, {Channel: "sms", Kinds: Kinds}}}
	login := func(pol *Policy, user string) uint64 {
		id, err := w.Enqueue(pol.LoginMessage(Login{User: user, Addr: netip.MustParseAddr("192.0.2.10"), Method: "publickey"}, History{SeenNet: true}, time.Now()))
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	first := login(emailOnly, "alice")
	waitFor("a failed try with the wrong password", func() bool { return delivery(first, "email").Attempts == 1 })
	if d := delivery(first, "email"); d.State != Pending || !strings.Contains(d.Error, "535") || time.Until(d.Next) < 20*time.Minute {
		t.Fatalf("after the wrong password: %+v", d)
	}
	sms, _ := NewSMS(SMSConfig{AccountSID: tw.SID, AuthToken: tw.Token, From: "+15005550006", To: []string{"+15551230001"}, BaseURL: tw.URL})
	w.Reconfigure(cfg, []Channel{mailer(t, s, "starttls", "plain"), sms})
	waitFor("the mail sent after the fix, without waiting for the backoff", func() bool { return len(s.Mails()) == 1 })
	// The server has the mail before the worker has written down that it
	// went: wait for that too.
	waitFor("the delivery recorded as sent", func() bool { return delivery(first, "email").State == Sent })
	if d := delivery(first, "email"); d.State != Sent || d.Attempts != 2 {
		t.Errorf("email after the fix: %+v", d)
	}
	login(both, "carol")
	waitFor("the text through the added channel", func() bool { return len(tw.Messages()) == 1 })
	waitFor("the second mail", func() bool { return len(s.Mails()) == 2 })

	// Email removed: its pending deliveries end, sms goes on.
	s.Stop()
	second := login(both, "bob")
	waitFor("a failed try with the server down", func() bool { return delivery(second, "email").Attempts == 1 })
	waitFor("the second text", func() bool { return len(tw.Messages()) == 2 })
	waitFor("the second text recorded as sent", func() bool { return delivery(second, "sms").State == Sent })
	w.Reconfigure(cfg, []Channel{sms})
	w.DeliverDue(context.Background()) // the sweep (Run does it each minute)
	if d := delivery(second, "email"); d.State != Failed || !strings.Contains(d.Error, "not configured") {
		t.Errorf("email removed: %+v", d)
	}
	if d := delivery(second, "sms"); d.State != Sent {
		t.Errorf("sms: %+v", d)
	}

	// A reload while a channel hangs in a send returns at once, and Wake
	// (called for every ban and login) does not wait for the send either.
	hang := &hanging{release: make(chan struct{}), entered: make(chan struct{}, 1)}
	w.Reconfigure(cfg, []Channel{hang, sms})
	login(emailOnly, "dave")
	select {
	case <-hang.entered:
	case <-time.After(5 * time.Second):
		t.Fatal("the hanging channel was not called")
	}
	returned := make(chan struct{})
	go func() {
		w.Reconfigure(cfg, []Channel{&hanging{release: hang.release}, sms}) // email changed again
		w.Wake()
		close(returned)
	}()
	select {
	case <-returned:
	case <-time.After(2 * time.Second):
		t.Error("Reconfigure or Wake waited for a hanging send")
	}
	close(hang.release)
}

type failing struct{ n int }

func (f *failing) Name() string { return "down" }
func (f *failing) Send(context.Context, Rendered) error {
	f.n++
	return errors.New("connection refused")
}

// TestFlood: 1,000 bans in a minute give a bounded number of emails that
// together list all 1,000; a login during the flood is not delayed.
func TestFlood(t *testing.T) {
	s := alerttest.StartSMTP(t, alerttest.Options{})
	db, _ := testkit.OpenDB(t)
	defer db.Close()
	clk := testkit.NewClock(t0)
	cfg := WorkerConfig{Host: "web-01", FloodRate: 10, FloodWindow: time.Minute, DigestInterval: 5 * time.Minute}
	w := NewWorker(cfg, db, []Channel{mailer(t, s, "starttls", "")}, clk.Now, nil)
	pol := &Policy{Host: "web-01", Routes: []Route{{Channel: "email", Kinds: Kinds}}}
	for i := range 1000 {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, byte(i / 250), byte(i%250 + 1)}), 32)
		if _, err := w.Enqueue(pol.BanMessage(Ban{Prefix: p, Attempts: 5, Users: []string{"root"}, Duration: time.Hour, Nth: 1}, clk.Now())); err != nil {
			t.Fatal(err)
		}
		if i == 500 {
			w.Enqueue(pol.LoginMessage(Login{User: "alice", Addr: netip.MustParseAddr("192.0.2.10"), Method: "publickey"}, History{SeenNet: true}, clk.Now()))
		}
		if i%20 == 0 {
			w.DeliverDue(context.Background())
		}
		clk.Add(60 * time.Millisecond)
	}
	w.DeliverDue(context.Background())
	if n := len(s.Mails()); n != 11 {
		t.Errorf("%d mails during the flood, want 10 bans and the login", n)
	}
	for range 3 {
		clk.Add(5 * time.Minute)
		w.DeliverDue(context.Background())
	}
	mails := s.Mails()
	listed := map[string]bool{}
	logins := 0
	addr := regexp.MustCompile(`198\.18\.\d+\.[1-9]\d*`) // not the digest's 198.18.0.0/16
	for _, m := range mails {
		if strings.Contains(m.Header.Get("Subject"), "login: alice") {
			logins++
		}
		for _, a := range addr.FindAllString(m.Text, -1) {
			listed[a] = true
		}
	}
	if len(mails) > 15 || len(listed) != 1000 || logins != 1 {
		t.Fatalf("%d mails listing %d addresses and %d logins; want at most 15 listing 1000, and 1 login", len(mails), len(listed), logins)
	}
	db.Pending(func(id uint64, _ []byte) error { t.Errorf("alert %d still pending", id); return nil })
	// The flood is over: the next ban is alone in its mail again.
	clk.Add(10 * time.Minute)
	w.DeliverDue(context.Background())
	w.Enqueue(pol.BanMessage(Ban{Prefix: netip.MustParsePrefix("192.0.2.99/32"), Duration: time.Hour, Nth: 1}, clk.Now()))
	w.DeliverDue(context.Background())
	if last := s.Mails()[len(s.Mails())-1]; !strings.Contains(last.Header.Get("Subject"), "banned 192.0.2.99") {
		t.Fatalf("after the flood: %q", last.Header.Get("Subject"))
	}
}

// hanging is a channel whose server accepts the connection and never
// answers.
type hanging struct{ release, entered chan struct{} }

func (h *hanging) Name() string { return "email" }
func (h *hanging) Send(ctx context.Context, _ Rendered) error {
	if h.entered != nil {
		select {
		case h.entered <- struct{}{}:
		default:
		}
	}
	select {
	case <-h.release:
	case <-ctx.Done():
	}
	return errors.New("timeout")
}

// TestChannelsIndependent: a mail server that hangs does not hold back
// the text message of a login.
func TestChannelsIndependent(t *testing.T) {
	db, _ := testkit.OpenDB(t)
	defer db.Close()
	tw := alerttest.StartTwilio(t)
	sms, _ := NewSMS(SMSConfig{AccountSID: tw.SID, AuthToken: tw.Token, From: "+15005550006", To: []string{"+15551230001"}, BaseURL: tw.URL})
	hang := &hanging{release: make(chan struct{})}
	w := NewWorker(WorkerConfig{}, db, []Channel{hang, sms}, nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	defer func() { cancel(); close(hang.release); <-done }()
	pol := &Policy{Host: "web-01", Routes: []Route{{Channel: "email", Kinds: Kinds}, {Channel: "sms", Kinds: Kinds}}}
	for _, u := range []string{"alice", "bob"} {
		if _, err := w.Enqueue(pol.LoginMessage(Login{User: u, Addr: netip.MustParseAddr("192.0.2.10"), Method: "publickey"}, History{SeenNet: true}, time.Now())); err != nil {
			t.Fatal(err)
		}
	}
	testkit.Eventually(t, 5*time.Second, "2 text messages while the mail server hangs", func() (bool, string) {
		n := len(tw.Messages())
		return n == 2, fmt.Sprint(n)
	})
	// The SMS deliveries are saved (a moment after the messages arrive);
	// the email ones are untouched.
	testkit.Eventually(t, 5*time.Second, "the text messages recorded as sent", func() (bool, string) {
		var bad []string
		db.Pending(func(id uint64, data []byte) error {
			m, _ := Unmarshal(data)
			if m.Deliveries["sms"].State != Sent || m.Deliveries["email"].State != Pending {
				bad = append(bad, fmt.Sprintf("alert %d: sms %+v email %+v", id, m.Deliveries["sms"], m.Deliveries["email"]))
			}
			return nil
		})
		return len(bad) == 0, strings.Join(bad, "; ")
	})
}

// TestUnreadableRecord: a damaged outbox record is reported once, leaves
// the pending list, stays in the history, and does not stop the others.
func TestUnreadableRecord(t *testing.T) {
	db, _ := testkit.OpenDB(t)
	defer db.Close()
	s := alerttest.StartSMTP(t, alerttest.Options{})
	var logged strings.Builder
	log := slog.New(slog.NewTextHandler(&logged, nil))
	w := NewWorker(WorkerConfig{}, db, []Channel{mailer(t, s, "starttls", "")}, nil, log)
	bad, _ := db.Enqueue([]byte("\x00not json"))
	w.Enqueue(banMsg("web-01", "192.0.2.1/32"))
	for range 3 {
		w.DeliverDue(context.Background())
	}
	if n := len(s.Mails()); n != 1 {
		t.Fatalf("%d mails, want 1", n)
	}
	db.Pending(func(id uint64, _ []byte) error { t.Errorf("alert %d still pending", id); return nil })
	found := false
	db.Alerts(0, func(id uint64, data []byte, _ bool) bool {
		found = found || (id == bad && string(data) == "\x00not json")
		return true
	})
	if !found {
		t.Error("the damaged record was not kept")
	}
	if c := strings.Count(logged.String(), "unreadable alert"); c != 1 {
		t.Errorf("reported %d times:\n%s", c, logged.String())
	}
}

// TestClean: attacker text is cut on a character boundary, and control
// characters (newlines that could start a header) become spaces.
func TestClean(t *testing.T) {
	got := clean(strings.Repeat("é", 100), 157)
	if !utf8.ValidString(got) || len(got) > 160 || !strings.HasSuffix(got, "...") {
		t.Errorf("cut %q (%d bytes)", got, len(got))
	}
	if got := clean("root\r\nBcc: x\x00", 100); got != "root  Bcc: x " {
		t.Errorf("control characters: %q", got)
	}
}

// countingOutbox counts the records the worker reads.
type countingOutbox struct {
	*store.DB
	read atomic.Int64
}

func (c *countingOutbox) PendingAfter(after uint64, fn func(uint64, []byte) error) error {
	return c.DB.PendingAfter(after, func(id uint64, data []byte) error { c.read.Add(1); return fn(id, data) })
}

func (c *countingOutbox) Records(ids []uint64, fn func(uint64, []byte) error) error {
	return c.DB.Records(ids, func(id uint64, data []byte) error { c.read.Add(1); return fn(id, data) })
}

// floodOf enqueues n ban alerts at clk's time, 1 ms apart.
func floodOf(t *testing.T, w *Worker, clk *testkit.Clock, n int) {
	t.Helper()
	pol := &Policy{Host: "web-01", Routes: []Route{{Channel: "email", Kinds: Kinds}}}
	for i := range n {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}), 32)
		if _, err := w.Enqueue(pol.BanMessage(Ban{Prefix: p, Attempts: 5, Users: []string{"root"}, Duration: time.Hour, Nth: 1}, clk.Now())); err != nil {
			t.Fatal(err)
		}
		clk.Add(time.Millisecond)
	}
}

// TestFloodHeldWithoutReading: while a flood holds thousands of ban
// alerts for the digest, passes read no record (the daemon was seen at
// 100% CPU decoding the whole outbox every second); the digest lists the
// first MaxDigestBans bans, counts the rest and their networks, and
// stays small.
func TestFloodHeldWithoutReading(t *testing.T) {
	s := alerttest.StartSMTP(t, alerttest.Options{})
	db, _ := testkit.OpenDB(t)
	ob := &countingOutbox{DB: db}
	clk := testkit.NewClock(t0)
	w := NewWorker(WorkerConfig{Host: "web-01", FloodRate: 10, DigestInterval: 5 * time.Minute}, ob, []Channel{mailer(t, s, "starttls", "")}, clk.Now, nil)
	const n = 3000
	floodOf(t, w, clk, n)
	w.DeliverDue(context.Background()) // 10 sent, the flood starts
	read := ob.read.Load()
	if read > n+20 {
		t.Fatalf("%d records read to send 10 and hold %d", read, n-10)
	}
	for range 60 {
		clk.Add(time.Second)
		w.DeliverDue(context.Background())
	}
	if extra := ob.read.Load() - read; extra != 0 {
		t.Fatalf("%d records read by 60 passes while the flood is held", extra)
	}
	clk.Add(5 * time.Minute)
	w.DeliverDue(context.Background())
	mails := s.Wait(11, 5*time.Second)
	digest := mails[10]
	if subj := digest.Header.Get("Subject"); subj != fmt.Sprintf("[web-01] %d bans (digest)", n-10) {
		t.Fatalf("digest subject %q", subj)
	}
	for _, want := range []string{"... and 1990 more bans", "Networks: 198.18.0.0/16 (2990)", "Users tried: root (2990)"} {
		if !strings.Contains(digest.Text, want) {
			t.Errorf("digest lacks %q", want)
		}
	}
	if len(digest.Text) > 200<<10 {
		t.Errorf("digest text of %d bytes", len(digest.Text))
	}
	db.Pending(func(id uint64, _ []byte) error { t.Errorf("alert %d still pending", id); return nil })
}

// TestFloodSurvivesRestart: the daemon restarted during a flood keeps
// gathering ban alerts into the digest instead of sending flood_rate
// single alerts again.
func TestFloodSurvivesRestart(t *testing.T) {
	s := alerttest.StartSMTP(t, alerttest.Options{})
	db, _ := testkit.OpenDB(t)
	clk := testkit.NewClock(t0)
	cfg := WorkerConfig{Host: "web-01", FloodRate: 10, DigestInterval: 5 * time.Minute}
	w := NewWorker(cfg, db, []Channel{mailer(t, s, "starttls", "")}, clk.Now, nil)
	floodOf(t, w, clk, 30)
	w.DeliverDue(context.Background())
	if n := len(s.Mails()); n != 10 {
		t.Fatalf("%d mails before the restart, want 10", n)
	}
	w = NewWorker(cfg, db, []Channel{mailer(t, s, "starttls", "")}, clk.Now, nil) // the restart
	floodOf(t, w, clk, 30)
	w.DeliverDue(context.Background())
	if n := len(s.Mails()); n != 10 {
		t.Fatalf("%d mails after the restart, want still 10 (the rest held for the digest)", n)
	}
	clk.Add(5 * time.Minute)
	w.DeliverDue(context.Background())
	if m := s.Wait(11, 5*time.Second)[10]; m.Header.Get("Subject") != "[web-01] 50 bans (digest)" {
		t.Fatalf("digest %q", m.Header.Get("Subject"))
	}
}

// TestWebhookMarkupAndSecrets: Markdown in a user name (an image that a
// chat system would fetch: a tracking beacon; links; emphasis) reaches
// the webhook's text inert; a redirect is not followed with the custom
// headers; a webhook URL or an SMS base URL never appears in an error.
func TestWebhookMarkupAndSecrets(t *testing.T) {
	var got []WebhookBody
	var redirected atomic.Int64
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Api-Key") != "" {
			redirected.Add(1)
		}
	}))
	defer other.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/moved" {
			http.Redirect(w, r, other.URL+"/steal", http.StatusTemporaryRedirect)
			return
		}
		var b WebhookBody
		json.NewDecoder(r.Body).Decode(&b)
		got = append(got, b)
	}))
	defer srv.Close()
	wh, err := NewWebhook(WebhookConfig{URL: srv.URL + "/hook"})
	if err != nil {
		t.Fatal(err)
	}
	if err := wh.Send(context.Background(), Render(banMsg("web-01", "192.0.2.8/32", "![x](http://track.example/p.png)", "**boss**", "[click](https://evil.example)", "`rm -rf`"), "5.webhook")); err != nil {
		t.Fatal(err)
	}
	txt := got[0].Text
	for _, markup := range []string{"![", "](", "**", "http://track", "https://evil", "`rm"} {
		if strings.Contains(txt, markup) {
			t.Errorf("webhook text carries %q:\n%s", markup, txt)
		}
	}
	if !strings.HasPrefix(txt, "[web-01] banned 192.0.2.8") {
		t.Errorf("the subject was mangled: %q", txt)
	}
	moved, _ := NewWebhook(WebhookConfig{URL: srv.URL + "/moved", Headers: map[string]string{"X-Api-Key": "k"}})
	if err := moved.Send(context.Background(), Render(banMsg("web-01", "192.0.2.9/32"), "6.webhook")); err == nil || redirected.Load() != 0 {
		t.Fatalf("redirect: %v, the other host got the header %d times", err, redirected.Load())
	}
	// Secrets in URLs stay out of every error.
	for _, u := range []string{"https:///services/SECRETTOKEN", "hxxps://hooks.example.org/SECRETTOKEN", "https://hooks.example.org/\x7fSECRETTOKEN"} {
		if _, err := NewWebhook(WebhookConfig{URL: u}); err == nil || strings.Contains(err.Error(), "SECRETTOKEN") {
			t.Errorf("bad URL: %v", err)
		}
	}
	down, _ := NewWebhook(WebhookConfig{URL: "http://127.0.0.1:1/services/SECRETTOKEN"})
	if err := down.Send(context.Background(), Render(banMsg("web-01", "192.0.2.9/32"), "7.webhook")); err == nil || strings.Contains(err.Error(), "SECRETTOKEN") {
		t.Errorf("unreachable webhook: %v", err)
	}
	sms, _ := NewSMS(SMSConfig{AccountSID: "AC1", AuthToken: "t", From: "+15005550006", To: []string{"+15551230001"}, BaseURL: "http://user:SECRETPASS@127.0.0.1:1"})
	if err := sms.Send(context.Background(), Render(banMsg("web-01", "192.0.2.9/32"), "8.sms")); err == nil || strings.Contains(err.Error(), "SECRETPASS") {
		t.Errorf("unreachable SMS API: %v", err)
	}
}

// TestMessageIDsUnique: alert 1 of two hosts sharing a sender address,
// and of a database recreated on one host, have different Message-IDs
// (mail systems drop or thread messages by it).
func TestMessageIDsUnique(t *testing.T) {
	s := alerttest.StartSMTP(t, alerttest.Options{})
	for _, wc := range []WorkerConfig{{Host: "web-01"}, {Host: "web-02"}, {Host: "web-01"}} {
		db, _ := testkit.OpenDB(t) // each a new database: alert id 1 again
		wc.Instance = db.Instance()
		w := NewWorker(wc, db, []Channel{mailer(t, s, "starttls", "")}, nil, nil)
		if id, err := w.Enqueue(banMsg(wc.Host, "192.0.2.1/32")); err != nil || id != 1 {
			t.Fatalf("enqueue: %d %v", id, err)
		}
		w.DeliverDue(context.Background())
	}
	ids := map[string]bool{}
	for _, m := range s.Wait(3, 5*time.Second) {
		id := m.Header.Get("Message-Id")
		if ids[id] || !strings.Contains(id, "web-0") {
			t.Fatalf("Message-ID %q repeated or without the host (%v)", id, ids)
		}
		ids[id] = true
	}
}

// TestArchiveMessageBounded: a report of a wave in the archives makes a
// message of bounded size: the first MaxDigestBans offenders listed (and
// carried in the webhook's JSON), the rest counted.
func TestArchiveMessageBounded(t *testing.T) {
	a := Archive{Window: "the last 1h", Threshold: 10}
	for i := range 100000 {
		a.Offenders = append(a.Offenders, Offender{Addr: netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}).String(), Attempts: 12, Failed: 12, Users: []string{"root"}})
	}
	m := (&Policy{Host: "web-01", Routes: []Route{{Channel: "webhook", Kinds: Kinds}}}).ArchiveMessage(a, t0)
	r := Render(m, "1.webhook")
	if len(m.Archive.Offenders) != MaxDigestBans || m.Archive.More != 100000-MaxDigestBans || len(a.Offenders) != 100000 {
		t.Fatalf("%d listed, %d more", len(m.Archive.Offenders), m.Archive.More)
	}
	if !strings.Contains(r.Subject, "100000 addresses reached 10 attempts") || !strings.Contains(r.Text, "... and 99000 more") {
		t.Fatalf("subject %q, text ends %q", r.Subject, r.Text[max(0, len(r.Text)-200):])
	}
	if data := m.Marshal(); len(data) > 200<<10 {
		t.Fatalf("the message is %d bytes", len(data))
	}
}
