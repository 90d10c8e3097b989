package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
)

// APIConfig is the read-only HTTP API and dashboard of the daemon.
type APIConfig struct {
	// Listen is host:port; "" is off. Off loopback it needs a token or
	// client certificates.
	Listen    string `toml:"listen"`
	TokenFile string `toml:"token_file"` // a bearer token clients must send
	TLSCert   string `toml:"tls_cert"`
	TLSKey    string `toml:"tls_key"`
	ClientCA  string `toml:"client_ca"` // with TLS: clients must show a certificate it signed
	// Events is how many recent events the API keeps in memory.
	Events int `toml:"events"`
}

// maxAPIEvents bounds api.events.
const maxAPIEvents = 100000

// Check validates a on its own (the fleet aggregator's listener takes
// the same settings as flags); errors name the keys.
func (a APIConfig) Check() error {
	var errs []error
	a.validate(func(key, format string, args ...any) {
		errs = append(errs, &keyError{key, fmt.Sprintf(format, args...)})
	})
	return errors.Join(errs...)
}

func (a APIConfig) validate(bad func(key, format string, args ...any)) {
	if a.Events < 0 || a.Events > maxAPIEvents {
		bad("api.events", "must be in [0, %d], is %d", maxAPIEvents, a.Events)
	}
	if (a.TLSCert == "") != (a.TLSKey == "") {
		bad("api.tls_cert", "tls_cert and tls_key go together")
	}
	if a.ClientCA != "" && a.TLSCert == "" {
		bad("api.client_ca", "needs tls_cert and tls_key (client certificates are checked over TLS)")
	}
	if a.Listen == "" {
		return
	}
	host, port, err := net.SplitHostPort(a.Listen)
	if err != nil || port == "" {
		bad("api.listen", "%q is not host:port (e.g. 127.0.0.1:9612)", a.Listen)
		return
	}
	if !Loopback(host) && a.TokenFile == "" && a.ClientCA == "" {
		bad("api.listen", "%q is reachable from other machines: set api.token_file, or api.tls_cert, api.tls_key and api.client_ca", a.Listen)
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
	tok, err := readSecret("api.token", "", a.TokenFile)
	if err == nil && len(tok) < 16 {
		err = fmt.Errorf("api.token_file: %s holds %d characters; use at least 16 (e.g. openssl rand -hex 32)", a.TokenFile, len(tok))
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
		return nil, fmt.Errorf("api.tls_cert: %w", err)
	}
	c := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if a.ClientCA != "" {
		pem, err := os.ReadFile(a.ClientCA)
		if err != nil {
			return nil, fmt.Errorf("api.client_ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, errors.New("api.client_ca: " + a.ClientCA + " holds no PEM certificate")
		}
		c.ClientCAs, c.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return c, nil
}
