// Package config is the daemon's configuration: one TOML file, strict
// (an unknown key is an error naming it), every key optional with its
// default set here and nowhere else. Load reads and validates it; errors
// name the file, the line and the key. Packages receive plain option
// structs built from it by the daemon.
package config

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"sshguard-go/internal/ban"

	"github.com/pelletier/go-toml/v2"
)

// DefaultPath is where the commands look for the configuration.
const DefaultPath = "/etc/sshguard-go/sshguard-go.toml"

// Config is the daemon's configuration file. Every key is optional; the
// zero file is the defaults.
type Config struct {
	Log       LogConfig       `toml:"log"`
	Detection DetectionConfig `toml:"detection"`
	Ban       BanConfig       `toml:"ban"`
	Firewall  FirewallConfig  `toml:"firewall"`
	State     StateConfig     `toml:"state"`
	Alerts    AlertsConfig    `toml:"alerts"`
	Metrics   MetricsConfig   `toml:"metrics"`
	API       APIConfig       `toml:"api"`
	Audit     AuditConfig     `toml:"audit"`
	Fleet     FleetConfig     `toml:"fleet"`

	// Path is the file the configuration was read from; "" when the
	// built-in defaults apply (no file).
	Path string `toml:"-"`
	// data is the file's text, for the lines of the errors and warnings
	// found after Load (Locate); nil without a file, or once flags have
	// changed what it says (Overrides.Apply).
	data []byte
}

type MetricsConfig struct {
	// Listen is the address of the Prometheus /metrics listener, e.g.
	// "127.0.0.1:9611"; "" is off.
	Listen string `toml:"listen"`
}

type LogConfig struct {
	File      string `toml:"file"`       // "" = /var/log/auth.log or /var/log/secure, else journald
	Journal   bool   `toml:"journal"`    // read journald even if a file exists
	FromStart bool   `toml:"from_start"` // first start: read the file from its beginning
	// Wait: a configured file that does not exist yet is waited for
	// (with a warning every minute) instead of stopping the start.
	Wait bool `toml:"wait"`
}

type DetectionConfig struct {
	Threshold     float64  `toml:"threshold"`
	Window        Duration `toml:"window"`
	FailureWeight float64  `toml:"failure_weight"`
	ProbeWeight   float64  `toml:"probe_weight"`
	IPv4Prefix    int      `toml:"ipv4_prefix"`
	IPv6Prefix    int      `toml:"ipv6_prefix"`
	WideV6        int      `toml:"wide_prefix_v6"` // 0: off
	WideV4        int      `toml:"wide_prefix_v4"` // 0: off
	WideThreshold float64  `toml:"wide_threshold"`
	MaxTracked    int      `toml:"max_tracked"`
	// Horizons are longer windows beside Window, each with its own
	// threshold (slow attackers); failures at an account that exists are
	// forgiven by a login from the address.
	Horizons []Horizon `toml:"horizons"`
	// NetworkV4 and NetworkV6 are the networks attempts are also counted
	// per at NetworkHorizons (0: off), from addresses of networks no user
	// logged in from.
	NetworkV4       int       `toml:"network_prefix_v4"`
	NetworkV6       int       `toml:"network_prefix_v6"`
	NetworkHorizons []Horizon `toml:"network_horizons"`
}

// Horizon is a long window and its threshold.
type Horizon struct {
	Window    Duration `toml:"window"`
	Threshold float64  `toml:"threshold"`
}

// maxHorizons bounds each list of horizons.
const maxHorizons = 4

type BanConfig struct {
	BanTime        Duration `toml:"ban_time"`
	Factor         float64  `toml:"factor"`
	MaxBanTime     Duration `toml:"max_ban_time"`
	Remember       Duration `toml:"remember"`
	PermanentAfter int      `toml:"permanent_after"`
	Allow          []string `toml:"allow"` // addresses, prefixes or host names
}

type FirewallConfig struct {
	Backend  string `toml:"backend"` // "nftables" or "none" (log only)
	Table    string `toml:"table"`
	Priority int    `toml:"priority"`
	Forward  bool   `toml:"forward"`
	// CutConnections ends the established connections of a newly banned
	// source (conntrack entries are deleted).
	CutConnections bool `toml:"cut_connections"`
}

type StateConfig struct {
	DB     string `toml:"db"`
	Socket string `toml:"socket"`
	// How long the database keeps what protection no longer needs
	// (offenders are kept for ban.remember).
	History      Duration `toml:"history"`       // ban history
	Logins       Duration `toml:"logins"`        // login records
	Counts       Duration `toml:"counts"`        // hourly counts
	CountsDetail Duration `toml:"counts_detail"` // hourly counts with every address and user (then the top 20)
	Sessions     Duration `toml:"sessions"`      // session records
}

// AuditConfig is where the commands of sessions come from.
type AuditConfig struct {
	// Log is auditd's log: "auto" (/var/log/audit/audit.log when it
	// exists), "" (off), or a path.
	Log string `toml:"log"`
}

// AuditLog is the audit log to follow, "" when none.
func (a AuditConfig) AuditLog() string {
	if a.Log != "auto" {
		return a.Log
	}
	if _, err := os.Stat(DefaultAuditLog); err == nil {
		return DefaultAuditLog
	}
	return ""
}

// DefaultAuditLog is where auditd writes.
const DefaultAuditLog = "/var/log/audit/audit.log"

// Default returns the built-in defaults: the configuration of an empty
// file. Every default is set here.
func Default() *Config {
	return &Config{
		Detection: DetectionConfig{Threshold: 5, Window: Duration(10 * time.Minute), FailureWeight: 1, ProbeWeight: 0.5,
			IPv4Prefix: 32, IPv6Prefix: 64, WideV6: 48, WideThreshold: 20, MaxTracked: 1000000,
			Horizons:  []Horizon{{Duration(24 * time.Hour), 6}, {Duration(7 * 24 * time.Hour), 8}},
			NetworkV4: 24, NetworkV6: 48, NetworkHorizons: []Horizon{{Duration(24 * time.Hour), 20}, {Duration(7 * 24 * time.Hour), 40}}},
		Ban: BanConfig{BanTime: Duration(time.Hour), Factor: 2, MaxBanTime: Duration(7 * 24 * time.Hour),
			Remember: Duration(30 * 24 * time.Hour)},
		Firewall: FirewallConfig{Backend: "nftables", Table: "sshguard-go", Priority: -10},
		State: StateConfig{DB: "/var/lib/sshguard-go/state.db", Socket: "/run/sshguard-go/control.sock",
			History: Duration(90 * 24 * time.Hour), Logins: Duration(365 * 24 * time.Hour), Counts: Duration(400 * 24 * time.Hour),
			CountsDetail: Duration(35 * 24 * time.Hour), Sessions: Duration(365 * 24 * time.Hour)},
		Alerts:  defaultAlerts(),
		Metrics: MetricsConfig{},
		API:     APIConfig{Events: 1000},
		Audit:   AuditConfig{Log: "auto"},
		Fleet:   defaultFleet(),
	}
}

// Load reads path over the defaults and validates the result. A missing
// file is the defaults unless explicit (the user named the file), when it
// is an error. Unknown keys and bad values are errors that name the file,
// the line and the key.
func Load(path string, explicit bool) (*Config, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && !explicit {
		return Default(), nil
	}
	if err != nil {
		return nil, err
	}
	return parse(path, data)
}

// parse reads data, the content of path, over the defaults.
func parse(path string, data []byte) (*Config, error) {
	cfg := Default()
	cfg.Path, cfg.data = path, data
	if err := Decode(path, data, cfg); err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, withLines(path, data, err)
	}
	return cfg, nil
}

// Decode reads the TOML data of path into v, strictly (an unknown key is
// an error), with errors that name the file, the line and the key.
func Decode(path string, data []byte, v any) error {
	dec := toml.NewDecoder(bytes.NewReader(data)).DisallowUnknownFields().EnableUnmarshalerInterface()
	if err := dec.Decode(v); err != nil {
		return configError(path, data, v, err)
	}
	return nil
}

// keyError is a bad value of a configuration key.
type keyError struct {
	key, msg string
	// other is a key compared with, and otherMsg the error said of it:
	// what is reported when the file sets other and not key.
	other, otherMsg string
}

func (e *keyError) Error() string { return e.key + ": " + e.msg }

// KeyErrorf is an error about the value of key ("log.file"), for checks
// made outside this package; Locate puts it at the line that sets key.
func KeyErrorf(key, format string, args ...any) error {
	return &keyError{key: key, msg: fmt.Sprintf(format, args...)}
}

// Locate prefixes each key error of err with the file and the line that
// sets its key, as Load's errors are. err is returned as it is when c
// has no file or flags changed what it says: a line of the file would not
// be where the value came from.
func (c *Config) Locate(err error) error {
	if err == nil || c.data == nil {
		return err
	}
	return withLines(c.Path, c.data, err)
}

// withLines prefixes each key error of err with the file and the line
// that sets the key (or opens its table).
func withLines(path string, data []byte, err error) error {
	var list []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		list = j.Unwrap()
	} else {
		list = []error{err}
	}
	var out []error
	for _, e := range list {
		out = append(out, withLine(path, data, e))
	}
	return errors.Join(out...)
}

// withLine is e prefixed with the file, and the line that sets its key
// when e is a key error and the file sets the key (or opens its table).
func withLine(path string, data []byte, e error) error {
	var ke *keyError
	if errors.As(e, &ke) {
		n := keyLine(data, ke.key)
		if n == 0 && ke.other != "" {
			if m := keyLine(data, ke.other); m > 0 {
				n, e = m, &keyError{key: ke.other, msg: ke.otherMsg}
			}
		}
		if n > 0 {
			return fmt.Errorf("%s:%d: %w", path, n, e)
		}
	}
	return fmt.Errorf("%s: %w", path, e)
}

// keyLine returns the line that sets the dotted key in a TOML file, or
// opens the table of that name, or 0 (the key is at its default).
func keyLine(data []byte, key string) int {
	table := ""
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "[") {
			table = strings.Trim(line, "[] \t")
			if table == key {
				return i + 1
			}
			continue
		}
		k, _, ok := strings.Cut(line, "=")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		full := strings.Trim(strings.TrimSpace(k), `"`)
		if table != "" {
			full = table + "." + full
		}
		if full == key {
			return i + 1
		}
	}
	return 0
}

// AllowPrefixes resolves the allowlist: addresses and prefixes as they
// are, host names to all their addresses (at start and on reload). A name
// that does not resolve is reported and skipped.
func (c *Config) AllowPrefixes(ctx context.Context, warn func(string)) []netip.Prefix {
	var out []netip.Prefix
	for _, a := range c.Ban.Allow {
		if p, err := ParsePrefix(a); err == nil {
			out = append(out, p)
			continue
		}
		ps, err := HostPrefixes(ctx, a)
		if err != nil {
			warn(fmt.Sprintf("ban.allow: %s does not resolve (%v); not allowlisted until the next reload", a, err))
			continue
		}
		out = append(out, ps...)
	}
	return out
}

// HostPrefixes are host's addresses, each as a prefix of its full length:
// an address as it is (IPv4-mapped as IPv4), a name resolved (5 s at
// most).
func HostPrefixes(ctx context.Context, host string) ([]netip.Prefix, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		a = a.Unmap().WithZone("")
		return []netip.Prefix{netip.PrefixFrom(a, a.BitLen())}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, err
	}
	out := make([]netip.Prefix, 0, len(addrs))
	for _, a := range addrs {
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// ParsePrefix accepts an address (as a full-length prefix) or a prefix;
// IPv4-mapped IPv6 addresses and prefixes are written as IPv4.
func ParsePrefix(s string) (netip.Prefix, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		a = a.Unmap().WithZone("")
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return p, fmt.Errorf("%q is not an address or prefix", s)
	}
	if p.Addr().Zone() != "" {
		return p, fmt.Errorf("%q: a prefix has no zone", s)
	}
	return ban.Unmap(p), nil
}

// SecretWarning returns a warning when the file holds secrets and others
// than its owner may read it, else "".
func (c *Config) SecretWarning() string {
	if c.Path == "" || !c.Alerts.hasSecrets() && !c.Fleet.hasSecrets() {
		return ""
	}
	st, err := os.Stat(c.Path)
	if err != nil || st.Mode().Perm()&0o044 == 0 {
		return ""
	}
	return fmt.Sprintf("%s holds secrets and is readable by others (mode %04o): chmod 600 it, or use the *_file keys (systemd LoadCredential=)",
		c.Path, st.Mode().Perm())
}

// Print writes c as TOML, every key with its value, secrets masked.
func (c *Config) Print(w io.Writer) error {
	m := *c
	m.Alerts, m.Fleet = c.Alerts.masked(), c.Fleet.masked()
	return toml.NewEncoder(w).SetIndentTables(false).Encode(m)
}

// Check validates c and builds its alert channels, which reads the secret
// files: what the daemon would do at start, without starting.
func (c *Config) Check() error {
	if err := c.Validate(); err != nil {
		return err
	}
	if _, err := c.Alerts.Channels(); err != nil {
		return fmt.Errorf("alerts: %w", err)
	}
	return nil
}
