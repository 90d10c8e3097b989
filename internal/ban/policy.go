package ban

import (
	"math"
	"net/netip"
	"slices"
	"time"
)

// Policy decides how long a ban lasts. Zero values mean the defaults.
type Policy struct {
	BanTime    time.Duration // first ban; default 1 hour
	Factor     float64       // each later ban within Remember multiplies it; default 2
	MaxBanTime time.Duration // cap; default 1 week
	Remember   time.Duration // how long earlier bans count; default 30 days
	// PermanentAfter makes the nth ban (counting earlier ones within
	// Remember) permanent; 0 never does.
	PermanentAfter int
}

func (p Policy) withDefaults() Policy {
	if p.BanTime <= 0 {
		p.BanTime = time.Hour
	}
	if p.Factor < 1 {
		p.Factor = 2
	}
	if p.MaxBanTime <= 0 {
		p.MaxBanTime = 7 * 24 * time.Hour
	}
	if p.Remember <= 0 {
		p.Remember = 30 * 24 * time.Hour
	}
	return p
}

// MaxBan is the longest ban p makes (MaxBanTime, or its default).
func (p Policy) MaxBan() time.Duration { return p.withDefaults().MaxBanTime }

// Duration returns the length of a new ban at now for a key banned
// earlier prevBans times, the last at lastBan, and its number (1 for a
// first ban). d is 0 for a permanent ban. Earlier bans older than Remember
// are forgotten.
func (p Policy) Duration(prevBans int, lastBan, now time.Time) (d time.Duration, nth int) {
	p = p.withDefaults()
	if prevBans > 0 && now.Sub(lastBan) > p.Remember {
		prevBans = 0
	}
	nth = prevBans + 1
	if p.PermanentAfter > 0 && nth >= p.PermanentAfter {
		return 0, nth
	}
	f := float64(p.BanTime) * math.Pow(p.Factor, float64(nth-1))
	if f >= float64(p.MaxBanTime) || math.IsInf(f, 0) {
		return p.MaxBanTime, nth
	}
	return time.Duration(f), nth
}

// Allowlist holds the prefixes that are never banned. Loopback is always
// on it.
type Allowlist struct {
	prefixes []netip.Prefix
}

// builtin are never banned: loopback (nor any prefix holding it), and
// the special ranges (no ban inside them): link-local addresses, whose ban
// (fe80::/64 after five failures from a neighbour) cuts neighbour
// discovery and with it the host's IPv6; multicast and the unspecified
// address, which no client connects from.
var builtin = []netip.Prefix{
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("::1/128"),
}

var special = []netip.Prefix{
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("fe80::/10"),
	netip.MustParsePrefix("224.0.0.0/4"),
	netip.MustParsePrefix("ff00::/8"),
	netip.MustParsePrefix("0.0.0.0/32"),
	netip.MustParsePrefix("::/128"),
}

// NewAllowlist returns an allowlist of the built-in entries (loopback,
// link-local, multicast, unspecified) and entries.
func NewAllowlist(entries ...netip.Prefix) *Allowlist {
	a := &Allowlist{prefixes: slices.Clone(builtin)}
	for _, e := range entries {
		a.prefixes = append(a.prefixes, Unmap(e))
	}
	return a
}

// The narrowest prefixes a ban by hand may be without force (wider ones,
// ban 128.0.0.0/1, cut off a good part of the Internet by a typo), and
// an allowlist entry without a warning (wider ones let it in).
const (
	MinManualV4 = 16
	MinManualV6 = 32
)

// MinManual is MinManualV4 or MinManualV6, by p's family.
func MinManual(p netip.Prefix) int {
	if p.Addr().Is4() {
		return MinManualV4
	}
	return MinManualV6
}

// Special returns the ranges no ban may fall inside (link-local,
// multicast, unspecified).
func Special() []netip.Prefix { return slices.Clone(special) }

// Unmap returns p with an IPv4-mapped IPv6 prefix (::ffff:192.0.2.0/120)
// written as the IPv4 prefix it is (192.0.2.0/24), masked; kernel sets,
// the allowlist and the store all speak of IPv4 as IPv4.
func Unmap(p netip.Prefix) netip.Prefix {
	if a := p.Addr(); a.Is4In6() {
		return netip.PrefixFrom(a.Unmap(), max(0, p.Bits()-96)).Masked()
	}
	return p.Masked()
}

// Covers reports whether banning key would ban an allowlisted address:
// key and an entry overlap (an allowlisted /32 inside a /64 ban key, or an
// address inside an allowlisted /24).
func (a *Allowlist) Covers(key netip.Prefix) bool {
	key = Unmap(key)
	for _, p := range special {
		if p.Bits() <= key.Bits() && p.Contains(key.Addr()) {
			return true
		}
	}
	for _, p := range a.prefixes {
		if p.Overlaps(key) {
			return true
		}
	}
	return false
}

// Prefixes returns the entries, loopback first.
func (a *Allowlist) Prefixes() []netip.Prefix { return append([]netip.Prefix(nil), a.prefixes...) }
