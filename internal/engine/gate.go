package engine

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"sshguard-go/internal/ban"
	"sshguard-go/internal/store"
)

// The gate: every ban, whatever way it comes in (this host's window, its
// wide prefixes, by hand, from an archive, from a peer of the fleet, from
// the fleet-wide count), passes admit before anything is written, under
// the engine's lock, and its length is decided by length when it is
// committed. Nothing else decides whether a ban may be made.

// Origins of a ban: who made it. A peer's is PeerOrigin(host).
const (
	Detected  = "detected"  // this host's window: a client's key or its wide prefix
	Admin     = "admin"     // by hand: `ban`, the control API
	Archive   = "archive"   // report --ban, from old logs
	Fleetwide = "fleetwide" // the fleet-wide count crossed; banned by this host's policy
	peerTag   = "fleet:"
)

// PeerOrigin is the origin of a ban the fleet's host shared.
func PeerOrigin(host string) string { return peerTag + host }

// IsPeer reports whether origin is a peer's (another host of the fleet).
func IsPeer(origin string) bool { return strings.HasPrefix(origin, peerTag) }

// Fleet stands for every peer's origin (fleet:HOST) where bans are
// counted or selected by origin: a bounded set of labels.
const Fleet = "fleet"

// OriginFilters are the origins bans are selected by (list --origin,
// unban --all --origin), besides a peer's own fleet:HOST.
var OriginFilters = []string{Detected, Admin, Archive, Fleetwide, Fleet}

// OriginGroup is origin as bans are counted: every peer's is Fleet.
func OriginGroup(origin string) string {
	if IsPeer(origin) {
		return Fleet
	}
	return origin
}

// OriginMatches reports whether a ban of origin is selected by filter:
// "" selects all, Fleet every peer's, anything else that origin alone.
func OriginMatches(origin, filter string) bool {
	return filter == "" || origin == filter || filter == Fleet && IsPeer(origin)
}

// ValidOriginFilter reports whether filter selects bans by origin: one of
// OriginFilters, or a peer's fleet:HOST.
func ValidOriginFilter(filter string) bool {
	if IsPeer(filter) {
		return len(filter) > len(peerTag)
	}
	return slices.Contains(OriginFilters, filter)
}

// Refusal codes: why the gate refused a ban (counted per code by the
// fleet's status and the daemon's metrics).
const (
	RefusedInvalid   = "invalid"       // no prefix, or an origin no way in may claim
	RefusedEvery     = "every_address" // /0
	RefusedWide      = "wide"          // wider than this way in allows
	RefusedOwn       = "own_session"   // holds the address of the caller's SSH session
	RefusedAllowlist = "allowlist"     // holds an allowlisted address (loopback always)
	RefusedSpecial   = "special"       // inside link-local, multicast or unspecified
	RefusedInside    = "inside"        // inside a wider ban in force
	RefusedHolds     = "holds"         // holds bans in force the kernel cannot keep beside it
	RefusedAlready   = "already"       // banned already, by a ban this one may not replace
	RefusedExpired   = "expired"       // a peer's ban ending within a second
	RefusedLength    = "length"        // by hand: under 1s, or over max_ban_time without --permanent
	RefusedTwice     = "twice"         // asked twice in one batch
	RefusedLifted    = "lifted"        // lifted (unban, allowlist) before it was written
	RefusedPeerLimit = "peer_limit"    // a peer's, which has fleet.max_peer_bans in force here already
	RefusedShorter   = "shorter"       // by hand: ends sooner than the ban in force, without --force
)

// Refusal is the gate's answer when a ban may not be made.
type Refusal struct {
	Prefix netip.Prefix
	Code   string // one of the Refused* codes
	Why    string // for the administrator
}

func (r *Refusal) Error() string { return "ban " + r.Prefix.String() + ": " + r.Why }

// Unwrap makes errors.Is(r, ErrAllowlisted) hold for the allowlist's
// refusals.
func (r *Refusal) Unwrap() error {
	if r.Code == RefusedAllowlist {
		return ErrAllowlisted
	}
	return nil
}

func refuse(p netip.Prefix, code, format string, args ...any) *Refusal {
	return &Refusal{Prefix: p, Code: code, Why: fmt.Sprintf(format, args...)}
}

// Request is a ban asked for another way than this host's window: by
// hand, from an archive, by a peer, or by the fleet-wide count.
type Request struct {
	Prefix netip.Prefix
	// For is the length asked for by hand or from an archive (at least
	// 1s, at most ban.max_ban_time); 0 or less: by this host's policy.
	For time.Duration
	// Permanent asks for a ban without end: by hand or from an archive
	// only (a peer can never make one).
	Permanent bool
	// Until is when a peer's host said its ban ends (zero: it said
	// nothing, and max_ban_time applies).
	Until  time.Time
	Reason string
	Origin string // Admin, Archive, Fleetwide or PeerOrigin(host)
	// Force allows, by hand and from an archive, a prefix wider than
	// ban.MinManualV4 or ban.MinManualV6, or one holding Self.
	Force bool
	// Self is the address of the caller's own SSH session (SSH_CLIENT),
	// never banned without Force.
	Self netip.Addr
}

// held is a ban in force (or decided and not yet written) as the gate
// sees it.
type held struct {
	expires int64  // Unix nanoseconds; 0: permanent
	start   int64  // Unix nanoseconds
	origin  string // who made it
	seq     uint64 // the newest decision on it
	done    uint64 // the newest decision on it written
	lifted  uint64 // the newest decision on it when it was lifted (earlier ones are not written)
	nth     int32  // the prefix's bans made here so far, this one included (0: a peer's)
}

// active reports whether h is in force at t (Unix nanoseconds).
func (h held) active(t int64) bool { return h.expires == 0 || h.expires > t }

// index is the bans in force (and those decided and still to be
// written), by prefix, with the prefix lengths in use per family, so that
// a wider ban holding an address is found by at most one lookup per
// length in use. g.mu guards it.
type index struct {
	bans map[netip.Prefix]held
	// byOrigin counts the bans of bans by origin (those ended but not
	// yet pruned included): a peer's bound is O(1) to check.
	byOrigin map[string]int
	byLen    [2][129]map[netip.Prefix]struct{} // per family (0: IPv4), per length
	seq      uint64
	// before is what a decision not yet written replaced (a renewal, a
	// ban after one that ended in the log's time): put back if it fails.
	before map[netip.Prefix]held
}

func newIndex() *index {
	return &index{bans: map[netip.Prefix]held{}, byOrigin: map[string]int{}, before: map[netip.Prefix]held{}}
}

// hold makes d the newest decision on p, in force as h says, keeping what
// the index knows of the decisions before it.
func (x *index) hold(p netip.Prefix, h held) {
	if e, ok := x.bans[p]; ok {
		h.done, h.lifted = e.done, e.lifted
		if e.seq == e.done { // the one it replaces was written
			x.before[p] = e
		}
	}
	x.put(p, h)
}

// lift forgets p's ban: every decision on p made so far is not written.
func (x *index) lift(p netip.Prefix) {
	delete(x.before, p)
	if e, ok := x.bans[p]; ok {
		x.put(p, held{expires: 1, seq: e.seq, done: e.done, lifted: x.seq}) // ended long ago: pruned
	}
}

func family(p netip.Prefix) int {
	if p.Addr().Is4() {
		return 0
	}
	return 1
}

func (x *index) put(p netip.Prefix, h held) {
	e, ok := x.bans[p]
	if ok {
		x.uncount(e.origin)
	}
	x.byOrigin[h.origin]++
	if !ok {
		m := &x.byLen[family(p)][p.Bits()]
		if *m == nil {
			*m = map[netip.Prefix]struct{}{}
		}
		(*m)[p] = struct{}{}
	}
	x.bans[p] = h
}

func (x *index) del(p netip.Prefix) {
	e, ok := x.bans[p]
	if !ok {
		return
	}
	x.uncount(e.origin)
	delete(x.bans, p)
	m := x.byLen[family(p)][p.Bits()]
	delete(m, p)
	if len(m) == 0 {
		x.byLen[family(p)][p.Bits()] = nil
	}
}

func (x *index) uncount(origin string) {
	if x.byOrigin[origin] <= 1 {
		delete(x.byOrigin, origin)
	} else {
		x.byOrigin[origin]--
	}
}

// get returns p's ban in force at t.
func (x *index) get(p netip.Prefix, t int64) (held, bool) {
	h, ok := x.bans[p]
	return h, ok && h.active(t)
}

// wider returns a ban in force at t that holds p and is wider than p.
func (x *index) wider(p netip.Prefix, t int64) (netip.Prefix, bool) {
	f := family(p)
	for bits := range p.Bits() {
		if x.byLen[f][bits] == nil {
			continue
		}
		w, _ := p.Addr().Prefix(bits)
		if _, ok := x.get(w, t); ok {
			return w, true
		}
	}
	return netip.Prefix{}, false
}

// narrower returns the bans in force at t inside p, narrower than p, of
// the lengths keep accepts.
func (x *index) narrower(p netip.Prefix, t int64, keep func(bits int) bool) []netip.Prefix {
	var out []netip.Prefix
	f := family(p)
	for bits := p.Bits() + 1; bits <= p.Addr().BitLen(); bits++ {
		if x.byLen[f][bits] == nil || !keep(bits) {
			continue
		}
		for q := range x.byLen[f][bits] {
			if _, ok := x.get(q, t); ok && p.Contains(q.Addr()) {
				out = append(out, q)
			}
		}
	}
	return out
}

// prune forgets the bans that ended before t.
func (x *index) prune(t int64) {
	for p, h := range x.bans {
		if !h.active(t) {
			x.del(p)
		}
	}
}

// widths returns the prefix lengths this host bans by on its own for
// p's family: the client key, and the wide prefix when counted.
func (cfg *Config) widths(p netip.Prefix) (key, wide int) {
	if p.Addr().Is4() {
		return cmpOr(cfg.V4Bits, 32), cfg.WideV4
	}
	return cmpOr(cfg.V6Bits, 64), cfg.WideV6
}

// netBits is the network length counted at the network horizons for p's
// family (-1: none): only a network wider than the clients' key.
func (cfg *Config) netBits(p netip.Prefix) int {
	bits := cfg.NetV6
	if p.Addr().Is4() {
		bits = cfg.NetV4
	}
	if key, _ := cfg.widths(p); bits == 0 || bits >= key || len(cfg.NetHorizons) == 0 {
		return -1
	}
	return bits
}

func cmpOr(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}

// hashed reports whether a ban of p is an element of a hash set (the
// client key's length) rather than of an interval set, where prefixes
// may not overlap.
func (cfg *Config) hashed(p netip.Prefix) bool {
	key, _ := cfg.widths(p)
	return p.Bits() == key
}

// admit decides whether d may be made at its time d.at: its prefix
// normalised first (IPv4-mapped written as IPv4, masked), then the width
// its way in allows, the caller's own session, the allowlist and the
// special ranges, the bans in force, and its length: by hand or by a
// peer within their bounds, else by this host's policy, escalated by the
// prefix's bans before (off, the store's record, and those decided and
// not yet written). When it may, d's prefix is held in the index under a
// new sequence number: a second decision for it is refused as banned
// already while the first is in force (in the log's time), written or
// not. g.mu is held.
func (g *Guard) admit(cfg *Config, d *decision, off store.Offender) *Refusal {
	p := ban.Unmap(d.key)
	d.key = p
	if !p.IsValid() {
		return refuse(p, RefusedInvalid, "no prefix")
	}
	if p.Bits() == 0 {
		return refuse(p, RefusedEvery, "that is every address")
	}
	if r := cfg.width(d); r != nil {
		return r
	}
	if manual(d.origin) && d.self.IsValid() && p.Contains(ban.Unmap(netip.PrefixFrom(d.self, d.self.BitLen())).Addr()) && !d.force {
		return refuse(p, RefusedOwn, "it holds %s, the address of your own SSH session (SSH_CLIENT): you would lock yourself out; --force if you mean it", d.self.Unmap())
	}
	for _, s := range ban.Special() {
		if s.Bits() <= p.Bits() && s.Contains(p.Addr()) {
			return refuse(p, RefusedSpecial, "it is inside %s, which no ban may touch (link-local, multicast or unspecified)", s)
		}
	}
	if g.allow.Covers(p) {
		return refuse(p, RefusedAllowlist, "it holds an address of the allowlist")
	}
	if r := cfg.bound(d, g.now()); r != nil {
		return r
	}
	t := d.at.UnixNano()
	if e, ok := g.idx.get(p, t); ok && !replaces(d, e) {
		return refuse(p, RefusedAlready, "banned already (%s)%s", originText(e.origin), untilText(e))
	}
	if n := g.idx.byOrigin[d.origin]; IsPeer(d.origin) && cfg.PeerMaxBans > 0 && n >= cfg.PeerMaxBans {
		if e, ok := g.idx.bans[p]; !ok || e.origin != d.origin { // its own ban renewed takes no more room
			return refuse(p, RefusedPeerLimit, "%s has %d bans here already (fleet.max_peer_bans)", strings.TrimPrefix(d.origin, peerTag), n)
		}
	}
	if w, ok := g.idx.wider(p, t); ok {
		return refuse(p, RefusedInside, "it is inside the ban of %s already (unban that first to ban %s alone)", w, p)
	}
	if !cfg.hashed(p) {
		// The kernel keeps no overlapping intervals.
		in := g.idx.narrower(p, t, func(bits int) bool { return !cfg.hashed(netip.PrefixFrom(p.Addr(), bits)) })
		if len(in) > 0 {
			return refuse(p, RefusedHolds, "it holds bans in force (%s); unban them first", listText(in))
		}
	}
	var nth int32
	if !IsPeer(d.origin) {
		prev, last := off.Bans, off.LastBan
		if h, ok := g.idx.bans[p]; ok && int(h.nth) > prev {
			prev, last = int(h.nth), time.Unix(0, h.start)
		}
		d.dur, d.permanent = cfg.length(d, prev, last)
		nth = int32(prev + 1)
		if e, ok := g.idx.get(p, t); ok && d.origin == Admin && !d.force && shortens(d, e) {
			return refuse(p, RefusedShorter, "banned already (%s)%s; a ban by hand that ends sooner replaces it only with --force (or unban it first)", originText(e.origin), untilText(e))
		}
	}
	g.idx.seq++
	d.seq, d.nth = g.idx.seq, nth
	h := held{start: d.at.UnixNano(), origin: d.origin, seq: d.seq, nth: nth}
	if !d.permanent {
		h.expires = d.at.Add(d.dur).UnixNano()
	}
	g.idx.hold(p, h)
	return nil
}

// manual reports whether origin is a ban asked for by hand or from an
// archive, whose width and length the administrator chose.
func manual(origin string) bool { return origin == Admin || origin == Archive }

// width checks d's prefix length against what its way in allows.
func (cfg *Config) width(d *decision) *Refusal {
	p := d.key
	switch o := d.origin; {
	case o == Detected, o == Fleetwide:
		// Only the lengths this host counts by.
		if key, wide := cfg.widths(p); p.Bits() != key && p.Bits() != wide && p.Bits() != cfg.netBits(p) {
			return refuse(p, RefusedWide, "/%d is not a length this host bans by on its own (/%d%s)", p.Bits(), key, wideText(wide))
		}
	case IsPeer(o):
		if min := cmpOr(cfg.PeerMinV4, 24); p.Addr().Is4() && p.Bits() < min {
			return refuse(p, RefusedWide, "wider than fleet.min_prefix_v4 (/%d)", min)
		}
		if min := cmpOr(cfg.PeerMinV6, 48); p.Addr().Is6() && p.Bits() < min {
			return refuse(p, RefusedWide, "wider than fleet.min_prefix_v6 (/%d)", min)
		}
	case manual(o):
		if min := ban.MinManual(p); p.Bits() < min && !d.force {
			return refuse(p, RefusedWide, "wider than /%d; give --force if you mean it", min)
		}
	default:
		return refuse(p, RefusedInvalid, "origin %q is no way in", o)
	}
	return nil
}

// bound checks, and sets, the length d's way in gives it where it does
// not come from this host's policy: a peer's by the end its host gave,
// never without one nor past max_ban_time; by hand, at least 1s and at
// most max_ban_time unless permanent.
func (cfg *Config) bound(d *decision, now time.Time) *Refusal {
	p, max := d.key, cfg.Policy.MaxBan()
	switch {
	case IsPeer(d.origin):
		d.permanent, d.dur = false, max
		if !d.until.IsZero() {
			left := d.until.Sub(now)
			if left < time.Second {
				return refuse(p, RefusedExpired, "it ends within a second")
			}
			d.dur = min(left, max)
		}
	case manual(d.origin) && !d.permanent && d.dur > 0:
		if d.dur < time.Second {
			return refuse(p, RefusedLength, "for %v: a ban lasts at least 1s (--permanent for one without end)", d.dur)
		}
		if d.dur > max {
			return refuse(p, RefusedLength, "for %v: longer than ban.max_ban_time (%v); --permanent for a ban without end", d.dur, max)
		}
	case manual(d.origin) && d.permanent:
	default:
		d.permanent, d.dur = false, -1 // by policy, at commit
	}
	return nil
}

// replaces reports whether d may replace e, the ban of the same prefix
// in force: by hand, always (a renewal, or taking a peer's over); a peer,
// only its own ban, and only to make it end later; nothing else (a
// detected ban is not made again while one is in force, and no ban of
// another origin shortens, replaces or takes over a ban made here).
func replaces(d *decision, e held) bool {
	switch {
	case d.origin == Admin:
		return true
	case IsPeer(d.origin):
		// Later by more than a second: the same message delivered again
		// (its ban's end is kept to the millisecond of its start) is no
		// renewal.
		return e.origin == d.origin && e.expires != 0 && d.until.UnixNano() > e.expires+int64(time.Second)
	}
	return false
}

// shortens reports whether d, its length known, would end before e.
func shortens(d *decision, e held) bool {
	switch {
	case d.permanent:
		return false
	case e.expires == 0:
		return true
	}
	return d.at.Add(d.dur).UnixNano() < e.expires
}

// length is how long d's ban lasts: as its way in gave it, or when that
// left it to this host's policy, for a prefix banned prevBans times
// before, the last at lastBan: never under 1s (the kernel keeps
// milliseconds, and a timeout that rounds to 0 would be an element
// without end), never over max_ban_time, permanent only when the policy
// says so (permanent_after).
func (cfg *Config) length(d *decision, prevBans int, lastBan time.Time) (time.Duration, bool) {
	if d.dur >= 0 || d.permanent {
		return d.dur, d.permanent
	}
	dur, _ := cfg.Policy.Duration(prevBans, lastBan, d.at)
	if dur == 0 {
		return 0, true
	}
	return min(max(dur, time.Second), cfg.Policy.MaxBan()), false
}

func originText(o string) string {
	switch {
	case o == "":
		return "found in the kernel set"
	case IsPeer(o):
		return "shared by " + strings.TrimPrefix(o, peerTag)
	}
	return o
}

func untilText(h held) string {
	if h.expires == 0 {
		return ", permanent"
	}
	return ", until " + time.Unix(0, h.expires).UTC().Format(time.RFC3339)
}

func wideText(wide int) string {
	if wide == 0 {
		return ""
	}
	return fmt.Sprintf(" or /%d wide", wide)
}

func listText(ps []netip.Prefix) string {
	var s []string
	for i, p := range ps {
		if i == 5 {
			s = append(s, fmt.Sprintf("and %d more", len(ps)-5))
			break
		}
		s = append(s, p.String())
	}
	return strings.Join(s, ", ")
}
