package share

import (
	"encoding/json"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"sshguard-go/internal/ban"
)

// Fleet-wide counting: every host publishes the attempts it counts,
// batched every 100 ms, on sshguard.attempts.<host> (plain NATS: a count
// is worth nothing later), and keeps a second window per address over the
// whole fleet. So that no one member steers it, an address is banned
// fleet-wide only when its attempts reach the fleet threshold AND come
// from at least Quorum hosts (this one among them), each host's attempts
// counting for at most HostCap (the detection threshold: a host that saw
// more has banned on its own); a reported prefix must be of a length
// this host counts by; and a peer that sends more than a host can (the
// publisher's own bound, 50,000 a second) is throttled and counted. The
// ban then passes the engine's gate like every other.

const (
	attemptsPrefix = "sshguard.attempts."
	countEvery     = 100 * time.Millisecond
	// maxBatch bounds the attempts one host publishes per 100 ms: a wave
	// of 100,000 addresses on one host reaches the others as at most
	// 50,000 a second (the rest dropped and counted), not all at once.
	maxBatch = 5000
	// peerRate is the most attempts a second one peer's are taken: what
	// an honest publisher sends at most.
	peerRate = maxBatch * float64(time.Second/countEvery)
	// maxSlots is how many hosts are kept per address, and so the
	// largest quorum.
	MaxQuorum = 4
	maxSlots  = MaxQuorum
	// maxPeers bounds the peers counted (a flood of host names).
	maxPeers = 10000
	// maxOverflow bounds the decisions kept while the banner is behind
	// (a wave crossing the threshold at once).
	maxOverflow = 1 << 16
)

// attempt is one counted attempt on the wire: address (or prefix),
// weight, Unix milliseconds.
type attempt struct {
	P netip.Prefix `json:"p"`
	W float64      `json:"w"`
	T int64        `json:"t"`
}

// CountConfig is the fleet-wide window.
type CountConfig struct {
	Name      string        // this host
	Threshold float64       // fleet.fleet_threshold
	Window    time.Duration // fleet.fleet_window
	Quorum    int           // fleet.fleet_quorum: distinct hosts (1..MaxQuorum; 0: 2)
	// HostCap is the most one host's attempts on an address count for
	// (detection.threshold).
	HostCap float64
	// Widths are the prefix lengths this host counts by (its client keys
	// and wide prefixes, per family); a reported prefix of another length
	// is refused.
	V4Bits, V6Bits, WideV4, WideV6 int
	MaxTracked                     int // addresses kept at once
	// Horizons are longer fleet windows (at most MaxFleetHorizons), each
	// with the fleet's threshold and the most one host's attempts count for
	// there (its own horizon's threshold): a slow attacker spread over
	// hosts and days.
	Horizons []FleetHorizon
	// Partitions is how many parts the addresses are hashed to when the
	// servers can pin one counting host per part (partition.go); 0: 16.
	Partitions int
	// AllToAll keeps every host hearing every other's attempts whatever
	// the servers can do (the comparison in the benchmarks).
	AllToAll bool
	// Pool is when this host looks at the partitions' standbys
	// (partition.go); zero: DefaultPoolTimes.
	Pool PoolTimes
}

// FleetHorizon is a long fleet window.
type FleetHorizon struct {
	Window    time.Duration
	Threshold float64 // the fleet's
	HostCap   float64 // one host's at most
}

// MaxFleetHorizons bounds the fleet's horizons.
const MaxFleetHorizons = 2

// window is one of the Counter's windows: the short one, then the
// horizons.
type window struct {
	length    int64 // seconds
	threshold float64
	hostCap   float64
	name      time.Duration
}

// Counter is the fleet-wide window. It is safe for concurrent use.
type Counter struct {
	cfg     CountConfig
	windows []window
	bans    chan FleetBan // prefixes that reached the threshold, for the banner
	now     func() time.Time

	mu      sync.Mutex
	cur     map[countKey]*slots // the addresses counted, two generations:
	old     map[countKey]*slots // the older is dropped whole when the newer fills
	gen     uint64              // how many times it was
	peers   map[string]*peer
	buf     []attempt
	dropped int64 // attempts not published (batches full)
	remote  int64 // attempts taken from the others
	sent    int64
	bytes   int64 // published
	// subscribed is set once the others' attempts are subscribed to.
	subscribed bool
	// partitioned is set when the attempts go to the partitions' counting
	// hosts (partition.go): this host's own then count where they are
	// received, not here too. mode is what fleet status shows.
	partitioned bool
	mode        string
	seen        map[int]time.Time // partition -> its last batch counted here
	pulling     map[int]bool      // the partitions this host stands by for
	// over are the decisions the banner had no room for yet, handed to it
	// at each flush; lost those past maxOverflow.
	over []FleetBan
	lost int64
}

// FleetBan is a prefix the fleet's attempts put over the threshold.
type FleetBan struct {
	Prefix   netip.Prefix
	Attempts float64
	Hosts    int
	Window   time.Duration // the window that decided it
}

// countKey is a prefix as a map key without a pointer.
type countKey struct {
	a    [16]byte
	bits uint8
}

// slots are the hosts that reported attempts on one address: per host and
// window, a sliding window estimated from two buckets of the window's
// length (the current one and the one before, weighed by how much of it
// the window still covers).
type slots [maxSlots]slot

type slot struct {
	host uint32 // 0: empty; a peer's id (1 is this host)
	w    [1 + MaxFleetHorizons]sliding
}

type sliding struct {
	bucket    uint32 // the current bucket's number (seconds / window)
	cur, prev float32
}

// peer is what a peer sent: its id and its bucket of tokens.
type peer struct {
	id        uint32
	tokens    float64
	at        time.Time
	throttled int64
	refused   int64 // attempts of a length this host does not count by, or garbage
	// made are the addresses its attempts added to the generation gen;
	// crowded its attempts on new addresses past its share (peerShare).
	made, gen uint64
	crowded   int64
}

// peerShare is how much of a generation of tracked addresses one peer's
// attempts may add: one peer flooding new addresses (within its rate)
// cannot turn the generations over and drop the counts the others made.
const peerShare = 4 // a quarter

// NewCounter returns the fleet-wide window of cfg.
func NewCounter(cfg CountConfig) *Counter {
	if cfg.Quorum <= 0 {
		cfg.Quorum = 2
	}
	cfg.Quorum = min(cfg.Quorum, MaxQuorum)
	if cfg.HostCap <= 0 {
		cfg.HostCap = 5
	}
	if cfg.Partitions <= 0 {
		cfg.Partitions = DefaultPartitions
	}
	cfg.Partitions = min(cfg.Partitions, MaxPartitions)
	if cfg.MaxTracked <= 0 {
		cfg.MaxTracked = 1000000
	}
	ws := []window{{length: max(int64(cfg.Window/time.Second), 1), threshold: cfg.Threshold, hostCap: cfg.HostCap, name: cfg.Window}}
	for _, h := range cfg.Horizons[:min(len(cfg.Horizons), MaxFleetHorizons)] {
		ws = append(ws, window{length: max(int64(h.Window/time.Second), 1), threshold: h.Threshold, hostCap: h.HostCap, name: h.Window})
	}
	return &Counter{cfg: cfg, windows: ws, bans: make(chan FleetBan, 1024), now: time.Now,
		cur: map[countKey]*slots{}, old: map[countKey]*slots{}, peers: map[string]*peer{}}
}

func keyOf(p netip.Prefix) countKey { return countKey{p.Addr().As16(), uint8(p.Bits())} }

// Local counts an attempt this host counted (the engine's OnAttempt): in
// the fleet window, and for the others.
func (c *Counter) Local(p netip.Prefix, at time.Time, w float64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.buf) < maxBatch {
		c.buf = append(c.buf, attempt{P: p, W: w, T: at.UnixMilli()})
	} else {
		c.dropped++
	}
	if !c.partitioned {
		c.add(1, p, at, w)
	}
}

// allowed reports whether p is of a length this host counts by.
func (c *Counter) allowed(p netip.Prefix) bool {
	if p.Addr().Is4() {
		return p.Bits() == cmpOr(c.cfg.V4Bits, 32) || p.Bits() == c.cfg.WideV4
	}
	return p.Bits() == cmpOr(c.cfg.V6Bits, 64) || p.Bits() == c.cfg.WideV6
}

func cmpOr(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}

// entry returns p's slots, making them when make is set. c.mu is held.
func (c *Counter) entry(k countKey, make bool) *slots {
	if s := c.cur[k]; s != nil {
		return s
	}
	s := c.old[k]
	if s == nil && !make {
		return nil
	}
	if s != nil {
		delete(c.old, k)
	} else {
		s = &slots{}
	}
	if len(c.cur) >= max(c.cfg.MaxTracked/2, 1) {
		c.old, c.cur = c.cur, map[countKey]*slots{}
		c.gen++
	}
	c.cur[k] = s
	return s
}

// add counts an attempt of host on p at at, and hands the prefix to the
// banner when the fleet's count reaches the threshold from a quorum of
// hosts. c.mu is held.
func (c *Counter) add(host uint32, p netip.Prefix, at time.Time, w float64) {
	k := keyOf(p)
	s := c.entry(k, true)
	sec := at.Unix()
	i := s.find(host)
	sl := &s[i]
	if sl.host != host {
		*sl = slot{host: host}
	}
	for j, win := range c.windows {
		sl.w[j].add(sec, win.length, w)
	}
	for j, win := range c.windows {
		sum, hosts := 0.0, 0
		for h := range s {
			if s[h].host == 0 {
				continue
			}
			if e := s[h].w[j].estimate(sec, win.length); e > 0 {
				sum += min(e, win.hostCap)
				hosts++
			}
		}
		if sum >= win.threshold && hosts >= c.cfg.Quorum {
			*s = slots{}
			e := FleetBan{Prefix: p, Attempts: math.Round(sum*100) / 100, Hosts: hosts, Window: win.name}
			select {
			case c.bans <- e:
			default: // the banner is behind: kept until the next flush
				if len(c.over) < maxOverflow {
					c.over = append(c.over, e)
				} else {
					c.lost++
				}
			}
			return
		}
	}
}

// add counts w at second sec in a window of length seconds.
func (sw *sliding) add(sec, length int64, w float64) {
	b := uint32(sec / length)
	switch {
	case sw.cur == 0 && sw.prev == 0: // empty
		sw.bucket = b
	case b == sw.bucket:
	case b == sw.bucket+1:
		sw.bucket, sw.prev, sw.cur = b, sw.cur, 0
	case b > sw.bucket:
		sw.bucket, sw.prev, sw.cur = b, 0, 0
	case b+1 == sw.bucket: // a late attempt, of the bucket before
		sw.prev += float32(w)
		return
	default:
		return // older than the window
	}
	sw.cur += float32(w)
}

// find returns the slot of host, else an empty one, else the one whose
// host counts least in the short window.
func (s *slots) find(host uint32) int {
	free, least := -1, 0
	for i := range s {
		switch {
		case s[i].host == host:
			return i
		case s[i].host == 0 && free < 0:
			free = i
		case s[i].w[0].cur+s[i].w[0].prev < s[least].w[0].cur+s[least].w[0].prev:
			least = i
		}
	}
	if free >= 0 {
		return free
	}
	return least
}

// estimate is the attempts within the window of length seconds ending at
// second sec.
func (sw *sliding) estimate(sec, length int64) float64 {
	b := uint32(sec / length)
	frac := float64(sec%length) / float64(length) // how far into the current bucket
	switch {
	case sw.bucket == b:
		return float64(sw.cur) + float64(sw.prev)*(1-frac)
	case sw.bucket+1 == b:
		return float64(sw.cur) * (1 - frac)
	}
	return 0
}

// receive takes a batch the peer host published.
func (c *Counter) receive(host string, data []byte) error { return c.receiveIn(host, data, -1) }

// receiveIn takes a batch the peer host published for partition part
// (partition.go; -1: all-to-all), refusing an attempt of another.
func (c *Counter) receiveIn(host string, data []byte, part int) error {
	var batch []attempt
	if err := json.Unmarshal(data, &batch); err != nil {
		return err
	}
	if len(batch) > maxBatch {
		return fmt.Errorf("%d attempts in one batch, at most %d", len(batch), maxBatch)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	pr := c.peer(host)
	if pr == nil {
		return fmt.Errorf("more than %d peers", maxPeers)
	}
	now := c.now()
	pr.tokens = min(pr.tokens+now.Sub(pr.at).Seconds()*peerRate, peerRate)
	pr.at = now
	for _, a := range batch {
		if pr.tokens < 1 {
			pr.throttled++
			continue
		}
		pr.tokens--
		at := time.UnixMilli(a.T)
		p := ban.Unmap(a.P)
		if !p.IsValid() || !c.allowed(p) || part >= 0 && PartitionOf(p, c.cfg.Partitions) != part || !(a.W > 0 && a.W <= 12.75) || at.After(now.Add(time.Minute)) || at.Before(now.Add(-c.cfg.Window)) {
			pr.refused++ // a forged weight or width, a NaN, a time out of the window
			continue
		}
		if k := keyOf(p); c.cur[k] == nil && c.old[k] == nil {
			if pr.gen != c.gen {
				pr.gen, pr.made = c.gen, 0
			}
			if pr.made >= uint64(max(c.cfg.MaxTracked/2/peerShare, 1)) {
				pr.crowded++
				continue
			}
			pr.made++
		}
		c.remote++
		c.add(pr.id, p, at, a.W)
	}
	return nil
}

// peer returns host's record, made at its first batch (nil past
// maxPeers). c.mu is held.
func (c *Counter) peer(host string) *peer {
	pr := c.peers[host]
	if pr == nil {
		if len(c.peers) >= maxPeers {
			return nil
		}
		pr = &peer{id: uint32(len(c.peers)) + 2, tokens: peerRate, at: c.now()}
		c.peers[host] = pr
	}
	return pr
}

// refill hands the banner the decisions it had no room for. c.mu is
// held.
func (c *Counter) refill() {
	for len(c.over) > 0 {
		select {
		case c.bans <- c.over[0]:
			c.over = c.over[1:]
		default:
			return
		}
	}
	c.over = nil
}

// flush publishes what was counted here since the last flush.
func (c *Counter) flush(nc *nats.Conn) {
	if buf := c.take(); len(buf) > 0 {
		c.publish(nc, attemptsPrefix+c.cfg.Name, buf)
	}
}

// take hands over what was counted here since the last flush.
func (c *Counter) take() []attempt {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.refill()
	buf := c.buf
	c.buf = nil
	return buf
}

// publish sends as on subject, counting it sent or, when NATS refuses
// it, dropped.
func (c *Counter) publish(nc *nats.Conn, subject string, as []attempt) {
	data, _ := json.Marshal(as)
	err := nc.Publish(subject, data)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.dropped += int64(len(as))
		return
	}
	c.sent += int64(len(as))
	c.bytes += int64(len(data))
}

// CountStatus is what the fleet-wide counting did.
type CountStatus struct {
	Sent     int64 `json:"sent"`
	Bytes    int64 `json:"bytes"`
	Dropped  int64 `json:"dropped"`
	Received int64 `json:"received"`
	Tracked  int   `json:"tracked"`
	Quorum   int   `json:"quorum"`
	// Throttled and Refused are the attempts not taken, per peer: over
	// the rate a host can send, or of a width, weight or time refused.
	Throttled map[string]int64 `json:"throttled,omitempty"`
	Refused   map[string]int64 `json:"refused,omitempty"`
	// Crowded are the attempts per peer on addresses not tracked yet, past
	// its share of the addresses tracked (a quarter of a generation):
	// not taken.
	Crowded map[string]int64 `json:"crowded,omitempty"`
	// Listening is set once the others' attempts are subscribed to.
	Listening bool `json:"listening"`
	// Mode is "partitioned" or "all-to-all", with why; Partitions the
	// parts, and Counting those whose attempts this host counted in the
	// last minute (partitioned).
	Mode       string `json:"mode,omitempty"`
	Partitions int    `json:"partitions,omitempty"`
	Counting   []int  `json:"counting,omitempty"`
	// Standby are the partitions this host pulls on (partitioned): the
	// server pins one of each partition's standbys.
	Standby []int `json:"standby,omitempty"`
	// Waiting are the decisions not yet handed to the banner; Lost those
	// past the bound.
	Waiting int   `json:"waiting,omitempty"`
	Lost    int64 `json:"lost,omitempty"`
}

// setPulling records whether this host stands by for partition part.
func (c *Counter) setPulling(part int, on bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pulling == nil {
		c.pulling = map[int]bool{}
	}
	if on {
		c.pulling[part] = true
	} else {
		delete(c.pulling, part)
	}
}

// countedRecently says whether this host counted partition part within
// the fleet's longest window (its horizons included): leaving it would
// drop what it counts.
func (c *Counter) countedRecently(part int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	at, ok := c.seen[part]
	longest := max(c.cfg.Window, time.Minute)
	for _, h := range c.cfg.Horizons {
		longest = max(longest, h.Window)
	}
	return ok && c.now().Sub(at) < longest
}

// Status reports the counter's figures.
func (c *Counter) Status() CountStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := CountStatus{Sent: c.sent, Bytes: c.bytes, Dropped: c.dropped, Received: c.remote, Tracked: len(c.cur) + len(c.old),
		Quorum: c.cfg.Quorum, Listening: c.subscribed, Mode: c.mode, Waiting: len(c.over), Lost: c.lost}
	if c.partitioned {
		st.Partitions = c.cfg.Partitions
		now := c.now()
		for k, at := range c.seen {
			if now.Sub(at) < time.Minute {
				st.Counting = append(st.Counting, k)
			}
		}
		slices.Sort(st.Counting)
		for k := range c.pulling {
			st.Standby = append(st.Standby, k)
		}
		slices.Sort(st.Standby)
	}
	for h, p := range c.peers {
		if p.throttled > 0 {
			if st.Throttled == nil {
				st.Throttled = map[string]int64{}
			}
			st.Throttled[h] = p.throttled
		}
		if p.refused > 0 {
			if st.Refused == nil {
				st.Refused = map[string]int64{}
			}
			st.Refused[h] = p.refused
		}
		if p.crowded > 0 {
			if st.Crowded == nil {
				st.Crowded = map[string]int64{}
			}
			st.Crowded[h] = p.crowded
		}
	}
	return st
}
