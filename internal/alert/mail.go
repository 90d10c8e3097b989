package alert

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/wneessen/go-mail"
)

// MailConfig configures the email channel.
type MailConfig struct {
	Host     string
	Port     int    // default 587 for starttls, 465 for tls, 25 for none
	TLS      string // "starttls" (default, required), "tls" (implicit), "none"
	Auth     string // "plain", "login", or "" (plain when a user name is set)
	Username string
	Password string
	From     string
	To       []string
	CAFile   string // PEM certificates to trust besides the system's
	// SubjectPrefix replaces the subject's "[host]"; empty keeps it.
	SubjectPrefix string
	Timeout       time.Duration
}

// Mailer sends alerts as email with a text and an HTML part.
type Mailer struct {
	cfg  MailConfig
	opts []mail.Option
}

// NewMailer checks cfg and returns a Mailer.
func NewMailer(cfg MailConfig) (*Mailer, error) {
	if cfg.Host == "" || cfg.From == "" || len(cfg.To) == 0 {
		return nil, errors.New("email: host, from and to are required")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	tc := &tls.Config{ServerName: cfg.Host, MinVersion: tls.VersionTLS12}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("email: ca_file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("email: ca_file %s holds no PEM certificate", cfg.CAFile)
		}
		tc.RootCAs = pool
	}
	opts := []mail.Option{mail.WithTimeout(cfg.Timeout), mail.WithTLSConfig(tc)}
	switch cfg.TLS {
	case "", "starttls":
		opts = append(opts, mail.WithTLSPolicy(mail.TLSMandatory), mail.WithPort(portOr(cfg.Port, 587)))
	case "tls":
		opts = append(opts, mail.WithSSL(), mail.WithPort(portOr(cfg.Port, 465)))
	case "none":
		opts = append(opts, mail.WithTLSPolicy(mail.NoTLS), mail.WithPort(portOr(cfg.Port, 25)))
	default:
		return nil, fmt.Errorf("email: tls must be starttls, tls or none, is %q", cfg.TLS)
	}
	switch strings.ToLower(cfg.Auth) {
	case "":
		if cfg.Username != "" {
			opts = append(opts, mail.WithSMTPAuth(mail.SMTPAuthPlain))
		}
	case "plain":
		opts = append(opts, mail.WithSMTPAuth(mail.SMTPAuthPlain))
	case "login":
		opts = append(opts, mail.WithSMTPAuth(mail.SMTPAuthLogin))
	default:
		return nil, fmt.Errorf("email: auth must be plain or login, is %q", cfg.Auth)
	}
	if cfg.Username != "" {
		opts = append(opts, mail.WithUsername(cfg.Username), mail.WithPassword(cfg.Password))
	}
	return &Mailer{cfg: cfg, opts: opts}, nil
}

func portOr(p, def int) int {
	if p > 0 {
		return p
	}
	return def
}

// Name is "email".
func (m *Mailer) Name() string { return "email" }

// Send sends r in one message to every recipient not in r.Done. A
// server's permanent refusal (5xx for the sender, a recipient or the
// data) is a PermanentError; failures to connect or authenticate are
// retried. A server that refuses one recipient drops the message for all
// of them, so then each recipient is sent a message of its own: the
// others get the alert, and the error is a PartialError naming them.
func (m *Mailer) Send(ctx context.Context, r Rendered) error {
	var to []string
	for _, a := range m.cfg.To {
		if !slices.Contains(r.Done, a) {
			to = append(to, a)
		}
	}
	if len(to) == 0 {
		return nil
	}
	err := m.send(ctx, r, to)
	var perm *PermanentError
	var se *mail.SendError
	if len(to) < 2 || !errors.As(err, &perm) || !errors.As(err, &se) || se.Reason != mail.ErrSMTPRcptTo {
		return err
	}
	var done []string
	var errs []error
	permanent := true
	for _, a := range to {
		err := m.send(ctx, r, []string{a})
		if err == nil {
			done = append(done, a)
			continue
		}
		errs = append(errs, err)
		permanent = permanent && errors.As(err, &perm)
	}
	if len(errs) == 0 {
		return nil
	}
	err = errors.Join(errs...)
	if permanent {
		err = &PermanentError{err}
	}
	if len(done) > 0 {
		err = &PartialError{Done: done, Err: err}
	}
	return err
}

// send sends r to the recipients to in one SMTP transaction.
func (m *Mailer) send(ctx context.Context, r Rendered, to []string) error {
	msg := mail.NewMsg()
	if err := msg.From(m.cfg.From); err != nil {
		return &PermanentError{fmt.Errorf("email: from: %w", err)}
	}
	if err := msg.To(to...); err != nil {
		return &PermanentError{fmt.Errorf("email: to: %w", err)}
	}
	if m.cfg.SubjectPrefix != "" {
		msg.Subject(m.cfg.SubjectPrefix + " " + r.Gist)
	} else {
		msg.Subject(r.Subject)
	}
	msg.SetDate()
	msg.SetMessageIDWithValue(r.ID + ".sshguard-go@" + hostPart(m.cfg.From))
	msg.SetGenHeader("X-Sshguard-Kind", string(r.Kind))
	msg.SetGenHeader("X-Sshguard-Severity", r.Severity.String())
	msg.SetBodyString(mail.TypeTextPlain, r.Text)
	msg.AddAlternativeString(mail.TypeTextHTML, r.HTML)
	c, err := mail.NewClient(m.cfg.Host, m.opts...)
	if err != nil {
		return &PermanentError{fmt.Errorf("email: %w", err)}
	}
	if err := c.DialAndSendWithContext(ctx, msg); err != nil {
		var se *mail.SendError
		if errors.As(err, &se) && !se.IsTemp() && se.ErrorCode() >= 500 && se.ErrorCode() != 530 && se.ErrorCode() != 535 {
			return &PermanentError{fmt.Errorf("email via %s: %w", m.cfg.Host, err)}
		}
		return fmt.Errorf("email via %s: %w", m.cfg.Host, err)
	}
	return nil
}

func hostPart(addr string) string {
	if _, h, ok := strings.Cut(addr, "@"); ok {
		return strings.Trim(h, "> ")
	}
	return "localhost"
}
