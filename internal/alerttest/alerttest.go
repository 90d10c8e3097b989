// Package alerttest runs real servers for alert tests: an SMTP server
// (github.com/emersion/go-smtp) with STARTTLS or implicit TLS and AUTH
// PLAIN and LOGIN, whose received messages are parsed for checking, and
// a stand-in for Twilio's Messages API that checks what Twilio would.
package alerttest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"mime"
	"mime/multipart"
	"net"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Mail is a message the SMTP server accepted.
type Mail struct {
	From   string
	To     []string
	Auth   string // the mechanism used: PLAIN or LOGIN
	TLS    bool   // the session was encrypted
	Header mail.Header
	Text   string // the text/plain part
	HTML   string // the text/html part
	Raw    []byte
}

// SMTP is a running SMTP server on loopback (or on a listener made by
// Listen).
type SMTP struct {
	Host     string
	Port     int
	CAFile   string // the PEM certificate the server presents
	User     string
	Password string

	t        testing.TB
	implicit bool
	cert     tls.Certificate
	listen   func(addr string) (net.Listener, error)

	mu    sync.Mutex // guards mails, srv, l
	mails []Mail
	srv   *smtp.Server
	l     net.Listener
}

// Options for StartSMTP.
type Options struct {
	ImplicitTLS bool
	// Listen makes the listener (default net.Listen on 127.0.0.1); addr
	// is "127.0.0.1:0" at first and the same port on Restart.
	Listen func(addr string) (net.Listener, error)
}

// StartSMTP starts a server that requires STARTTLS (or implicit TLS) and
// AUTH as user "alerts" with password "s3cret", stopped when t ends.
func StartSMTP(t testing.TB, o Options) *SMTP {
	t.Helper()
	s := &SMTP{Host: "127.0.0.1", User: "alerts", Password: "s3cret", t: t, implicit: o.ImplicitTLS, listen: o.Listen}
	if s.listen == nil {
		s.listen = func(addr string) (net.Listener, error) { return net.Listen("tcp", addr) }
	}
	s.cert, s.CAFile = selfSigned(t)
	if err := s.start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

func (s *SMTP) start(addr string) error {
	l, err := s.listen(addr)
	if err != nil {
		return err
	}
	s.Port = l.Addr().(*net.TCPAddr).Port
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		_, tlsOn := c.TLSConnectionState()
		return &session{s: s, tls: tlsOn}, nil
	}))
	srv.Domain = "mail.test"
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{s.cert}}
	if s.implicit {
		l = tls.NewListener(l, srv.TLSConfig)
	}
	s.mu.Lock()
	s.srv, s.l = srv, l
	s.mu.Unlock()
	go srv.Serve(l)
	return nil
}

// Stop closes the server: connections are refused until Restart.
func (s *SMTP) Stop() {
	s.mu.Lock()
	srv, l := s.srv, s.l
	s.srv, s.l = nil, nil
	s.mu.Unlock()
	if srv != nil {
		l.Close() // Serve may not have taken it yet
		srv.Close()
	}
}

// Restart listens again on the same port.
func (s *SMTP) Restart() {
	s.t.Helper()
	var err error
	for i := 0; i < 50; i++ {
		if err = s.start(fmt.Sprintf("%s:%d", s.Host, s.Port)); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.t.Fatalf("restart SMTP server: %v", err)
}

// Mails returns the messages received so far.
func (s *SMTP) Mails() []Mail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Mail(nil), s.mails...)
}

// Wait returns the messages once at least n arrived, or fails t after
// timeout.
func (s *SMTP) Wait(n int, timeout time.Duration) []Mail {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		m := s.Mails()
		if len(m) >= n {
			return m
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("%d mails after %v, want %d", len(m), timeout, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type session struct {
	s    *SMTP
	tls  bool
	auth string
	from string
	to   []string
}

func (ss *session) AuthMechanisms() []string { return []string{sasl.Plain, sasl.Login} }

func (ss *session) Auth(mech string) (sasl.Server, error) {
	check := func(user, pass string) error {
		if user != ss.s.User || pass != ss.s.Password {
			return errors.New("535 5.7.8 authentication credentials invalid")
		}
		ss.auth = mech
		return nil
	}
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(_, user, pass string) error { return check(user, pass) }), nil
	case sasl.Login:
		return &loginServer{check: check}, nil
	}
	return nil, smtp.ErrAuthUnsupported
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	if ss.auth == "" {
		return smtp.ErrAuthRequired
	}
	ss.from = from
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if strings.HasPrefix(to, "reject") {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such mailbox"}
	}
	ss.to = append(ss.to, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m := Mail{From: ss.from, To: ss.to, Auth: ss.auth, TLS: ss.tls, Raw: raw}
	if err := parse(&m); err != nil {
		return fmt.Errorf("unparsable message: %w", err)
	}
	ss.s.mu.Lock()
	ss.s.mails = append(ss.s.mails, m)
	ss.s.mu.Unlock()
	return nil
}

func (ss *session) Reset()        { ss.from, ss.to = "", nil }
func (ss *session) Logout() error { return nil }

// parse fills the header and the text and HTML parts of m from m.Raw.
func parse(m *Mail) error {
	msg, err := mail.ReadMessage(bytes.NewReader(m.Raw))
	if err != nil {
		return err
	}
	m.Header = msg.Header
	return walk(m, msg.Header.Get("Content-Type"), msg.Header.Get("Content-Transfer-Encoding"), msg.Body)
}

func walk(m *Mail, ctype, enc string, body io.Reader) error {
	mt, params, err := mime.ParseMediaType(ctype)
	if err != nil {
		return err
	}
	if strings.HasPrefix(mt, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			p, err := mr.NextRawPart()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
			if err := walk(m, p.Header.Get("Content-Type"), p.Header.Get("Content-Transfer-Encoding"), p); err != nil {
				return err
			}
		}
	}
	data, err := decode(enc, body)
	if err != nil {
		return err
	}
	switch mt {
	case "text/plain":
		m.Text = string(data)
	case "text/html":
		m.HTML = string(data)
	}
	return nil
}

// loginServer is the server side of SASL LOGIN (go-sasl has only the
// client).
type loginServer struct {
	check func(user, pass string) error
	step  int
	user  string
}

func (l *loginServer) Next(resp []byte) ([]byte, bool, error) {
	l.step++
	switch l.step {
	case 1:
		if len(resp) > 0 { // initial response carries the user name
			l.user = string(resp)
			l.step++
			return []byte("Password:"), false, nil
		}
		return []byte("Username:"), false, nil
	case 2:
		l.user = string(resp)
		return []byte("Password:"), false, nil
	default:
		return nil, true, l.check(l.user, string(resp))
	}
}

// selfSigned makes a certificate for 127.0.0.1 and localhost and writes
// it as PEM to a file, for the client's ca_file.
func selfSigned(t testing.TB) (tls.Certificate, string) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "sshguard-go test SMTP"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, IsCA: true, BasicConstraintsValid: true,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyDER, _ := x509.MarshalECPrivateKey(key)
	cert, err := tls.X509KeyPair(certPEM, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "smtp-ca.pem")
	if err := os.WriteFile(path, certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	return cert, path
}

// WriteConfig writes dir/sshguard-go.toml: a configuration that sends
// every alert by email to s (the password in dir/smtp-password), retries
// quickly, bans after 3 attempts and has no firewall (no root needed);
// extra is appended. It returns the file's path.
func WriteConfig(t testing.TB, dir string, s *SMTP, extra string) string {
	t.Helper()
	pw := filepath.Join(dir, "smtp-password")
	if err := os.WriteFile(pw, []byte(s.Password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`[detection]
threshold = 3
[alerts]
hostname = "web-01"
retry_min = "1s"
retry_max = "1s"
[alerts.email]
host = %q
port = %d
username = %q
password_file = %q
from = "sshguard-go@web-01.example.org"
to = ["admin@example.org"]
ca_file = %q
%s`, s.Host, s.Port, s.User, pw, s.CAFile, extra)
	p := filepath.Join(dir, "sshguard-go.toml")
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
