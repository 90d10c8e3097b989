package share

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"sshguard-go/internal/ban"
)

// Partitioned fleet-wide counting: what a host receives does not grow
// with the fleet.
//
// All-to-all (count.go) has every host hear every other's attempts. When
// the server can pin one client to a consumer (priority groups, NATS 2.11
// and later), the addresses are instead hashed to one of K partitions
// (fleet.fleet_partitions, PartitionOf): each host publishes its
// attempts of partition k on sshguard.fleetcount.<k>.<host>, into a
// memory stream <stream>_COUNT (kept at most the fleet window, 10 minutes
// at most, and 256 MiB); each partition has one durable pull consumer,
// count-<k>, whose priority group "counters" pins one client at a time.
// Each partition has 4 to 8 standbys, hosts sharing their bans that pull
// on it (standBy: a host joins a partition with fewer than 4 pulls
// waiting at the server, and leaves one with more than 8 it is not
// counting); the server delivers a partition's attempts to the pinned
// standby only, and when that host stops asking (its pull requests
// expire every 4 s) for PinnedTTL (10 s) the server pins another.
// Placement and failover are the server's: there is no membership
// protocol of ours, only each host reading the consumer's waiting pulls. The counting host
// applies the same rules as all-to-all (the Counter: a quorum of distinct
// publishing hosts, each counting for at most detection.threshold, the
// widths this host counts by, the per-peer throttle, the horizons), and
// refuses an attempt hashed to another partition. What crosses the
// threshold it bans by its own policy (origin fleetwide) and shares
// through its outbox like any ban of its own: every other host applies it
// through its gate as a peer's ban, never permanent, at most
// ban.max_ban_time, within fleet.min_prefix_v4/_v6, its allowlist
// winning.
//
// The mode is chosen once connected, from the server's version
// (nc.ConnectedServerVersion): older servers (Debian's package is 2.9),
// or a server refusing the memory stream or the consumers, leave
// all-to-all in use; fleet status and the log say which and why.
//
// Failure modes:
//   - The counting host dies mid-window: its partitions stay pinned to it
//     until PinnedTTL passes, then the server pins another standby, which
//     counts from the attempts the stream still holds and not yet
//     delivered. The counts the dead host had in memory are lost: an
//     address halfway to the threshold starts again from what comes next.
//     Local banning is unaffected (each host's own window).
//   - Every standby of a partition dies at once: its attempts wait in the
//     stream (up to its age and size) until other hosts look again (at
//     most 7.5 minutes, 5 on average) and join it.
//   - A host cut off from the servers: its attempts reach no counter (they
//     wait in the client's reconnect buffer, 8 MiB, then are dropped and
//     counted), it counts nothing fleet-wide; its local banning never
//     waits; it applies the fleet's bans once it is back (its durable
//     consumer of bans).
//   - The servers down: nothing is counted fleet-wide until they are back
//     (memory stream: what it held is lost).
//   - The server holding the stream of attempts is lost (one replica, in
//     memory): fleet-wide counting stops until it is back or the daemons
//     restart and make the stream again.
//   - A hostile counting host: the fleet-wide bans it shares are a peer's
//     bans, bounded like any peer's (width, length, allowlist, never
//     permanent); it can withhold bans of its partitions, no more than a
//     host can withhold its own.
//   - The counting host has the address allowlisted or cannot ban it: the
//     gate refuses, and nothing is shared for it.
//   - Several partitions pinned to one host (the server pins whichever
//     request waits first): that host receives those partitions'
//     attempts, at most all of them, never more than all-to-all.
//   - Hosts on servers of different versions in one fleet count in two
//     groups (all-to-all and partitioned) that do not hear each other.

const (
	partPrefix = "sshguard.fleetcount."
	countGroup = "counters"
	// DefaultPartitions and MaxPartitions: fleet.fleet_partitions.
	DefaultPartitions = 16
	MaxPartitions     = 256
	// pinnedTTL is how long a counting host may stop asking before the
	// server pins another; pullExpiry is how often it asks.
	pinnedTTL  = 10 * time.Second
	pullExpiry = 4 * time.Second
	// countMaxAge and countMaxBytes bound the stream of attempts.
	countMaxAge   = 10 * time.Minute
	countMaxBytes = 256 << 20
)

// PartitionOf is the partition of p among k: a hash of its (unmapped,
// masked) address and length. Every host computes the same.
func PartitionOf(p netip.Prefix, k int) int {
	if k <= 1 {
		return 0
	}
	p = ban.Unmap(p).Masked()
	a := p.Addr().As16()
	h := uint32(2166136261) // FNV-1a
	for _, b := range a {
		h = (h ^ uint32(b)) * 16777619
	}
	h = (h ^ uint32(p.Bits())) * 16777619
	h ^= h >> 16 // then mixed, so that its low bits spread
	h *= 0x85ebca6b
	h ^= h >> 13
	h *= 0xc2b2ae35
	h ^= h >> 16
	return int(h % uint32(k))
}

// PartitionsSupported reports whether a server of version v (as
// ConnectedServerVersion gives it) has priority groups with pinned
// clients: NATS 2.11 and later.
func PartitionsSupported(v string) bool {
	v = strings.TrimPrefix(v, "v")
	maj, rest, _ := strings.Cut(v, ".")
	mnr, _, _ := strings.Cut(rest, ".")
	mnr, _, _ = strings.Cut(mnr, "-")
	a, err1 := strconv.Atoi(maj)
	b, err2 := strconv.Atoi(mnr)
	if err1 != nil || err2 != nil {
		return false
	}
	return a > 2 || a == 2 && b >= 11
}

// countStreamName is the stream of attempts beside the stream of bans.
func countStreamName(bans string) string { return bans + "_COUNT" }

// countFleetwideMode runs the fleet-wide counting the server allows:
// partitioned, else all-to-all.
func (s *Sharer) countFleetwideMode(ctx context.Context, nc *nats.Conn, js jetstream.JetStream) {
	c := s.Counter
	v := nc.ConnectedServerVersion()
	why := "fleet.fleet_partitions = 0"
	if PartitionsSupported(v) && !c.cfg.AllToAll {
		err := s.countPartitioned(ctx, nc, js)
		if err == nil || ctx.Err() != nil {
			return
		}
		why = err.Error()
		s.fail("partitioned fleet-wide counting", err)
	} else if !c.cfg.AllToAll {
		why = "server " + v + " has no priority groups (NATS 2.11 or later)"
	}
	c.mu.Lock()
	c.partitioned, c.mode = false, "all-to-all: "+why
	c.mu.Unlock()
	s.log.Info("fleet: fleet-wide counting all-to-all", "why", why)
	s.countFleetwide(ctx, nc)
}

// countPartitioned publishes this host's attempts to their partitions
// every 100 ms, counts the partitions the server pins to this host (when
// it shares its bans), and bans what crosses, until ctx ends. It returns
// an error, at once, when the stream or a consumer cannot be had.
func (s *Sharer) countPartitioned(ctx context.Context, nc *nats.Conn, js jetstream.JetStream) error {
	c := s.Counter
	stream, err := s.ensureCountStream(ctx, js)
	if err != nil {
		return err
	}
	k := c.cfg.Partitions
	if s.cfg.Share { // a counting host shares what it decides
		var cons []jetstream.Consumer
		for i := range k {
			cc, err := countConsumer(ctx, js, stream, i)
			if err != nil {
				return fmt.Errorf("consumer count-%d: %w", i, err)
			}
			cons = append(cons, cc)
		}
		var wg sync.WaitGroup
		defer wg.Wait()
		for i, cc := range cons {
			wg.Go(func() { s.standBy(ctx, i, cc) })
		}
	}
	mode := fmt.Sprintf("partitioned: %d partitions, server %s", k, nc.ConnectedServerVersion())
	if !s.cfg.Share {
		mode += " (fleet.share off: counting none here)"
	}
	c.mu.Lock()
	c.partitioned, c.mode, c.seen, c.subscribed = true, mode, map[int]time.Time{}, true
	c.mu.Unlock()
	s.log.Info("fleet: fleet-wide counting "+mode, "stream", stream)
	tick := time.NewTicker(countEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			c.flushPartitioned(nc)
		case e := <-c.bans:
			s.banFleetwide(ctx, e)
			if len(c.bans) == 0 { // what waits, without waiting for the flush
				c.mu.Lock()
				c.refill()
				c.mu.Unlock()
			}
		}
	}
}

// A partition's standbys. Any host that shares its bans can count any
// partition, but a consumer with a pull waiting from every host of a
// large fleet costs the server a scan of them for each delivery and a
// renewal from each every 4 s (16,000 pulls at 1,000 hosts): there the
// ban fan-out's p99 went from 0.4 s to 1.8-3.4 s and counting stalled.
// So each partition keeps between standbyMin and standbyMax hosts pulling,
// judged by what the server says of its consumer (its waiting pulls): a
// host joins a partition with fewer than standbyMin, and leaves one with
// more than standbyMax unless it counted that partition within the fleet
// window. Each host looks at each partition at random times (CountConfig.
// Pool): soon after it joined, so that a crowd that joined together (a
// fleet started at once) thins out, then every few minutes, so that a
// partition whose standbys died gets new ones. The server still pins one
// of them and moves the pin when it stops asking: no protocol of ours.
const (
	standbyMin = 4
	standbyMax = 8
)

// PoolTimes are when a host looks at a partition's waiting pulls: the
// first time at random within First; after joining, within [Soon, 2 Soon);
// otherwise within [Every/2, 3 Every/2).
type PoolTimes struct {
	First, Soon, Every time.Duration
}

// DefaultPoolTimes are the pool's times unless CountConfig.Pool says.
func DefaultPoolTimes() PoolTimes {
	return PoolTimes{First: 2 * time.Second, Soon: 15 * time.Second, Every: 5 * time.Minute}
}

// standBy keeps this host among partition part's standbys while the pool
// needs it, until ctx ends.
func (s *Sharer) standBy(ctx context.Context, part int, cons jetstream.Consumer) {
	c := s.Counter
	pool := c.cfg.Pool
	if pool == (PoolTimes{}) {
		pool = DefaultPoolTimes()
	}
	var cc jetstream.ConsumeContext
	defer func() {
		if cc != nil {
			cc.Stop()
			c.setPulling(part, false)
		}
	}()
	timer := time.NewTimer(randUpTo(pool.First))
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		next := pool.Every/2 + randUpTo(pool.Every)
		if cc != nil && closed(cc) { // the client gave up (the consumer deleted, made again)
			cc = nil
			c.setPulling(part, false)
		}
		n, err := waitingPulls(ctx, cons)
		switch {
		case err != nil:
			// Soon again: a fleet started at once can overflow the
			// server's queue of requests, and a partition must not wait
			// minutes for its standbys.
			next = pool.Soon + randUpTo(pool.Soon)
			s.log.Debug("fleet: a partition's pulls", "partition", part, "err", err)
		case cc == nil && n < standbyMin:
			cc, err = cons.Consume(func(m jetstream.Msg) { s.countBatch(part, m) },
				jetstream.PullPriorityGroup(countGroup), jetstream.PullExpiry(pullExpiry), jetstream.PullMaxMessages(256),
				jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
					s.log.Debug("fleet: counting partition", "partition", part, "err", err)
				}))
			if err != nil {
				s.log.Warn("fleet: counting partition", "partition", part, "err", err)
				cc = nil
				break
			}
			c.setPulling(part, true)
			next = pool.Soon + randUpTo(pool.Soon)
		case cc != nil && n > standbyMax && !c.countedRecently(part) && rand.Float64() >= float64(standbyMin)/float64(n):
			cc.Stop()
			cc = nil
			c.setPulling(part, false)
		}
		timer.Reset(next)
	}
}

// closed says whether cc has stopped (by itself: a deleted consumer ends
// it for good).
func closed(cc jetstream.ConsumeContext) bool {
	select {
	case <-cc.Closed():
		return true
	default:
		return false
	}
}

// waitingPulls is how many pulls wait on cons, as its server says.
func waitingPulls(ctx context.Context, cons jetstream.Consumer) (int, error) {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	info, err := cons.Info(cctx)
	if err != nil {
		return 0, err
	}
	return info.NumWaiting, nil
}

// randUpTo is a random duration in [0, d).
func randUpTo(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return rand.N(d)
}

// banFleetwide bans what the fleet's count put over a threshold, by this
// host's policy, shared as this host's ban.
func (s *Sharer) banFleetwide(ctx context.Context, e FleetBan) {
	reason := fmt.Sprintf("fleet-wide: %g attempts from %d hosts in %v", e.Attempts, e.Hosts, e.Window)
	if code, err := s.apply.BanHere(ctx, e.Prefix, reason); err != nil && code != "already" {
		s.log.Warn("fleet: fleet-wide ban", "prefix", e.Prefix.String(), "err", err)
	}
}

// countBatch counts a batch of partition part delivered here.
func (s *Sharer) countBatch(part int, m jetstream.Msg) {
	rest, ok := strings.CutPrefix(m.Subject(), partPrefix)
	ps, host, ok2 := strings.Cut(rest, ".")
	if !ok || !ok2 || ps != strconv.Itoa(part) || host == "" || strings.Contains(host, ".") {
		s.count("other", "garbage_attempts", 1)
		return
	}
	c := s.Counter
	if err := c.receiveIn(host, m.Data(), part); err != nil {
		s.count(host, "garbage_attempts", 1)
	}
	c.mu.Lock()
	if c.seen != nil {
		c.seen[part] = c.now()
	}
	c.mu.Unlock()
}

// ensureCountStream makes the stream of attempts when it is missing, and
// checks it (see distrust).
func (s *Sharer) ensureCountStream(ctx context.Context, js jetstream.JetStream) (string, error) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	name := countStreamName(s.cfg.Stream)
	window := countMaxAge
	if s.Counter != nil {
		window = s.Counter.cfg.Window
	}
	want := jetstream.StreamConfig{
		Name: name, Subjects: []string{partPrefix + ">"}, Storage: jetstream.MemoryStorage, Replicas: s.replicaCount(),
		Retention: jetstream.LimitsPolicy, Discard: jetstream.DiscardOld,
		MaxAge: min(max(window, time.Minute), countMaxAge), MaxBytes: countMaxBytes, MaxMsgSize: 1 << 20,
		Description: "sshguard-go: attempts for fleet-wide counting (sshguard.fleetcount.<partition>.<host>)",
	}
	st, err := js.Stream(cctx, name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		st, err = js.CreateStream(cctx, want)
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			st, err = js.Stream(cctx, name) // another host made it meanwhile
		}
	}
	if err != nil {
		return name, err
	}
	return name, distrust(st.CachedInfo().Config, want)
}

// countConsumer is partition part's durable consumer, made when missing:
// one client pinned at a time.
func countConsumer(ctx context.Context, js jetstream.JetStream, stream string, part int) (jetstream.Consumer, error) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	name := "count-" + strconv.Itoa(part)
	filter := partPrefix + strconv.Itoa(part) + ".*"
	c, err := js.Consumer(cctx, stream, name)
	if err == nil {
		// Any host may make a partition's consumer (the first does), so
		// one is taken only as a host makes it: its partition's attempts,
		// each delivered once (an acknowledged one would deliver an
		// attempt again and have it counted twice).
		if have := c.CachedInfo().Config; have.FilterSubject != filter || have.AckPolicy != jetstream.AckNonePolicy {
			return nil, &untrustedError{fmt.Sprintf("consumer %s of stream %s is not as a host makes it (filter %q, ack %s; a host makes %q, ack none): not taken until the NATS administrator deletes it (`nats consumer rm %s %s`; a host makes it again)",
				name, stream, have.FilterSubject, have.AckPolicy, filter, stream, name)}
		}
	}
	if !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return c, err
	}
	c, err = js.CreateConsumer(cctx, stream, jetstream.ConsumerConfig{
		Durable: name, FilterSubject: filter,
		DeliverPolicy: jetstream.DeliverNewPolicy, AckPolicy: jetstream.AckNonePolicy,
		PriorityPolicy: jetstream.PriorityPolicyPinned, PriorityGroups: []string{countGroup}, PinnedTTL: pinnedTTL,
		MaxWaiting:  16384, // a pull request waiting from each host
		Description: "sshguard-go: fleet-wide counting of partition " + strconv.Itoa(part) + ", one host at a time",
	})
	if errors.Is(err, jetstream.ErrConsumerExists) {
		return countConsumer(ctx, js, stream, part) // another host made it meanwhile: checked
	}
	return c, err
}

// flushPartitioned publishes what was counted here since the last flush,
// to each attempt's partition.
func (c *Counter) flushPartitioned(nc *nats.Conn) {
	buf := c.take()
	if len(buf) == 0 {
		return
	}
	parts := make([][]attempt, c.cfg.Partitions)
	for _, a := range buf {
		k := PartitionOf(a.P, c.cfg.Partitions)
		parts[k] = append(parts[k], a)
	}
	for k, as := range parts {
		if len(as) > 0 {
			c.publish(nc, partPrefix+strconv.Itoa(k)+"."+c.cfg.Name, as)
		}
	}
}
