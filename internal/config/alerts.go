package config

import (
	"fmt"
	"net/mail"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"
	_ "time/tzdata" // time zones by name on systems without a zoneinfo database

	"sshguard-go/internal/alert"
)

// AlertsConfig is the [alerts] table: the rules, and one sub-table per
// channel. A channel is on when its address is set (email.host,
// sms.account_sid, webhook.url).
type AlertsConfig struct {
	Hostname       string   `toml:"hostname"`
	DedupeLogins   Duration `toml:"dedupe_logins"`
	WorkingHours   string   `toml:"working_hours"`
	WorkingDays    []string `toml:"working_days"`
	Timezone       string   `toml:"timezone"`
	FloodRate      int      `toml:"flood_rate"`
	FloodWindow    Duration `toml:"flood_window"`
	DigestInterval Duration `toml:"digest_interval"`
	RetryMin       Duration `toml:"retry_min"`
	RetryMax       Duration `toml:"retry_max"`
	MaxAge         Duration `toml:"max_age"`
	History        int      `toml:"history"`
	DailyReport    bool     `toml:"daily_report"`
	ReportHour     int      `toml:"report_hour"`
	// The audit trail's alerts (kind "session"), each off by default.
	TargetedFailures   bool          `toml:"targeted_failures"`    // a failed attempt at an existing local account
	LocalMinUID        int           `toml:"local_min_uid"`        // the accounts that count as local: uid at least this
	TransferAlertBytes int64         `toml:"transfer_alert_bytes"` // a session moving more (0: off)
	SessionAlertAfter  Duration      `toml:"session_alert_after"`  // a session open longer (0: off)
	Email              EmailConfig   `toml:"email"`
	SMS                SMSConfig     `toml:"sms"`
	Webhook            WebhookConfig `toml:"webhook"`
}

type EmailConfig struct {
	Host          string   `toml:"host"`
	Port          int      `toml:"port"`
	TLS           string   `toml:"tls"`
	Auth          string   `toml:"auth"`
	Username      string   `toml:"username"`
	Password      string   `toml:"password"`
	PasswordFile  string   `toml:"password_file"`
	From          string   `toml:"from"`
	To            []string `toml:"to"`
	CAFile        string   `toml:"ca_file"`
	SubjectPrefix string   `toml:"subject_prefix"`
	Kinds         []string `toml:"kinds"`
	MinSeverity   string   `toml:"min_severity"`
}

type SMSConfig struct {
	AccountSID          string   `toml:"account_sid"`
	AuthToken           string   `toml:"auth_token"`
	AuthTokenFile       string   `toml:"auth_token_file"`
	From                string   `toml:"from"`
	MessagingServiceSID string   `toml:"messaging_service_sid"`
	To                  []string `toml:"to"`
	BaseURL             string   `toml:"base_url"`
	Kinds               []string `toml:"kinds"`
	MinSeverity         string   `toml:"min_severity"`
}

type WebhookConfig struct {
	URL         string            `toml:"url"`
	URLFile     string            `toml:"url_file"`
	Headers     map[string]string `toml:"headers"`
	Kinds       []string          `toml:"kinds"`
	MinSeverity string            `toml:"min_severity"`
}

func defaultAlerts() AlertsConfig {
	all := []string{"ban", "login", "report", "session"}
	return AlertsConfig{
		DedupeLogins: Duration(5 * time.Minute), WorkingDays: []string{"mon", "tue", "wed", "thu", "fri"}, Timezone: "Local",
		FloodRate: 10, FloodWindow: Duration(time.Minute), DigestInterval: Duration(15 * time.Minute),
		RetryMin: Duration(10 * time.Second), RetryMax: Duration(10 * time.Minute), MaxAge: Duration(24 * time.Hour),
		History: 10000, ReportHour: 7, LocalMinUID: 1000,
		Email:   EmailConfig{TLS: "starttls", To: []string{}, Kinds: all, MinSeverity: "info"},
		SMS:     SMSConfig{To: []string{}, BaseURL: "https://api.twilio.com", Kinds: []string{"login", "session"}, MinSeverity: "info"},
		Webhook: WebhookConfig{Headers: map[string]string{}, Kinds: []string{"ban", "login", "session"}, MinSeverity: "info"},
	}
}

func (a AlertsConfig) validate(bad func(key, format string, args ...any)) {
	route := func(table string, kinds []string, sev string) {
		for _, k := range kinds {
			if !slices.Contains(alert.Kinds, alert.Kind(k)) {
				bad("alerts."+table+".kinds", "%q is not one of ban, login, report, session", k)
			}
		}
		if _, err := alert.ParseSeverity(sev); err != nil {
			bad("alerts."+table+".min_severity", "%v", err)
		}
	}
	secret := func(key, v, file string) {
		if v != "" && file != "" {
			bad(key, "set %s or %s_file, not both", key[strings.LastIndex(key, ".")+1:], key[strings.LastIndex(key, ".")+1:])
		}
	}
	// The days are checked without working_hours too: a file that sets
	// them means them, and learns of a typo before it sets the hours.
	if _, err := alert.ParseWorkingDays(a.WorkingDays); err != nil {
		bad("alerts.working_days", "%v", err)
	} else if a.WorkingHours != "" {
		if _, err := alert.ParseWorkingHours(a.WorkingHours, a.WorkingDays, a.Timezone); err != nil {
			bad("alerts.working_hours", "%v", err)
		}
	}
	if _, err := time.LoadLocation(zoneName(a.Timezone)); err != nil {
		bad("alerts.timezone", "%v", err)
	}
	if a.FloodRate < 1 {
		bad("alerts.flood_rate", "must be at least 1, is %d", a.FloodRate)
	}
	if a.TransferAlertBytes < 0 {
		bad("alerts.transfer_alert_bytes", "must be 0 (off) or a number of bytes, is %d", a.TransferAlertBytes)
	}
	if a.LocalMinUID < 0 {
		bad("alerts.local_min_uid", "must be at least 0, is %d", a.LocalMinUID)
	}
	if a.ReportHour < 0 || a.ReportHour > 23 {
		bad("alerts.report_hour", "must be 0..23, is %d", a.ReportHour)
	}
	if a.History < 100 {
		bad("alerts.history", "must be at least 100, is %d", a.History)
	}
	if p := a.Email.Port; p < 0 || p > maxPort {
		bad("alerts.email.port", "must be 0 (587 for starttls, 465 for tls, 25 for none) or 1 to %d, is %d", maxPort, p)
	}
	if e := a.Email; e.Host != "" {
		if e.From == "" || len(e.To) == 0 {
			bad("alerts.email", "from and to are required when host is set")
		}
		if !slices.Contains([]string{"starttls", "tls", "none"}, e.TLS) {
			bad("alerts.email.tls", "must be starttls, tls or none, is %q", e.TLS)
		}
		if !slices.Contains([]string{"", "plain", "login"}, e.Auth) {
			bad("alerts.email.auth", "must be plain or login, is %q", e.Auth)
		}
		for key, addrs := range map[string][]string{"alerts.email.from": {e.From}, "alerts.email.to": e.To} {
			for _, a := range addrs {
				if _, err := mail.ParseAddress(a); a != "" && err != nil {
					bad(key, "%q is not an email address", a)
				}
			}
		}
		secret("alerts.email.password", e.Password, e.PasswordFile)
		route("email", e.Kinds, e.MinSeverity)
	}
	if !validURLPort(a.SMS.BaseURL) {
		bad("alerts.sms.base_url", "%q: the port must be 1 to %d", maskUserinfo(a.SMS.BaseURL), maxPort)
	}
	if s := a.SMS; s.AccountSID != "" {
		if len(s.To) == 0 || (s.AuthToken == "" && s.AuthTokenFile == "") {
			bad("alerts.sms", "auth_token (or auth_token_file) and to are required when account_sid is set")
		}
		if (s.From == "") == (s.MessagingServiceSID == "") {
			bad("alerts.sms", "set exactly one of from and messaging_service_sid")
		}
		for key, nums := range map[string][]string{"alerts.sms.from": {s.From}, "alerts.sms.to": s.To} {
			for _, n := range nums {
				if n != "" && !e164(n) {
					bad(key, "%q is not a phone number in E.164 form (+ and 8 to 15 digits)", n)
				}
			}
		}
		secret("alerts.sms.auth_token", s.AuthToken, s.AuthTokenFile)
		route("sms", s.Kinds, s.MinSeverity)
	}
	if w := a.Webhook; w.URL != "" || w.URLFile != "" {
		secret("alerts.webhook.url", w.URL, w.URLFile)
		if u, err := url.Parse(w.URL); w.URL != "" && (err != nil || (u.Scheme != "http" && u.Scheme != "https")) {
			bad("alerts.webhook.url", "must be an http:// or https:// URL")
		} else if w.URL != "" && !validURLPort(w.URL) {
			bad("alerts.webhook.url", "the port must be 1 to %d", maxPort)
		}
		route("webhook", w.Kinds, w.MinSeverity)
	}
}

// e164 reports whether n is "+" and 8 to 15 digits.
func e164(n string) bool {
	if len(n) < 9 || len(n) > 16 || n[0] != '+' {
		return false
	}
	for _, c := range n[1:] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// Location returns the alerts' time zone; the configuration is validated.
func (a AlertsConfig) Location() *time.Location {
	loc, err := time.LoadLocation(zoneName(a.Timezone))
	if err != nil {
		return time.Local
	}
	return loc
}

func zoneName(z string) string {
	if z == "" {
		return "Local"
	}
	return z
}

// Host is the name alerts (and the API) carry.
func (a AlertsConfig) Host() string {
	if a.Hostname != "" {
		return a.Hostname
	}
	return systemHostname()
}

// readSecret returns v, or the trimmed content of file when file is set.
func readSecret(key, v, file string) (string, error) {
	if file == "" {
		return v, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("%s_file: %w", key, err)
	}
	return strings.TrimSpace(string(b)), nil
}

// Policy returns the alert rules; the configuration is validated.
func (a AlertsConfig) Policy() *alert.Policy {
	p := &alert.Policy{Host: a.Host(), Dedupe: time.Duration(a.DedupeLogins), MaxAge: time.Duration(a.MaxAge)}
	if a.WorkingHours != "" {
		p.Hours, _ = alert.ParseWorkingHours(a.WorkingHours, a.WorkingDays, a.Timezone)
	}
	add := func(name string, kinds []string, sev string) {
		r := alert.Route{Channel: name}
		r.MinSeverity, _ = alert.ParseSeverity(sev)
		for _, k := range kinds {
			r.Kinds = append(r.Kinds, alert.Kind(k))
		}
		p.Routes = append(p.Routes, r)
	}
	if a.Email.Host != "" {
		add("email", a.Email.Kinds, a.Email.MinSeverity)
	}
	if a.SMS.AccountSID != "" {
		add("sms", a.SMS.Kinds, a.SMS.MinSeverity)
	}
	if a.Webhook.URL != "" || a.Webhook.URLFile != "" {
		add("webhook", a.Webhook.Kinds, a.Webhook.MinSeverity)
	}
	return p
}

// Channels builds the configured channels, reading secrets from files.
func (a AlertsConfig) Channels() ([]alert.Channel, error) {
	var out []alert.Channel
	if e := a.Email; e.Host != "" {
		pw, err := readSecret("alerts.email.password", e.Password, e.PasswordFile)
		if err != nil {
			return nil, err
		}
		m, err := alert.NewMailer(alert.MailConfig{Host: e.Host, Port: e.Port, TLS: e.TLS, Auth: e.Auth, Username: e.Username,
			Password: pw, From: e.From, To: e.To, CAFile: e.CAFile, SubjectPrefix: e.SubjectPrefix})
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	if s := a.SMS; s.AccountSID != "" {
		tok, err := readSecret("alerts.sms.auth_token", s.AuthToken, s.AuthTokenFile)
		if err != nil {
			return nil, err
		}
		c, err := alert.NewSMS(alert.SMSConfig{AccountSID: s.AccountSID, AuthToken: tok, From: s.From,
			MessagingServiceSID: s.MessagingServiceSID, To: s.To, BaseURL: s.BaseURL})
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if w := a.Webhook; w.URL != "" || w.URLFile != "" {
		u, err := readSecret("alerts.webhook.url", w.URL, w.URLFile)
		if err != nil {
			return nil, err
		}
		c, err := alert.NewWebhook(alert.WebhookConfig{URL: u, Headers: w.Headers})
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// WorkerConfig returns the delivery settings.
func (a AlertsConfig) WorkerConfig() alert.WorkerConfig {
	return alert.WorkerConfig{Host: a.Host(), MaxAge: time.Duration(a.MaxAge), MinBackoff: time.Duration(a.RetryMin),
		MaxBackoff: time.Duration(a.RetryMax), FloodRate: a.FloodRate, FloodWindow: time.Duration(a.FloodWindow),
		DigestInterval: time.Duration(a.DigestInterval)}
}

// hasSecrets reports whether the file itself holds a secret.
func (a AlertsConfig) hasSecrets() bool {
	return a.Email.Password != "" || a.SMS.AuthToken != "" || a.Webhook.URL != "" || len(a.Webhook.Headers) > 0 ||
		hasUserinfo(a.SMS.BaseURL)
}

// masked returns a copy with the secrets replaced by mask.
func (a AlertsConfig) masked() AlertsConfig {
	m := a
	if m.Email.Password != "" {
		m.Email.Password = mask
	}
	if m.SMS.AuthToken != "" {
		m.SMS.AuthToken = mask
	}
	if m.Webhook.URL != "" {
		m.Webhook.URL = mask
		if u, err := url.Parse(a.Webhook.URL); err == nil && u.Host != "" {
			m.Webhook.URL = u.Scheme + "://" + u.Host + "/" + mask
		}
	}
	m.SMS.BaseURL = maskUserinfo(a.SMS.BaseURL)
	if len(m.Webhook.Headers) > 0 {
		m.Webhook.Headers = map[string]string{}
		for k := range a.Webhook.Headers {
			m.Webhook.Headers[k] = mask
		}
	}
	return m
}
