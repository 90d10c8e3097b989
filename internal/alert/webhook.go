package alert

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// WebhookConfig configures the webhook channel.
type WebhookConfig struct {
	URL     string
	Headers map[string]string // e.g. Authorization
	Timeout time.Duration
}

// Webhook posts alerts as JSON. The "text" field makes Slack and
// Mattermost incoming webhooks show it as is.
type Webhook struct {
	cfg WebhookConfig
	hc  *http.Client
}

// NewWebhook checks cfg and returns a Webhook.
// The URL is often the secret (Slack, Mattermost): no error says it.
func NewWebhook(cfg WebhookConfig) (*Webhook, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("webhook: url is not an http:// or https:// URL (not shown: it may be the secret)")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 20 * time.Second
	}
	return &Webhook{cfg: cfg, hc: noRedirects(cfg.Timeout)}, nil
}

// noRedirects is an HTTP client that follows no redirect: a webhook or
// API that answers 3xx is not delivered to, and the headers set for it
// (tokens) never reach another host.
func noRedirects(timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// Name is "webhook".
func (w *Webhook) Name() string { return "webhook" }

// WebhookBody is what the webhook receives.
type WebhookBody struct {
	Text     string   `json:"text"` // subject and body, for chat systems
	Subject  string   `json:"subject"`
	Kind     Kind     `json:"kind"`
	Severity Severity `json:"severity"`
	Alert    *Message `json:"alert,omitempty"` // the structured alert (none for digests)
}

// Send posts r. A 4xx answer other than 408 and 429 is a PermanentError.
func (w *Webhook) Send(ctx context.Context, r Rendered) error {
	body := WebhookBody{Text: chatSafe(clean(r.Subject, 300) + "\n" + trimTo(r.Text, 3500)), Subject: r.Subject, Kind: r.Kind, Severity: r.Severity}
	if r.Data != nil {
		a := *r.Data
		a.Deliveries = nil
		body.Alert = &a
	}
	data, err := json.Marshal(body)
	if err != nil {
		return &PermanentError{err}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.cfg.URL, bytes.NewReader(data))
	if err != nil {
		return &PermanentError{fmt.Errorf("webhook %s: the URL is not usable", redact(w.cfg.URL))}
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range w.cfg.Headers {
		req.Header.Set(k, v)
	}
	resp, err := w.hc.Do(req)
	if err != nil {
		// The URL is often the secret (Slack, Mattermost): never in an
		// error, a log line or `sshguard-go alerts`.
		var ue *url.Error
		if errors.As(err, &ue) {
			ue.URL = redact(ue.URL)
		}
		return fmt.Errorf("webhook %s: %w", redact(w.cfg.URL), err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode/100 == 2 {
		return nil
	}
	err = fmt.Errorf("webhook: HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(msg)))
	if resp.StatusCode/100 == 3 {
		err = fmt.Errorf("webhook: HTTP %d: redirected to another location, not followed (give the final URL)", resp.StatusCode)
	}
	if resp.StatusCode/100 == 4 && resp.StatusCode != 408 && resp.StatusCode != 429 || resp.StatusCode/100 == 3 {
		return &PermanentError{err}
	}
	return err
}

// chatSafe makes text that carries attacker-chosen user names and log
// lines inert in chat systems: &, < and > escaped as Slack requires (no
// <!channel>, no <url|label> links); a zero-width space after each @ (no
// @all or @channel mentions), inside "://" (no link, no preview fetching
// an attacker's image: a tracking beacon), and after Markdown's markers
// (no **emphasis**, `code`, ~~strike~~, [links](...) or ![images](...)
// in Mattermost, Rocket.Chat or Slack's mrkdwn).
var chatSafe = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", "@", "@\u200b",
	"://", ":\u200b//", "*", "*\u200b", "_", "_\u200b", "~", "~\u200b", "`", "`\u200b", "](", "]\u200b(", "![", "!\u200b[").Replace

// redact keeps a URL's scheme and host only (no user, password, path or
// query: where the secrets are).
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(url)"
	}
	return u.Scheme + "://" + u.Host + "/..."
}

func trimTo(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
