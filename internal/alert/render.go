package alert

import (
	"bytes"
	"fmt"
	"html/template"
	"net/netip"
	"slices"
	"sshguard-go/internal/textsafe"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Rendered is a message as the channels send it.
type Rendered struct {
	ID       string // unique per message and channel (the email Message-ID's left part)
	Kind     Kind
	Severity Severity
	Subject  string   // one line: "[host] " and the gist
	Gist     string   // the subject without the host
	Text     string   // the plain text body
	HTML     string   // the same as HTML
	Short    string   // for SMS: one line, at most one segment
	Data     *Message // the structured message (webhook)
	Done     []string // recipients that already have it (a retry after a partial failure)
}

// Report is the daily summary.
type Report struct {
	From, To time.Time
	Kinds    map[string]int64 `json:"kinds,omitempty"` // events (lines) per kind
	// Failed and Probes are the counted failed attempts and probes, as
	// detection counts them (a probe its connection's failure took back
	// is not one).
	Failed   int64   `json:"failed"`
	Probes   int64   `json:"probes"`
	TopAddrs []Count `json:"top_addrs,omitempty"`
	TopUsers []Count `json:"top_users,omitempty"`
	Bans     []Ban   `json:"bans,omitempty"` // at most MaxReportBans
	BanCount int     `json:"ban_count"`
	Logins   []Login `json:"logins,omitempty"`
	// Sessions that started in the report's day (at most
	// MaxReportSessions), and how many there were.
	Sessions     []ReportSession `json:"sessions,omitempty"`
	SessionCount int             `json:"session_count,omitempty"`
}

// ReportSession is one session in the daily report.
type ReportSession struct {
	User     string        `json:"user"`
	Addr     string        `json:"addr"`
	Start    time.Time     `json:"start"`
	Duration time.Duration `json:"duration"` // so far, when Open
	Open     bool          `json:"open,omitempty"`
	End      string        `json:"end_reason,omitempty"`
	Bytes    int64         `json:"bytes,omitempty"`
	Commands int           `json:"commands,omitempty"`
}

// MaxReportSessions bounds the sessions listed in a report.
const MaxReportSessions = 200

// Count is a key and how often it was seen.
type Count struct {
	Key string  `json:"key"`
	N   float64 `json:"n"`
}

// MaxShort bounds the SMS text: one 160-character segment (the cut adds
// "...").
const MaxShort = 157

// MaxReportBans bounds the bans listed one by one in a report.
const MaxReportBans = 200

// clean makes attacker-written text safe for a header or a line: control
// characters become spaces, and long text is cut.
func clean(s string, max int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "..."
	}
	return s
}

func prefixText(p netip.Prefix) string {
	if p.IsSingleIP() {
		return p.Addr().String()
	}
	return p.String()
}

func durText(d time.Duration) string {
	switch {
	case d == 0:
		return "permanently"
	case d%(24*time.Hour) == 0:
		return fmt.Sprintf("for %dd", d/(24*time.Hour))
	}
	return "for " + d.String()
}

func usersText(users []string, sep string) string {
	out := make([]string, 0, len(users))
	for _, u := range users {
		out = append(out, clean(u, 32))
	}
	return strings.Join(out, sep)
}

// gist is the subject without the host.
func gist(m *Message) string {
	switch {
	case m.Ban != nil:
		b := m.Ban
		verb := "banned"
		if b.DryRun {
			verb = "dry run: would ban"
		}
		if b.Attempts > 0 {
			s := fmt.Sprintf("%s %s (%g failed attempts", verb, prefixText(b.Prefix), b.Attempts)
			if len(b.Users) > 0 {
				s += ", " + usersText(b.Users, "/")
			}
			return s + ")"
		}
		return fmt.Sprintf("%s %s (%s)", verb, prefixText(b.Prefix), clean(b.Reason, 80))
	case m.Login != nil:
		l := m.Login
		s := fmt.Sprintf("login: %s from %s (%s)", clean(l.User, 32), l.Addr, clean(l.Method, 40))
		if m.Severity > Info {
			s += " [" + strings.ToUpper(m.Severity.String()) + "]"
		}
		return s
	case m.Session != nil:
		a := m.Session
		switch a.What {
		case "targeted":
			return fmt.Sprintf("targeted guess: %d failed attempts at local account %s from %s", a.Failed, clean(a.User, 32), a.Addr)
		case "transfer":
			return fmt.Sprintf("session of %s from %s moved %s", clean(a.User, 32), a.Addr, textsafe.Bytes(a.Bytes, "bytes"))
		}
		return fmt.Sprintf("session of %s from %s open for %s", clean(a.User, 32), a.Addr, a.Lasted.Round(time.Second))
	case m.Archive != nil:
		return fmt.Sprintf("archives: %d addresses reached %g attempts in %s", len(m.Archive.Offenders)+m.Archive.More, m.Archive.Threshold, m.Archive.Window)
	case m.Report != nil:
		r := m.Report
		return fmt.Sprintf("daily report: %d failed attempts, %d bans, %d logins",
			r.Failed, r.BanCount, len(r.Logins))
	}
	return clean(m.Text, 120)
}

// lines is the body of m's text, one line each.
func lines(m *Message) []string {
	var out []string
	switch {
	case m.Ban != nil:
		out = banLines(m.Ban)
	case m.Login != nil:
		out = loginLines(m.Login)
	case m.Report != nil:
		out = reportLines(m.Report)
	case m.Session != nil:
		out = sessionLines(m.Session)
	case m.Archive != nil:
		out = archiveLines(m.Archive)
	default:
		out = []string{clean(m.Text, 2000)}
	}
	if len(m.Reasons) > 0 {
		out = append(out, fmt.Sprintf("Severity %s: %s", m.Severity, strings.Join(m.Reasons, "; ")))
	}
	return out
}

// textLines gathers the lines of a message's text.
type textLines []string

func (t *textLines) add(format string, args ...any) { *t = append(*t, fmt.Sprintf(format, args...)) }

func banLines(b *Ban) []string {
	var out textLines
	out.add("Banned: %s %s (ban number %d of this address)", prefixText(b.Prefix), durText(b.Duration), b.Nth)
	if b.Attempts > 0 {
		out.add("Counted failed attempts: %g", b.Attempts)
	}
	if len(b.Users) > 0 {
		out.add("Users tried: %s", usersText(b.Users, ", "))
	}
	if b.Reason != "" {
		out.add("Reason: %s", clean(b.Reason, 200))
	}
	if b.First != "" {
		out.add("First evidence: %s", clean(b.First, 500))
	}
	if b.Last != "" && b.Last != b.First {
		out.add("Last evidence: %s", clean(b.Last, 500))
	}
	out.add("Lift it with: sshguard-go unban %s", prefixText(b.Prefix))
	return out
}

func loginLines(l *Login) []string {
	var out textLines
	out.add("User: %s", clean(l.User, 64))
	out.add("From: %s", l.Addr)
	out.add("Method: %s", clean(l.Method, 64))
	if l.Key != "" {
		out.add("Key: %s", clean(l.Key, 200))
	}
	if !l.Time.IsZero() {
		out.add("Time: %s", l.Time.Format(time.RFC3339))
	}
	return out
}

func sessionLines(a *Session) []string {
	var out textLines
	out.add("User: %s", clean(a.User, 64))
	out.add("From: %s", a.Addr)
	if a.Method != "" {
		out.add("Method: %s", clean(a.Method, 64))
	}
	if !a.Start.IsZero() {
		out.add("Session start: %s", a.Start.Format(time.RFC3339))
	}
	switch a.What {
	case "targeted":
		out.add("Failed attempts at this local account from this address: %d", a.Failed)
		out.add("A real account was guessed at, not a dictionary name. See: sshguard-go history %s", clean(a.User, 64))
	case "transfer":
		out.add("Bytes moved (sftp/scp, both ways): %d, more than transfer_alert_bytes = %s", a.Bytes, a.Limit)
	default:
		out.add("Open for %s, longer than session_alert_after = %s", a.Lasted.Round(time.Second), a.Limit)
	}
	out.add("All sessions: sshguard-go sessions --user %s", clean(a.User, 64))
	return out
}

func archiveLines(a *Archive) []string {
	var out textLines
	out.add("Window: %s   threshold: %g weighted attempts", a.Window, a.Threshold)
	out.add("Inputs: %s", clean(strings.Join(a.Inputs, " "), 500))
	if a.Allowed > 0 {
		out.add("Allowlisted addresses above it, left out: %d", a.Allowed)
	}
	out.add("")
	shown := a.Offenders[:min(len(a.Offenders), MaxDigestBans)]
	for _, o := range shown {
		out.add("  %-40s %g (%d failed, %d probes) %s", o.Addr, o.Attempts, o.Failed, o.Probes, usersText(o.Users, "/"))
	}
	if n := len(a.Offenders) - len(shown) + a.More; n > 0 {
		out.add("  ... and %d more", n)
	}
	return out
}

func reportLines(r *Report) []string {
	var out []string
	add := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	add("From %s to %s", r.From.Format(time.RFC3339), r.To.Format(time.RFC3339))
	add("Failed attempts: %d   probes: %d   bans: %d   logins: %d", r.Failed, r.Probes, r.BanCount, len(r.Logins))
	add("")
	add("Top addresses (counted attempts):")
	for _, c := range r.TopAddrs {
		add("  %-40s %g", c.Key, c.N)
	}
	add("Top users tried:")
	for _, c := range r.TopUsers {
		add("  %-40s %g", clean(c.Key, 40), c.N)
	}
	add("")
	add("Bans (%d):", r.BanCount)
	for _, b := range r.Bans {
		add("  %-40s %s, ban %d, %s", prefixText(b.Prefix), durText(b.Duration), b.Nth, clean(b.Reason, 80))
	}
	if r.BanCount > len(r.Bans) {
		add("  ... and %d more (sshguard-go list)", r.BanCount-len(r.Bans))
	}
	add("")
	add("Successful logins (%d):", len(r.Logins))
	for _, l := range r.Logins {
		key := ""
		if l.Key != "" {
			key = " " + clean(l.Key, 80)
		}
		add("  %s  %s from %s (%s%s)", l.Time.Format(time.DateTime), clean(l.User, 32), l.Addr, clean(l.Method, 32), key)
	}
	if r.SessionCount > 0 {
		add("")
		add("Sessions (%d): who, from where, how long, bytes by sftp/scp, commands", r.SessionCount)
		for _, s := range r.Sessions {
			end := s.End
			if s.Open {
				end = "still open"
			}
			add("  %s  %-16s from %-39s %9s  %s  %s bytes, %d commands", s.Start.Format(time.DateTime), clean(s.User, 32), s.Addr,
				s.Duration.Round(time.Second), end, strconv.FormatInt(s.Bytes, 10), s.Commands)
		}
		if r.SessionCount > len(r.Sessions) {
			add("  ... and %d more (sshguard-go sessions)", r.SessionCount-len(r.Sessions))
		}
	}
	return out
}

var htmlPage = template.Must(template.New("alert").Parse(`<!DOCTYPE html>
<html><body style="font-family: sans-serif">
<h3>{{.Subject}}</h3>
<pre style="font-family: monospace">{{range .Lines}}{{.}}
{{end}}</pre>
<p style="color: #666">sshguard-go on {{.Host}}</p>
</body></html>
`))

func render(host, subject string, body []string) (text, html string) {
	text = strings.Join(body, "\n") + "\n\n-- \nsshguard-go on " + host + "\n"
	var b bytes.Buffer
	if err := htmlPage.Execute(&b, struct {
		Subject, Host string
		Lines         []string
	}{subject, host, body}); err != nil {
		panic(err) // a fixed template over strings: cannot happen
	}
	return text, b.String()
}

// Render renders m; id makes the rendering unique (outbox id and channel).
func Render(m *Message, id string) Rendered {
	g := gist(m)
	subject := "[" + m.Host + "] " + g
	body := lines(m)
	text, html := render(m.Host, subject, body)
	short := m.Host + ": " + g
	if len(m.Tags) > 0 {
		short += " (" + strings.Join(m.Tags, ", ") + ")"
	}
	return Rendered{ID: id, Kind: m.Kind, Severity: m.Severity, Subject: subject, Gist: g, Text: text, HTML: html,
		Short: clean(short, MaxShort), Data: m}
}

// MaxDigestBans is how many bans a digest lists one per line; the rest
// are counted, with the users and the networks they share.
const MaxDigestBans = 1000

// maxDigestKeys bounds the users and networks a digest counts.
const maxDigestKeys = 10000

// Digest gathers ban alerts into one message without keeping them: a
// digest of 100,000 bans is their count and time span, the users and
// networks most tried, and the first MaxDigestBans bans, not a 10 MB mail.
type Digest struct {
	host        string
	n           int
	first, last time.Time
	users, nets map[string]int
	lines       []string
}

// NewDigest starts an empty digest for host.
func NewDigest(host string) *Digest {
	return &Digest{host: host, users: map[string]int{}, nets: map[string]int{}}
}

// Len is the number of bans added.
func (d *Digest) Len() int { return d.n }

// Add counts the ban alert m.
func (d *Digest) Add(m *Message) {
	b := m.Ban
	if b == nil {
		return
	}
	if d.n == 0 || m.Time.Before(d.first) {
		d.first = m.Time
	}
	if d.n == 0 || m.Time.After(d.last) {
		d.last = m.Time
	}
	d.n++
	for _, u := range b.Users {
		tally(d.users, clean(u, 32))
	}
	tally(d.nets, netText(b.Prefix))
	if len(d.lines) < MaxDigestBans {
		d.lines = append(d.lines, fmt.Sprintf("%s  %-40s %s, ban %d, %g attempts, %s", m.Time.Format(time.DateTime), prefixText(b.Prefix),
			durText(b.Duration), b.Nth, b.Attempts, usersText(b.Users, "/")))
	}
}

// tally counts k in m, which holds at most maxDigestKeys keys.
func tally(m map[string]int, k string) {
	if _, ok := m[k]; ok || len(m) < maxDigestKeys {
		m[k]++
	}
}

// netText is the network a digest counts p in: its /16 (IPv4) or /32
// (IPv6), where botnets and hosting ranges show.
func netText(p netip.Prefix) string {
	bits := 16
	if p.Addr().Is6() {
		bits = 32
	}
	if p.Bits() < bits {
		return p.String()
	}
	n, _ := p.Addr().Prefix(bits)
	return n.String()
}

// topCounts returns the n keys of m with the highest counts, as "key (count)".
func topCounts(m map[string]int, n int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		if m[a] != m[b] {
			return m[b] - m[a]
		}
		return strings.Compare(a, b)
	})
	out := make([]string, 0, n)
	for _, k := range keys[:min(n, len(keys))] {
		out = append(out, fmt.Sprintf("%s (%d)", k, m[k]))
	}
	if len(keys) > n {
		out = append(out, "...")
	}
	return strings.Join(out, ", ")
}

// Render renders the digest with message id.
func (d *Digest) Render(id string) Rendered {
	head := []string{
		fmt.Sprintf("%d bans from %s to %s (more than the flood limit: gathered into this digest)", d.n,
			d.first.Format(time.DateTime), d.last.Format(time.DateTime)),
		"Users tried: " + topCounts(d.users, 10),
		"Networks: " + topCounts(d.nets, 10), "",
	}
	body := d.lines
	if d.n > len(d.lines) {
		body = append(slices.Clone(d.lines), fmt.Sprintf("... and %d more bans (sshguard-go list shows them all)", d.n-len(d.lines)))
	}
	g := fmt.Sprintf("%d bans (digest)", d.n)
	subject := "[" + d.host + "] " + g
	text, html := render(d.host, subject, append(head, body...))
	return Rendered{ID: id, Kind: KindBan, Severity: Warning, Subject: subject, Gist: g, Text: text, HTML: html,
		Short: clean(fmt.Sprintf("%s: %d bans between %s and %s", d.host, d.n, d.first.Format(time.TimeOnly), d.last.Format(time.TimeOnly)), MaxShort)}
}
