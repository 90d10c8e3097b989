// Package fleet is the view over many hosts: it asks each host's API
// (internal/api) for its days, concurrently and bounded, and answers with
// what it has. A host that is down, slow or answers garbage is listed
// with the reason and never fails the whole answer.
package fleet

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"sshguard-go/internal/config"
)

// File is hosts.toml.
type File struct {
	Timeout     config.Duration `toml:"timeout"`     // per host and request (default 5s)
	Concurrency int             `toml:"concurrency"` // hosts asked at once (default and most: 32)
	Cache       config.Duration `toml:"cache"`       // how long an answer is reused (default 5s)
	Hosts       []Host          `toml:"host"`

	path string // where it was read
}

// Host is one [[host]] of hosts.toml.
type Host struct {
	Name      string `toml:"name"`
	URL       string `toml:"url"`        // the host's API, e.g. https://web-01:9612
	TokenFile string `toml:"token_file"` // its API token (api.token_file's, or the api.token its daemon made)
	CAFile    string `toml:"ca_file"`    // the CA its TLS certificate is signed by
	CertFile  string `toml:"cert_file"`  // a client certificate, when it asks for one
	KeyFile   string `toml:"key_file"`
}

// Limits of hosts.toml.
const (
	MaxConcurrency = 32
	MaxHosts       = 10000
)

// Load reads and checks hosts.toml; errors name the file, the line and
// the key.
func Load(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	f := &File{Timeout: config.Duration(5 * time.Second), Concurrency: MaxConcurrency, Cache: config.Duration(5 * time.Second), path: path}
	if err := config.Decode(path, data, f); err != nil {
		return nil, err
	}
	var errs []error
	bad := func(i int, key, format string, args ...any) {
		line := hostLine(data, i)
		where := fmt.Sprintf("%s:%d: host[%d]", path, line, i+1)
		if i < 0 {
			where = path
		}
		errs = append(errs, fmt.Errorf("%s: %s: %s", where, key, fmt.Sprintf(format, args...)))
	}
	if f.Timeout <= 0 || time.Duration(f.Timeout) > 5*time.Minute {
		bad(-1, "timeout", "must be in (0, 5m], is %v", time.Duration(f.Timeout))
	}
	if f.Concurrency < 1 || f.Concurrency > MaxConcurrency {
		bad(-1, "concurrency", "must be in [1, %d], is %d", MaxConcurrency, f.Concurrency)
	}
	if f.Cache < 0 || time.Duration(f.Cache) > time.Hour {
		bad(-1, "cache", "must be in [0, 1h], is %v", time.Duration(f.Cache))
	}
	if len(f.Hosts) == 0 {
		bad(-1, "host", "no [[host]] listed")
	}
	if len(f.Hosts) > MaxHosts {
		bad(-1, "host", "%d hosts; at most %d", len(f.Hosts), MaxHosts)
	}
	seen := map[string]int{}
	for i, h := range f.Hosts {
		if !validName(h.Name) {
			bad(i, "name", "%q: want letters, digits, '.', '-' or '_'", h.Name)
		} else if j, dup := seen[h.Name]; dup {
			bad(i, "name", "%q is host[%d]'s name too", h.Name, j+1)
		}
		seen[h.Name] = i
		if u, err := url.Parse(h.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" {
			bad(i, "url", "%q: want http://host:port or https://host:port", h.URL)
		}
		if (h.CertFile == "") != (h.KeyFile == "") {
			bad(i, "cert_file", "cert_file and key_file go together")
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return f, nil
}

// SecretFiles are the files f names that hold the hosts' credentials:
// each host's API token (token_file) and its client certificate's key
// (key_file), each file once (one key is often every host's), named by
// the first host that gives it.
func (f *File) SecretFiles() []config.SecretFile {
	var out []config.SecretFile
	hosts := map[string][]string{} // file -> the hosts that give it
	for _, h := range f.Hosts {
		for _, s := range []config.SecretFile{{Key: "token_file", Path: h.TokenFile}, {Key: "key_file", Path: h.KeyFile}} {
			if s.Path == "" {
				continue
			}
			if len(hosts[s.Path]) == 0 {
				s.Key = fmt.Sprintf("%s: host %s: %s", f.path, h.Name, s.Key)
				out = append(out, s)
			}
			hosts[s.Path] = append(hosts[s.Path], h.Name)
		}
	}
	for i, s := range out {
		names := hosts[s.Path]
		out[i].Gives = "read the bans, logins, events and sessions of host " + names[0]
		if len(names) > 1 {
			out[i].Gives = fmt.Sprintf("read the bans, logins, events and sessions of hosts %s and %d more", names[0], len(names)-1)
		}
	}
	return out
}

// hostLine is the line of the i-th [[host]] in data (0: not found).
func hostLine(data []byte, i int) int {
	n := -1
	for ln, line := range bytes.Split(data, []byte("\n")) {
		if strings.TrimSpace(string(line)) == "[[host]]" {
			if n++; n == i {
				return ln + 1
			}
		}
	}
	return 0
}

// validName reports whether s can be a host's name in hosts.toml and in
// the fleet's URLs.
func validName(s string) bool { return config.ValidName(s, 253, "._") }

// client is how the aggregator reaches one host.
type client struct {
	Host
	base  string // URL without a trailing slash
	token string
	http  *http.Client
}

// newClient reads h's token and certificates.
func newClient(h Host, timeout time.Duration) (*client, error) {
	c := &client{Host: h, base: strings.TrimSuffix(h.URL, "/")}
	if h.TokenFile != "" {
		b, err := os.ReadFile(h.TokenFile)
		if err != nil {
			return nil, fmt.Errorf("host %s: token_file: %w", h.Name, err)
		}
		c.token = strings.TrimSpace(string(b))
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if h.CAFile != "" {
		pem, err := os.ReadFile(h.CAFile)
		if err != nil {
			return nil, fmt.Errorf("host %s: ca_file: %w", h.Name, err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("host %s: ca_file: %s holds no PEM certificate", h.Name, h.CAFile)
		}
	}
	if h.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(h.CertFile, h.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("host %s: cert_file: %w", h.Name, err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	tr := &http.Transport{TLSClientConfig: tc, MaxIdleConnsPerHost: 2, IdleConnTimeout: time.Minute,
		ResponseHeaderTimeout: timeout, TLSHandshakeTimeout: timeout, Proxy: nil}
	c.http = &http.Client{Transport: tr, Timeout: timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return c, nil
}

// ServeSecrets are the files fleet serve is given that hold a secret: its
// own (the flags') and those of the hosts file, hosts (nil: none).
func ServeSecrets(listen config.APIConfig, nats NATS, hosts *File) []config.SecretFile {
	natsUser := "connect to the NATS servers as the fleet view's user"
	out := []config.SecretFile{
		{Key: "--token-file", Path: listen.TokenFile, Gives: "read every host's bans, logins, events and sessions through the fleet view"},
		{Key: "--tls-key", Path: listen.TLSKey, Gives: "pose as the fleet view's server"},
		{Key: "--nats-creds", Path: nats.CredsFile, Gives: natsUser},
		{Key: "--nats-token-file", Path: nats.TokenFile, Gives: natsUser},
	}
	if hosts != nil {
		out = append(out, hosts.SecretFiles()...)
	}
	return out
}
