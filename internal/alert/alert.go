// Package alert tells the administrator what happened: it turns bans and
// logins into messages with a severity, keeps each message in an outbox
// until every channel it is routed to (email, SMS, webhook) has delivered
// it, retries failed deliveries with backoff, gathers floods of bans into
// digests, and writes the daily report. It stores nothing itself: the
// outbox is the Outbox given to the Worker.
package alert

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Kind is what an alert is about.
type Kind string

const (
	KindBan    Kind = "ban"
	KindLogin  Kind = "login"
	KindReport Kind = "report"
	// KindSession: the audit trail's alerts: a targeted guess at a local
	// account, a session that moved many bytes or lasted long.
	KindSession Kind = "session"
	KindTest    Kind = "test"
)

// Kinds are the kinds a route may name.
var Kinds = []Kind{KindBan, KindLogin, KindReport, KindSession}

// Severity orders alerts; a route receives those at or above its minimum.
type Severity int

const (
	Info Severity = iota
	Warning
	High
)

var severityNames = []string{"info", "warning", "high"}

func (s Severity) String() string {
	if s < 0 || int(s) >= len(severityNames) {
		return fmt.Sprintf("severity(%d)", int(s))
	}
	return severityNames[s]
}

// ParseSeverity reads "info", "warning" or "high".
func ParseSeverity(s string) (Severity, error) {
	if i := slices.Index(severityNames, strings.ToLower(s)); i >= 0 {
		return Severity(i), nil
	}
	return 0, fmt.Errorf("unknown severity %q (info, warning, high)", s)
}

func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

func (s *Severity) UnmarshalText(b []byte) (err error) {
	*s, err = ParseSeverity(string(b))
	return err
}

// Ban is what a ban alert tells.
type Ban struct {
	Prefix   netip.Prefix  `json:"prefix"`
	Attempts float64       `json:"attempts,omitempty"`
	Users    []string      `json:"users,omitempty"`
	Duration time.Duration `json:"duration"` // 0: permanent
	Nth      int           `json:"nth"`      // escalation level: the nth ban of this prefix
	Reason   string        `json:"reason,omitempty"`
	First    string        `json:"first,omitempty"` // first evidence line
	Last     string        `json:"last,omitempty"`  // last evidence line
	// DryRun: a dry run (firewall.backend = "none") would have made this
	// ban; nothing was banned.
	DryRun bool `json:"dry_run,omitempty"`
}

// Login is what a login alert tells.
type Login struct {
	Time   time.Time  `json:"time,omitzero"`
	User   string     `json:"user"`
	Addr   netip.Addr `json:"addr"`
	Method string     `json:"method,omitempty"`
	Key    string     `json:"key,omitempty"`    // key type and fingerprint
	Failed float64    `json:"failed,omitempty"` // counted failed attempts of the client in the current window
}

// Session is what a session alert tells.
type Session struct {
	What   string        `json:"what"` // "targeted", "transfer", "long"
	User   string        `json:"user"`
	Addr   string        `json:"addr"`
	Method string        `json:"method,omitempty"`
	Start  time.Time     `json:"start,omitzero"`
	Failed int64         `json:"failed,omitempty"`   // targeted: the failed attempts against the account
	Bytes  int64         `json:"bytes,omitempty"`    // transfer: bytes moved so far
	Lasted time.Duration `json:"duration,omitempty"` // long: how long so far
	Limit  string        `json:"limit,omitempty"`    // the setting crossed, as written
}

// SessionMessage returns a session alert (a warning), or nil if no
// channel takes the kind.
func (p *Policy) SessionMessage(s Session, at time.Time) *Message {
	return p.route(&Message{Kind: KindSession, Severity: Warning, Time: at, Host: p.Host, Session: &s})
}

// Archive is what an analysis of log archives found (report --notify):
// the addresses above a threshold in a window.
type Archive struct {
	Window    string     `json:"window"` // "the last 24h", or "all"
	Inputs    []string   `json:"inputs"`
	Threshold float64    `json:"threshold"`
	Offenders []Offender `json:"offenders"`
	Allowed   int        `json:"allowed,omitempty"` // addresses above it left out by the allowlist
	More      int        `json:"more,omitempty"`    // offenders beyond those listed (MaxDigestBans)
}

// Offender is one address above an Archive's threshold.
type Offender struct {
	Addr     string   `json:"addr"`
	Attempts float64  `json:"attempts"` // weighted
	Failed   int64    `json:"failed"`
	Probes   int64    `json:"probes"`
	Users    []string `json:"users,omitempty"`
}

// ArchiveMessage returns the alert for an archive analysis, routed as a
// report (warning), or nil if no channel takes reports or nobody crossed
// the threshold.
func (p *Policy) ArchiveMessage(a Archive, at time.Time) *Message {
	if len(a.Offenders) == 0 {
		return nil
	}
	if n := len(a.Offenders); n > MaxDigestBans { // the first, most active ones: a wave makes no 10 MB message
		a.Offenders, a.More = a.Offenders[:MaxDigestBans:MaxDigestBans], a.More+n-MaxDigestBans
	}
	return p.route(&Message{Kind: KindReport, Severity: Warning, Time: at, Host: p.Host, Archive: &a})
}

// ArchiveUnrouted is why no channel of p takes the message of an
// archive's n offenders (a report, of severity warning), and what to
// change in the configuration file configPath.
func (p *Policy) ArchiveUnrouted(n int, configPath string) error {
	over := fmt.Sprintf("%d addresses over the threshold", n)
	if n == 1 {
		over = "1 address over the threshold"
	}
	if len(p.Routes) == 0 {
		return fmt.Errorf("%s, but no alert channel is configured in %s: nobody was notified", over, configPath)
	}
	var fixes []string
	for _, r := range p.Routes {
		if !slices.Contains(r.Kinds, KindReport) {
			fixes = append(fixes, fmt.Sprintf("add %q to kinds of [alerts.%s]", KindReport, r.Channel))
		} else if r.MinSeverity > Warning {
			fixes = append(fixes, fmt.Sprintf("lower min_severity of [alerts.%s] from %q to %q", r.Channel, r.MinSeverity, Warning))
		}
	}
	return fmt.Errorf("%s, but no alert channel takes report messages (of severity %s): %s in %s", over, Warning, strings.Join(fixes, ", or "), configPath)
}

// State is a channel's delivery state of one message.
type State string

const (
	Pending State = "pending"
	Sent    State = "sent"
	Failed  State = "failed"  // a permanent error: not retried
	Expired State = "expired" // still failing at the configured maximum age
)

// Delivery is one channel's progress with one message.
type Delivery struct {
	State    State     `json:"state"`
	Attempts int       `json:"attempts,omitempty"`
	Next     time.Time `json:"next,omitzero"` // earliest next try
	Sent     time.Time `json:"sent,omitzero"`
	Digest   bool      `json:"digest,omitempty"` // delivered within a digest
	Error    string    `json:"error,omitempty"`  // the last error
	Done     []string  `json:"done,omitempty"`   // recipients that have it while others fail
}

// Message is an alert as kept in the outbox.
type Message struct {
	Kind     Kind      `json:"kind"`
	Severity Severity  `json:"severity"`
	Time     time.Time `json:"time"`
	Host     string    `json:"host"`
	Reasons  []string  `json:"reasons,omitempty"` // why the severity was raised
	Tags     []string  `json:"tags,omitempty"`    // the same, in a word or two (SMS)
	Ban      *Ban      `json:"ban,omitempty"`
	// BanRef, instead of Ban, refers to the ban where it is recorded (the
	// store's history): a wave of 100,000 bans is not stored twice. The
	// Worker's Resolve (and whoever renders the record) turns it into
	// Ban.
	BanRef     []byte               `json:"ban_ref,omitempty"`
	Login      *Login               `json:"login,omitempty"`
	Report     *Report              `json:"report,omitempty"`
	Archive    *Archive             `json:"archive,omitempty"`
	Session    *Session             `json:"session,omitempty"`
	Text       string               `json:"text,omitempty"` // test messages
	Deliveries map[string]*Delivery `json:"deliveries"`
}

// Done reports whether no channel has m still to deliver.
func (m *Message) Done() bool {
	for _, d := range m.Deliveries {
		if d.State == Pending {
			return false
		}
	}
	return true
}

// ResolveBan fills m.Ban from m.BanRef with resolve (nil: no details).
// A ban that can no longer be found is rendered with what the message
// itself says.
func (m *Message) ResolveBan(resolve func(ref []byte) (*Ban, error)) {
	if m.Ban != nil || len(m.BanRef) == 0 {
		return
	}
	if resolve != nil {
		if b, err := resolve(m.BanRef); err == nil {
			m.Ban = b
			return
		}
	}
	m.Ban = &Ban{Reason: "(the ban's record is no longer kept)"}
}

// Marshal encodes m for the outbox; a nil m gives nil.
func (m *Message) Marshal() []byte {
	if m == nil {
		return nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		panic(err) // only plain values: cannot happen
	}
	return b
}

// Unmarshal decodes an outbox record.
func Unmarshal(data []byte) (*Message, error) {
	var m Message
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("alert record: %w", err)
	}
	if m.Deliveries == nil {
		m.Deliveries = map[string]*Delivery{}
	}
	return &m, nil
}
