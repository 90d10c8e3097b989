package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
)

// APIConfig is the read-only HTTP API and dashboard of the daemon.
type APIConfig struct {
	// Listen is host:port; "" is off. Off loopback it needs a token or
	// client certificates.
	Listen string `toml:"listen"`
	// TokenFile holds the bearer token clients send. The daemon makes
	// its own (api.token next to the database) when it is "" and
	// ClientCA too; fleet serve asks none then.
	TokenFile string `toml:"token_file"`
	TLSCert   string `toml:"tls_cert"`
	TLSKey    string `toml:"tls_key"`
	ClientCA  string `toml:"client_ca"` // with TLS: clients must show a certificate it signed
	// Events is how many recent events the API keeps in memory.
	Events int `toml:"events"`

	// AsFlags words the errors with command-line flags (--token-file)
	// instead of the file's keys (api.token_file): fleet serve takes the
	// same settings as flags.
	AsFlags bool `toml:"-"`
}

// key is how errors name setting k ("token_file").
func (a APIConfig) key(k string) string {
	if a.AsFlags {
		return "--" + strings.ReplaceAll(k, "_", "-")
	}
	return "api." + k
}

// maxAPIEvents bounds api.events.
const maxAPIEvents = 100000

// Check validates a on its own (the fleet aggregator's listener takes
// the same settings as flags); errors name the keys.
func (a APIConfig) Check() error {
	var errs []error
	a.validate(func(key, format string, args ...any) {
		errs = append(errs, &keyError{key: key, msg: fmt.Sprintf(format, args...)})
	})
	return errors.Join(errs...)
}

func (a APIConfig) validate(bad func(key, format string, args ...any)) {
	if a.Events < 0 || a.Events > maxAPIEvents {
		bad(a.key("events"), "must be in [0, %d], is %d", maxAPIEvents, a.Events)
	}
	if (a.TLSCert == "") != (a.TLSKey == "") {
		bad(a.key("tls_cert"), "%s and %s go together", a.key("tls_cert"), a.key("tls_key"))
	}
	if a.ClientCA != "" && a.TLSCert == "" {
		bad(a.key("client_ca"), "needs %s and %s (client certificates are checked over TLS)", a.key("tls_cert"), a.key("tls_key"))
	}
	if a.Listen == "" {
		return
	}
	host, port, err := net.SplitHostPort(a.Listen)
	if err != nil || port == "" {
		bad(a.key("listen"), "%q is not host:port (e.g. 127.0.0.1:9612)", a.Listen)
		return
	}
	if !validPort(port, true) {
		bad(a.key("listen"), "%q: the port must be a number, 0 to %d", a.Listen, maxPort)
	}
	if !Loopback(host) && a.TokenFile == "" && a.ClientCA == "" {
		bad(a.key("listen"), "%q is reachable from other machines: set %s, or %s, %s and %s", a.Listen,
			a.key("token_file"), a.key("tls_cert"), a.key("tls_key"), a.key("client_ca"))
	}
}

// Loopback reports whether host (of host:port) names only this machine.
func Loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// Token returns the bearer token of api.token_file ("" when none is set).
func (a APIConfig) Token() (string, error) {
	if a.TokenFile == "" {
		return "", nil
	}
	b, err := os.ReadFile(a.TokenFile)
	if err != nil {
		return "", fmt.Errorf("%s: %w", a.key("token_file"), err)
	}
	tok := strings.TrimSpace(string(b))
	if len(tok) < 16 {
		err = fmt.Errorf("%s: %s holds %d characters; use at least 16 (e.g. openssl rand -hex 32)", a.key("token_file"), a.TokenFile, len(tok))
	}
	return tok, err
}

// TLS returns the server's TLS settings (nil without api.tls_cert).
func (a APIConfig) TLS() (*tls.Config, error) {
	if a.TLSCert == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(a.TLSCert, a.TLSKey)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", a.key("tls_cert"), err)
	}
	c := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if a.ClientCA != "" {
		pem, err := os.ReadFile(a.ClientCA)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", a.key("client_ca"), err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s: %s holds no PEM certificate", a.key("client_ca"), a.ClientCA)
		}
		c.ClientCAs, c.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return c, nil
}
