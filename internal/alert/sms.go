package alert

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// SMSConfig configures the SMS channel (Twilio's Messages API).
type SMSConfig struct {
	AccountSID          string
	AuthToken           string
	From                string // a Twilio number, or
	MessagingServiceSID string // a messaging service
	To                  []string
	BaseURL             string // default https://api.twilio.com
	Timeout             time.Duration
}

// SMS sends alerts as text messages through Twilio's REST API: one POST
// to /2010-04-01/Accounts/{AccountSid}/Messages.json per recipient.
type SMS struct {
	cfg SMSConfig
	hc  *http.Client
}

// NewSMS checks cfg and returns an SMS channel.
func NewSMS(cfg SMSConfig) (*SMS, error) {
	if cfg.AccountSID == "" || cfg.AuthToken == "" || len(cfg.To) == 0 {
		return nil, errors.New("sms: account_sid, auth_token and to are required")
	}
	if (cfg.From == "") == (cfg.MessagingServiceSID == "") {
		return nil, errors.New("sms: set exactly one of from and messaging_service_sid")
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = "https://api.twilio.com"
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 20 * time.Second
	}
	return &SMS{cfg: cfg, hc: noRedirects(cfg.Timeout)}, nil
}

// Name is "sms".
func (s *SMS) Name() string { return "sms" }

// twilioError is the body of Twilio's error responses.
type twilioError struct {
	Code     int    `json:"code"`
	Message  string `json:"message"`
	MoreInfo string `json:"more_info"`
	Status   int    `json:"status"`
}

// Send posts r.Short to every recipient not in r.Done. Each recipient is
// tried even when another fails; a failure is a PartialError naming those
// that got it, so a retry does not text them twice. A 4xx answer other
// than 429 is permanent (Twilio's code and message in the error), and the
// whole send is a PermanentError when every failure was.
func (s *SMS) Send(ctx context.Context, r Rendered) error {
	var done []string
	var errs []error
	permanent := true
	for _, to := range s.cfg.To {
		if slices.Contains(r.Done, to) {
			continue
		}
		err := s.send(ctx, to, r.Short)
		if err == nil {
			done = append(done, to)
			continue
		}
		var perm *PermanentError
		permanent = permanent && errors.As(err, &perm)
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		return nil
	}
	err := errors.Join(errs...)
	if permanent {
		err = &PermanentError{err}
	}
	if len(done) > 0 {
		err = &PartialError{Done: done, Err: err}
	}
	return err
}

// send posts one message to one number.
func (s *SMS) send(ctx context.Context, to, body string) error {
	endpoint := strings.TrimRight(s.cfg.BaseURL, "/") + "/2010-04-01/Accounts/" + url.PathEscape(s.cfg.AccountSID) + "/Messages.json"
	form := url.Values{"To": {to}, "Body": {body}}
	if s.cfg.From != "" {
		form.Set("From", s.cfg.From)
	} else {
		form.Set("MessagingServiceSid", s.cfg.MessagingServiceSID)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return &PermanentError{fmt.Errorf("sms: base URL %s is not usable", redact(s.cfg.BaseURL))}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.SetBasicAuth(s.cfg.AccountSID, s.cfg.AuthToken)
	resp, err := s.hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			ue.URL = redact(ue.URL) // base_url may carry a user and password
		}
		return fmt.Errorf("sms to %s: %w", to, err)
	}
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode/100 == 2 {
		return nil
	}
	err = fmt.Errorf("sms to %s: HTTP %d: %s", to, resp.StatusCode, strings.TrimSpace(string(answer)))
	var te twilioError
	if json.Unmarshal(answer, &te) == nil && te.Message != "" {
		err = fmt.Errorf("sms to %s: Twilio error %d (HTTP %d): %s %s", to, te.Code, resp.StatusCode, te.Message, te.MoreInfo)
	}
	if resp.StatusCode/100 == 4 && resp.StatusCode != http.StatusTooManyRequests {
		return &PermanentError{err}
	}
	return err
}
