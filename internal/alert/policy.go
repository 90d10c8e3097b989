package alert

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Route sends the alerts of some kinds, at or above a severity, to a
// channel.
type Route struct {
	Channel     string
	Kinds       []Kind
	MinSeverity Severity
}

// Policy decides which bans and logins make alerts, their severity and
// their channels. The zero Policy routes nothing.
type Policy struct {
	Host   string
	Dedupe time.Duration // one login alert per user and address within this; default 5m
	Hours  *WorkingHours // nil: no working-hours rule
	Routes []Route
	// MaxAge: a login older than this when it is read (a log read from
	// its start, a long backlog) is recorded but not alerted; default 24h,
	// the age at which undelivered alerts expire too.
	MaxAge time.Duration
}

// Stale reports whether an event at at, read at now, is too old to alert.
func (p *Policy) Stale(at, now time.Time) bool {
	maxAge := p.MaxAge
	if maxAge <= 0 {
		maxAge = 24 * time.Hour
	}
	return now.Sub(at) > maxAge
}

// History is what was known about a user and a client before a login.
type History struct {
	LastFromAddr time.Time // previous login of the user from the address; zero: none
	SeenNet      bool      // the user logged in before from the address's /24 or /64
}

// route fills m's deliveries from the routes, or returns nil if no route
// takes it.
func (p *Policy) route(m *Message) *Message {
	m.Deliveries = map[string]*Delivery{}
	for _, r := range p.Routes {
		if m.Severity >= r.MinSeverity && slices.Contains(r.Kinds, m.Kind) {
			m.Deliveries[r.Channel] = &Delivery{State: Pending}
		}
	}
	if len(m.Deliveries) == 0 {
		return nil
	}
	return m
}

// BanMessage returns the alert for a ban at at, or nil if no channel
// takes it. Bans are warnings; a permanent ban is high.
func (p *Policy) BanMessage(b Ban, at time.Time) *Message {
	m := &Message{Kind: KindBan, Severity: Warning, Time: at, Host: p.Host, Ban: &b}
	if b.Duration == 0 {
		m.raise(High, "permanent ban", "permanent")
	}
	return p.route(m)
}

// ReportMessage returns the daily report as an info alert, or nil if no
// channel takes reports.
func (p *Policy) ReportMessage(r Report, at time.Time) *Message {
	return p.route(&Message{Kind: KindReport, Severity: Info, Time: at, Host: p.Host, Report: &r})
}

// LoginMessage returns the alert for a login, or nil if the same user
// logged in from the same address within the de-duplication time, or no
// channel takes it. A login is info; each of these raises it a level:
// outside working hours, and a network (/24, /64) the user never logged
// in from; failed attempts of the client in the current window (a brute
// force that may have succeeded) make it high.
func (p *Policy) LoginMessage(l Login, h History, at time.Time) *Message {
	dedupe := p.Dedupe
	if dedupe == 0 {
		dedupe = 5 * time.Minute
	}
	if !h.LastFromAddr.IsZero() && !at.Before(h.LastFromAddr) && at.Sub(h.LastFromAddr) < dedupe {
		return nil
	}
	return p.route(p.JudgeLogin(l, h, at))
}

// JudgeLogin is the login alert before routing: its severity, reasons and
// tags, whatever the channels and the de-duplication. A nil Policy judges
// as one without working hours.
func (p *Policy) JudgeLogin(l Login, h History, at time.Time) *Message {
	m := &Message{Kind: KindLogin, Severity: Info, Time: at, Login: &l}
	if p != nil {
		m.Host = p.Host
	}
	if l.Failed > 0 {
		m.raise(High, fmt.Sprintf("after %g failed attempts from this client in the current window: a brute force may have succeeded", l.Failed),
			fmt.Sprintf("after %g failed", l.Failed))
	}
	if p != nil && p.Hours != nil && p.Hours.Outside(at) {
		m.raise(m.Severity+1, "outside working hours ("+p.Hours.String()+")", "off-hours")
	}
	if !h.SeenNet {
		m.raise(m.Severity+1, "first login of "+quoteUser(l.User)+" from this network", "new network")
	}
	return m
}

// raise lifts m to severity s (at most High) and says why, at length and
// as a tag.
func (m *Message) raise(s Severity, reason, tag string) {
	m.Severity = min(max(m.Severity, s), High)
	m.Reasons = append(m.Reasons, reason)
	m.Tags = append(m.Tags, tag)
}

// WorkingHours is the time the administrators expect logins in.
type WorkingHours struct {
	From, To int     // minutes after midnight; To may be below From (overnight)
	Days     [7]bool // by time.Weekday
	Loc      *time.Location
}

var dayNames = []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}

// ParseWorkingHours reads "08:00-18:00", day names ("mon".."sun") and a
// time zone name ("" or "Local" for the system's).
func ParseWorkingHours(span string, days []string, zone string) (*WorkingHours, error) {
	from, to, ok := strings.Cut(span, "-")
	w := &WorkingHours{}
	var err error
	if !ok {
		return nil, fmt.Errorf("working hours %q: want HH:MM-HH:MM", span)
	}
	if w.From, err = clock(from); err == nil {
		w.To, err = clock(to)
	}
	if err != nil {
		return nil, fmt.Errorf("working hours %q: %w", span, err)
	}
	if w.Days, err = ParseWorkingDays(days); err != nil {
		return nil, err
	}
	if zone == "" {
		zone = "Local"
	}
	if w.Loc, err = time.LoadLocation(zone); err != nil {
		return nil, fmt.Errorf("time zone %q: %w", zone, err)
	}
	return w, nil
}

// ParseWorkingDays reads day names ("mon".."sun", any case), by
// time.Weekday.
func ParseWorkingDays(days []string) ([7]bool, error) {
	var out [7]bool
	for _, d := range days {
		i := slices.Index(dayNames, strings.ToLower(d))
		if i < 0 {
			return out, fmt.Errorf("working day %q: use mon, tue, wed, thu, fri, sat, sun", d)
		}
		out[i] = true
	}
	return out, nil
}

func clock(s string) (int, error) {
	t, err := time.Parse("15:04", strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("%q is not HH:MM", s)
	}
	return t.Hour()*60 + t.Minute(), nil
}

// Outside reports whether t is outside the working hours.
func (w *WorkingHours) Outside(t time.Time) bool {
	t = t.In(w.Loc)
	m := t.Hour()*60 + t.Minute()
	day := t.Weekday()
	var in bool
	if w.From <= w.To {
		in = m >= w.From && m < w.To
	} else { // overnight: the part after midnight belongs to the day before
		in = m >= w.From
		if m < w.To {
			in, day = true, (day+6)%7
		}
	}
	return !in || !w.Days[day]
}

func (w *WorkingHours) String() string {
	var days []string
	for i, on := range w.Days {
		if on {
			days = append(days, dayNames[i])
		}
	}
	return fmt.Sprintf("%s %02d:%02d-%02d:%02d %s", strings.Join(days, ","), w.From/60, w.From%60, w.To/60, w.To%60, w.Loc)
}

// quoteUser shows a user name (attacker-chosen text) quoted, with
// control characters escaped, and cut to a sane length.
func quoteUser(u string) string {
	if len(u) > 64 {
		u = u[:64] + "..."
	}
	return fmt.Sprintf("%q", u)
}
