package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// maxWeight is the heaviest weight the counter stores (one byte in
// twentieths); maxThreshold the most 255 of them add up to.
const (
	maxWeight    = 12.75
	maxThreshold = 255 * maxWeight
)

// Validate checks values the types cannot.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, &keyError{key: key, msg: fmt.Sprintf(format, args...)})
	}
	c.Detection.validate(bad)
	c.Ban.validate(bad)
	c.Firewall.validate(bad)
	errs = append(errs, c.checkRanges()...)
	c.Alerts.validate(bad)
	c.API.validate(bad)
	c.Fleet.validate(bad)
	if l := c.Metrics.Listen; l != "" {
		if _, port, err := net.SplitHostPort(l); err != nil || port == "" {
			bad("metrics.listen", "%q is not host:port (e.g. 127.0.0.1:9611)", l)
		} else if !validPort(port, true) {
			bad("metrics.listen", "%q: the port must be a number, 0 to %d", l, maxPort)
		}
	}
	return errors.Join(errs...)
}

// maxPort is the largest TCP port.
const maxPort = 65535

// validPort reports whether port is a number, 1 to maxPort, or 0 when
// zero is set (a listener's: any free port).
func validPort(port string, zero bool) bool {
	n, err := strconv.Atoi(port)
	return err == nil && n <= maxPort && (n >= 1 || zero && n == 0) && port[0] != '+'
}

// validURLPort reports whether the URL u names no port, or one of 1 to
// maxPort (url.Parse takes any digits). A URL that does not parse is
// another check's.
func validURLPort(u string) bool {
	p, err := url.Parse(strings.TrimSpace(u))
	return err != nil || p.Port() == "" || validPort(p.Port(), false)
}

// inRange reports whether v is in [lo, hi] ((lo, hi] if loOpen), and says
// otherwise through bad. Written as !(in range) so that NaN, which
// compares false with everything, is out of every range.
func inRange(bad func(key, format string, args ...any), key string, v, lo, hi float64, loOpen bool) bool {
	ok := v <= hi && (v > lo || !loOpen && v == lo)
	if !ok {
		open := "["
		if loOpen {
			open = "("
		}
		bad(key, "must be a number in %s%g, %g], is %g", open, lo, hi, v)
	}
	return ok
}

// lightest is the lightest weight counted: the failure's, or the probe's
// when probes are counted and weigh less.
func (d DetectionConfig) lightest() float64 {
	if d.ProbeWeight > 0 {
		return min(d.FailureWeight, d.ProbeWeight)
	}
	return d.FailureWeight
}

func (d DetectionConfig) validate(bad func(key, format string, args ...any)) {
	fw := inRange(bad, "detection.failure_weight", d.FailureWeight, 0, maxWeight, true) && d.onStep(bad, "detection.failure_weight", d.FailureWeight)
	pw := inRange(bad, "detection.probe_weight", d.ProbeWeight, 0, maxWeight, false) && d.onStep(bad, "detection.probe_weight", d.ProbeWeight)
	// The counter remembers at most 255 attempts per address: a threshold
	// the lightest counted weight cannot reach in 255 would never ban.
	lightest := d.lightest()
	if inRange(bad, "detection.threshold", d.Threshold, 0, maxThreshold, true) && fw && pw && beyond255(d.Threshold, lightest) {
		bad("detection.threshold", "%g needs more than 255 attempts of weight %g (the most the counter remembers per address); raise the weights or lower it", d.Threshold, lightest)
	}
	if d.IPv4Prefix < 8 || d.IPv4Prefix > 32 {
		bad("detection.ipv4_prefix", "must be 8..32, is %d", d.IPv4Prefix)
	}
	if d.IPv6Prefix < 16 || d.IPv6Prefix > 128 {
		bad("detection.ipv6_prefix", "must be 16..128, is %d", d.IPv6Prefix)
	}
	if d.WideV6 != 0 && (d.WideV6 < 16 || d.WideV6 >= d.IPv6Prefix) {
		bad("detection.wide_prefix_v6", "must be 0 (off) or 16 to less than detection.ipv6_prefix (%d), is %d", d.IPv6Prefix, d.WideV6)
	}
	if d.WideV4 != 0 && (d.WideV4 < 8 || d.WideV4 >= d.IPv4Prefix) {
		bad("detection.wide_prefix_v4", "must be 0 (off) or 8 to less than detection.ipv4_prefix (%d), is %d", d.IPv4Prefix, d.WideV4)
	}
	if (d.WideV6 != 0 || d.WideV4 != 0) && inRange(bad, "detection.wide_threshold", d.WideThreshold, 0, maxThreshold, true) && fw && pw &&
		beyond255(d.WideThreshold, lightest) {
		bad("detection.wide_threshold", "%g needs more than 255 attempts of weight %g (the most the counter remembers per prefix)", d.WideThreshold, lightest)
	}
	if d.MaxTracked < 1000 {
		bad("detection.max_tracked", "must be at least 1000, is %d", d.MaxTracked)
	}
	validateHorizons(bad, "detection.horizons", d.Horizons)
	validateHorizons(bad, "detection.network_horizons", d.NetworkHorizons)
	// A network no wider than the clients' key is not counted (the
	// clients are banned by it already).
	if d.NetworkV4 != 0 && (d.NetworkV4 < 8 || d.NetworkV4 > 32) {
		bad("detection.network_prefix_v4", "must be 0 (off) or 8 to 32, is %d", d.NetworkV4)
	}
	if d.NetworkV6 != 0 && (d.NetworkV6 < 16 || d.NetworkV6 > 128) {
		bad("detection.network_prefix_v6", "must be 0 (off) or 16 to 128, is %d", d.NetworkV6)
	}
}

func validateHorizons(bad func(key, format string, args ...any), key string, hs []Horizon) {
	if len(hs) > maxHorizons {
		bad(key, "at most %d, are %d", maxHorizons, len(hs))
	}
	for i, h := range hs {
		if h.Window < Duration(time.Hour) || h.Window > Duration(90*24*time.Hour) {
			bad(key, "[%d]: window must be 1h to 90d, is %s", i, h.Window)
		}
		if !(h.Threshold >= 1 && h.Threshold <= 1000) {
			bad(key, "[%d]: threshold must be a number in [1, 1000], is %g", i, h.Threshold)
		}
	}
}

func (b BanConfig) validate(bad func(key, format string, args ...any)) {
	inRange(bad, "ban.factor", b.Factor, 1, 100, false)
	if b.PermanentAfter < 0 {
		bad("ban.permanent_after", "must be 0 (never) or more")
	}
	for _, a := range b.Allow {
		p, err := ParsePrefix(a)
		switch {
		case err == nil && p.Bits() == 0:
			bad("ban.allow", "%q is every address: nothing would ever be banned", a)
		case err == nil:
		case numericName(a):
			bad("ban.allow", "%q is neither an address nor a host name (a host name never ends in a number): a mistyped address?", a)
		case !validHostname(a):
			bad("ban.allow", "%q is not an address, prefix or host name", a)
		}
	}
}

func (f FirewallConfig) validate(bad func(key, format string, args ...any)) {
	if f.Backend != "nftables" && f.Backend != "none" {
		bad("firewall.backend", "must be \"nftables\" or \"none\", is %q", f.Backend)
	}
	if f.Table == "" {
		bad("firewall.table", "must not be empty")
	}
	if f.Priority < minPriority || f.Priority > maxPriority {
		bad("firewall.priority", "must be in [%d, %d], the span of nftables' named priorities (raw -300, mangle -150, filter 0, srcnat 100), is %d",
			minPriority, maxPriority, f.Priority)
	}
}

// The range of firewall.priority: nftables' named priorities lie within
// (from defrag's -400 to conntrack helper's 300). The kernel takes a
// 32-bit number: a larger one wrapped around to some other priority.
const (
	minPriority = -400
	maxPriority = 400
)
