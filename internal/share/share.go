// Package share is the fleet's ban sharing over NATS JetStream: each
// host publishes its bans from a share outbox and applies the others'
// through the engine's gate; fleet-wide counting (count.go); and each
// host's summary put in a key-value bucket for the fleet view.
package share

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"sshguard-go/internal/store"
)

// Shared bans: each host publishes its bans and unbans on
// sshguard.bans.<host> in a JetStream stream, from a share outbox written
// in the ban's own transaction (store.DB.RecordBans), in order, with
// the outbox id as Nats-Msg-Id (a repeat after an outage is dropped by the
// server). Each host reads the others' through a durable consumer of its
// own and enforces them with their remaining time, origin fleet:<host>,
// never sharing them again; its allowlist and its limits on width win.

// subjectPrefix is the subjects' common part; the last token is the host.
const subjectPrefix = "sshguard.bans."

// Message is one ban or unban on the wire.
type Message struct {
	V        int          `json:"v"`
	Kind     string       `json:"kind"` // "ban" or "unban"
	Prefix   netip.Prefix `json:"prefix"`
	Start    time.Time    `json:"start,omitzero"`
	Expires  time.Time    `json:"expires,omitzero"` // zero: permanent
	Reason   string       `json:"reason,omitempty"`
	Attempts float64      `json:"attempts,omitempty"`
	Origin   string       `json:"origin,omitempty"` // detected, admin, archive
}

// decodeMessage reads a peer's ban or unban; false for anything else.
func decodeMessage(data []byte) (Message, bool) {
	var msg Message
	if err := json.Unmarshal(data, &msg); err != nil || !msg.Prefix.IsValid() || msg.V != 1 {
		return Message{}, false
	}
	return msg, true
}

// BanMessage is what the fleet hears of b.
func BanMessage(b *store.Ban) []byte {
	m, _ := json.Marshal(Message{V: 1, Kind: "ban", Prefix: b.Prefix, Start: b.Start, Expires: b.Expires, Reason: b.Reason, Attempts: b.Attempts, Origin: b.Origin})
	return m
}

// UnbanMessage is what the fleet hears of the lifting of p's ban.
func UnbanMessage(p netip.Prefix) []byte {
	m, _ := json.Marshal(Message{V: 1, Kind: "unban", Prefix: p, Start: time.Now()})
	return m
}

// Remote is a ban another host shared, to pass through this host's gate.
type Remote struct {
	Prefix netip.Prefix
	Until  time.Time // when its host said it ends; zero: it said nothing
	Reason string
	Host   string // the host that shared it
}

// Applier enforces what the others share: the daemon's engine, whose gate
// decides (the allowlist, the widths, the bans in force, the lengths).
type Applier interface {
	// BanRemote passes the bans through the gate and makes those it
	// admits; it returns each one's refusal code ("" : made) and error.
	BanRemote(ctx context.Context, bans []Remote) (codes []string, errs []error)
	// UnbanRemote lifts p's ban if host made it; kept is true when the
	// ban in force is not host's (made here, by another, or none).
	UnbanRemote(ctx context.Context, p netip.Prefix, host string) (kept bool, err error)
	// BanHere bans p by this host's policy for reason (the fleet-wide
	// count crossed), shared as this host's; code is the gate's refusal.
	BanHere(ctx context.Context, p netip.Prefix, reason string) (code string, err error)
}

// ShareConfig is how a Sharer reaches the fleet.
type ShareConfig struct {
	URLs         []string
	Name         string // this host: its subject token and its consumer
	Stream       string
	Replicas     int // servers keeping the stream and the bucket (0: 1)
	Share, Apply bool
	MaxAge       time.Duration // how long the stream keeps a ban (the longest ban)
	Options      []nats.Option // credentials and TLS
	Instance     string        // this database's id: the Nats-Msg-Id prefix
	// SummaryEvery is how often PublishSummaries puts this host's summary
	// in the bucket (0: DefaultSummaryEvery).
	SummaryEvery time.Duration
}

// Counts are what a Sharer did, per origin host for what it received.
type Counts struct {
	Published int64                       `json:"published"`
	Received  map[string]map[string]int64 `json:"received"` // host -> applied, refused_<code>, expired, already, unbanned, kept, garbage, failed
}

// Sharer publishes and applies shared bans. It is safe for concurrent use.
type Sharer struct {
	cfg   ShareConfig
	db    *store.DB
	apply Applier
	log   *slog.Logger
	wake  chan struct{}
	now   func() time.Time
	// ready is closed once Run has its JetStream context (s.js).
	ready chan struct{}

	// Counter, when set, is the fleet-wide window (count_fleetwide).
	Counter *Counter

	mu        sync.Mutex
	nc        *nats.Conn
	js        jetstream.JetStream
	counts    Counts
	lag       uint64
	lastError string
	replicas  map[string]string // "stream", "bucket": why it has not fleet.replicas
	server    string            // the server connected to (redacted); "": none
	cluster   *StreamCluster    // what the server last said of the stream (watchCluster)
}

// NewSharer returns a Sharer; Run connects it.
func NewSharer(cfg ShareConfig, db *store.DB, apply Applier, log *slog.Logger) *Sharer {
	return &Sharer{cfg: cfg, db: db, apply: apply, log: log, wake: make(chan struct{}, 1), now: time.Now, ready: make(chan struct{}),
		counts: Counts{Received: map[string]map[string]int64{}}}
}

// Wake tells the publisher that the share outbox has something new.
func (s *Sharer) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Status is the Sharer's state for `fleet status`.
type Status struct {
	Name     string `json:"name"`
	Server   string `json:"server"` // the server connected to, "" when not
	Stream   string `json:"stream"`
	Replicas int    `json:"replicas"` // fleet.replicas
	// ReplicasProblem says why the stream or the bucket has not that
	// many (the server refused the change).
	ReplicasProblem string         `json:"replicas_problem,omitempty"`
	Cluster         *StreamCluster `json:"cluster,omitempty"` // what the server reports of the stream
	Pending         int            `json:"pending"`           // bans of this host not yet published
	Lag             uint64         `json:"lag"`               // others' bans not yet applied here
	LastError       string         `json:"last_error,omitempty"`
	Counts
	Fleetwide *CountStatus `json:"fleetwide,omitempty"` // fleet-wide counting, when on
}

// Status reports what the Sharer did and where it stands.
func (s *Sharer) Status() Status {
	s.mu.Lock()
	st := Status{Name: s.cfg.Name, Stream: s.cfg.Stream, Replicas: s.replicaCount(), ReplicasProblem: s.replicasProblem(), Lag: s.lag, LastError: s.lastError,
		Counts: Counts{Published: s.counts.Published, Received: map[string]map[string]int64{}}}
	for h, m := range s.counts.Received {
		st.Received[h] = map[string]int64{}
		for k, v := range m {
			st.Received[h][k] = v
		}
	}
	if st.Server = s.server; st.Server != "" {
		if s.cluster != nil {
			c := *s.cluster
			st.Cluster = &c
		}
	}
	s.mu.Unlock()
	st.Pending, _ = s.db.SharePending()
	if s.Counter != nil {
		c := s.Counter.Status()
		st.Fleetwide = &c
	}
	return st
}

func (s *Sharer) count(host, what string, n int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.counts.Received[host]
	if m == nil {
		if len(s.counts.Received) >= 10000 { // a garbage flood of host names
			host = "other"
			if m = s.counts.Received[host]; m == nil {
				m = map[string]int64{}
				s.counts.Received[host] = m
			}
		} else {
			m = map[string]int64{}
			s.counts.Received[host] = m
		}
	}
	m[what] += n
}

func (s *Sharer) setServer(url string) {
	s.mu.Lock()
	s.server = url
	s.mu.Unlock()
}

func (s *Sharer) fail(what string, err error) {
	s.mu.Lock()
	s.lastError = what + ": " + err.Error()
	s.mu.Unlock()
	s.log.Warn("fleet: "+what, "err", err)
}

// Run connects to NATS (retrying while the servers are down), makes sure
// the stream exists, and publishes and applies until ctx ends. Local
// banning never waits for it.
func (s *Sharer) Run(ctx context.Context) error {
	opts := append([]nats.Option{nats.Name("sshguard-go " + s.cfg.Name), nats.CustomInboxPrefix(InboxPrefix(s.cfg.Name)),
		nats.RetryOnFailedConnect(true), nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second), nats.ReconnectJitter(500*time.Millisecond, time.Second), nats.Timeout(5 * time.Second),
		// A server cut off (not closed) is noticed within 15 s, not the
		// default 4 minutes, and the next URL tried.
		nats.PingInterval(5 * time.Second), nats.MaxPingsOutstanding(3),
		// Whether and where it is connected is kept from these calls:
		// the connection's own methods wait on its lock, which it holds
		// while it dials a server that does not answer (5 s each), and
		// fleet status must not wait for that.
		nats.ConnectHandler(func(nc *nats.Conn) { s.setServer(nc.ConnectedUrlRedacted()) }),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			s.setServer("")
			if err != nil {
				s.log.Warn("fleet: disconnected from NATS", "err", err)
			}
		}),
		nats.ClosedHandler(func(*nats.Conn) { s.setServer("") }),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			url := nc.ConnectedUrlRedacted()
			s.setServer(url)
			s.log.Info("fleet: connected again", "server", url)
			s.Wake()
		}),
	}, s.cfg.Options...)
	nc, err := nats.Connect(strings.Join(s.cfg.URLs, ","), opts...)
	if err != nil {
		return fmt.Errorf("fleet: %w", err)
	}
	if nc.IsConnected() {
		s.setServer(nc.ConnectedUrlRedacted())
	}
	s.mu.Lock()
	s.nc = nc
	s.mu.Unlock()
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(1024))
	if err != nil {
		return fmt.Errorf("fleet: %w", err)
	}
	s.mu.Lock()
	s.js = js
	select {
	case <-s.ready:
	default:
		close(s.ready)
	}
	s.mu.Unlock()
	for { // the streams, once the server answers, and only if trusted
		err := s.ensureStream(ctx, js)
		if err == nil {
			err = s.ensureSiblings(ctx, js)
		}
		if err == nil {
			break
		} else if ctx.Err() == nil {
			s.fail("stream "+s.cfg.Stream, err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(2 * time.Second):
		}
	}
	s.log.Info("fleet: sharing bans", "stream", s.cfg.Stream, "name", s.cfg.Name, "share", s.cfg.Share, "apply", s.cfg.Apply)
	var wg sync.WaitGroup
	if s.cfg.Share {
		wg.Go(func() { s.publish(ctx, js) })
	}
	if s.cfg.Apply {
		wg.Go(func() { s.consume(ctx, js) })
	}
	if s.Counter != nil {
		wg.Go(func() { s.countFleetwideMode(ctx, nc, js) })
	}
	wg.Go(func() { s.watchCluster(ctx, js) })
	wg.Wait()
	return nil
}

// countFleetwide publishes this host's attempts every 100 ms, takes the
// others', and bans what crosses the fleet threshold, until ctx ends.
func (s *Sharer) countFleetwide(ctx context.Context, nc *nats.Conn) {
	c := s.Counter
	own := attemptsPrefix + s.cfg.Name
	sub, err := nc.Subscribe(attemptsPrefix+">", func(m *nats.Msg) {
		if m.Subject == own {
			return
		}
		host := strings.TrimPrefix(m.Subject, attemptsPrefix)
		if err := c.receive(host, m.Data); err != nil {
			s.count(host, "garbage_attempts", 1)
		}
	})
	if err != nil {
		s.fail("subscribe to the fleet's attempts", err)
		return
	}
	defer sub.Unsubscribe()
	sub.SetPendingLimits(1000, 64<<20) // a slow host drops batches, it does not grow
	if err := nc.Flush(); err == nil { // the server has the subscription
		c.mu.Lock()
		c.subscribed = true
		c.mu.Unlock()
	}
	tick := time.NewTicker(countEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			c.flush(nc)
		case e := <-c.bans:
			reason := fmt.Sprintf("fleet-wide: %g attempts from %d hosts in %v", e.Attempts, e.Hosts, e.Window)
			if code, err := s.apply.BanHere(ctx, e.Prefix, reason); err != nil && code != "already" {
				s.log.Warn("fleet: fleet-wide ban", "prefix", e.Prefix.String(), "err", err)
			}
		}
	}
}

func (s *Sharer) ensureStream(ctx context.Context, js jetstream.JetStream) error {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	maxAge := s.cfg.MaxAge
	if maxAge <= 0 {
		maxAge = 7 * 24 * time.Hour
	}
	want := jetstream.StreamConfig{
		Name: s.cfg.Stream, Subjects: []string{subjectPrefix + ">"}, Storage: jetstream.FileStorage,
		MaxAge: maxAge, MaxMsgsPerSubject: 2_000_000, Discard: jetstream.DiscardOld, Duplicates: 10 * time.Minute,
		MaxMsgSize: 64 << 10, Replicas: s.replicaCount(),
		Description: "sshguard-go: bans shared across the fleet (sshguard.bans.<host>)",
	}
	// Made by the first host; the others change it only where it differs
	// and only where the server lets a host (one without users: fleet
	// nats-config's users may not), and trust it only as a host makes it.
	st, err := js.Stream(cctx, s.cfg.Stream)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		st, err = js.CreateStream(cctx, want)
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			st, err = js.Stream(cctx, s.cfg.Stream) // another host made it meanwhile
		}
		if err != nil {
			return replicasErr("stream "+s.cfg.Stream, want.Replicas, err)
		}
	case err != nil:
		return err
	}
	have := st.CachedInfo().Config
	if err := distrust(have, want); err != nil {
		return err
	}
	differ := limitsDiffer(have, want)
	if len(differ) == 0 && have.Replicas == want.Replicas {
		s.setReplicasProblem("stream", "")
		s.setReplicasProblem("stream limits", "")
		return nil
	}
	uctx, ucancel := context.WithTimeout(cctx, updateTimeout)
	defer ucancel()
	st2, err := js.UpdateStream(uctx, want)
	if err == nil {
		s.setReplicasProblem("stream", streamReplicas(s.cfg.Stream, st2.CachedInfo().Config.Replicas, want.Replicas, nil))
		s.setReplicasProblem("stream limits", "")
		return nil
	}
	// Refused (a single server asked for 3 replicas, a cluster with too
	// few servers up, or a host's user that may not change it): the
	// stream keeps its replicas, its limits changed alone where that is
	// what was refused, and fleet status and the log say why.
	s.setReplicasProblem("stream", streamReplicas(s.cfg.Stream, have.Replicas, want.Replicas, err))
	if have.Replicas != want.Replicas && len(differ) > 0 {
		keep := want
		keep.Replicas = have.Replicas
		kctx, kcancel := context.WithTimeout(cctx, updateTimeout)
		defer kcancel()
		if _, kerr := js.UpdateStream(kctx, keep); kerr == nil {
			differ = nil
		}
	}
	if len(differ) > 0 {
		s.setReplicasProblem("stream limits", fmt.Sprintf("stream %s keeps %s: a host may not change it (%v); the NATS administrator changes it (`nats stream edit %s`)",
			s.cfg.Stream, strings.Join(differ, ", "), err, s.cfg.Stream))
	} else {
		s.setReplicasProblem("stream limits", "")
	}
	return nil
}

// ackWait is how long a published ban's acknowledgement is awaited before
// it is published again (with its id: the stream keeps one): a server
// lost with the ban on its way never answers.
const ackWait = 3 * time.Second

// publishBatch is how many bans go out before their acknowledgements are
// awaited.
const publishBatch = 512

// publish sends the share outbox in order until ctx ends.
func (s *Sharer) publish(ctx context.Context, js jetstream.JetStream) {
	subject := subjectPrefix + s.cfg.Name
	for ctx.Err() == nil {
		sent, err := s.publishOnce(ctx, js, subject)
		if err != nil && ctx.Err() == nil {
			s.fail("publish", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
			continue
		}
		if sent > 0 {
			continue // more may wait
		}
		select { // woken by each ban; unbans are looked for every second
		case <-ctx.Done():
		case <-s.wake:
		case <-time.After(time.Second):
		}
	}
}

// publishOnce publishes what the outbox holds (up to publishBatch) and
// deletes what the server acknowledged. An unban goes alone, after the
// bans before it are acknowledged: the stream keeps their order.
func (s *Sharer) publishOnce(ctx context.Context, js jetstream.JetStream, subject string) (int, error) {
	type entry struct {
		id   uint64
		data []byte
	}
	var batch []entry
	err := s.db.Shared(publishBatch, func(id uint64, data []byte) bool {
		batch = append(batch, entry{id, data})
		var m struct{ Kind string }
		json.Unmarshal(data, &m)
		return m.Kind != "unban" // an unban ends the run
	})
	if err != nil || len(batch) == 0 {
		return 0, err
	}
	futures := make([]jetstream.PubAckFuture, len(batch))
	for i, e := range batch {
		msg := &nats.Msg{Subject: subject, Data: e.data}
		futures[i], err = js.PublishMsgAsync(msg, jetstream.WithMsgID(s.cfg.Instance+":"+strconv.FormatUint(e.id, 10)))
		if err != nil {
			batch, futures = batch[:i], futures[:i]
			break
		}
	}
	var last uint64
	acked := 0
	for i, f := range futures {
		select {
		case <-f.Ok():
			last, acked = batch[i].id, acked+1
			continue
		case e := <-f.Err():
			err = e
		case <-ctx.Done():
			err = ctx.Err()
		case <-time.After(ackWait):
			err = fmt.Errorf("no acknowledgement within %v", ackWait)
		}
		break
	}
	if acked > 0 {
		if perr := s.db.Published(last); perr != nil {
			return 0, perr
		}
		s.mu.Lock()
		s.counts.Published += int64(acked)
		s.mu.Unlock()
	}
	return acked, err
}

// fetchBatch is how many of the others' bans are applied at once.
const fetchBatch = 1024

// consume applies the others' bans until ctx ends.
func (s *Sharer) consume(ctx context.Context, js jetstream.JetStream) {
	for ctx.Err() == nil {
		if !s.consumeRun(ctx, js) {
			select { // what made it end is not over yet
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
}

// stallAfter is how long a consumer with bans pending may deliver none
// before its pull is made again (a pull lost with a server).
const stallAfter = 3 * time.Second

// consumeRun applies the others' bans from this host's consumer until
// ctx ends or the consumer must be made again: its iterator closed, a
// delivery missing (a server lost while it was on the way: acknowledging
// what follows would acknowledge it unapplied), or bans pending and none
// delivered for stallAfter (the pull lost). ok is false when it could
// not start.
func (s *Sharer) consumeRun(ctx context.Context, js jetstream.JetStream) (ok bool) {
	var cons jetstream.Consumer
	for ctx.Err() == nil {
		c, err := s.consumer(ctx, js)
		if err == nil {
			cons = c
			break
		}
		s.fail("consumer", err)
		select {
		case <-ctx.Done():
			return true
		case <-time.After(2 * time.Second):
		}
	}
	if cons == nil {
		return true
	}
	next := cons.CachedInfo().Delivered.Consumer + 1 // the next delivery's number
	it, err := cons.Messages(jetstream.PullMaxMessages(fetchBatch))
	if err != nil {
		s.fail("consume", err)
		return false
	}
	defer it.Stop()
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	idle := time.Now()
	var asked time.Time
	for ctx.Err() == nil {
		// The first as soon as it comes, then what is there already (a
		// replay of many comes in runs, applied at once).
		m, err := it.Next(jetstream.NextMaxWait(time.Second))
		if err != nil {
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return false
			}
			if !errors.Is(err, nats.ErrTimeout) && ctx.Err() == nil {
				s.fail("consume", err)
			}
			// The server is asked what is pending (an API request) at
			// most every lagEvery while idle, not every idle second of
			// every host: bans pending with nothing delivered for
			// stallAfter are a pull request lost with a server.
			if time.Since(asked) >= lagEvery {
				pending := s.updateLag(ctx, cons)
				asked = time.Now()
				if pending > 0 && time.Since(idle) > stallAfter {
					s.log.Info("fleet: no delivery with bans pending: pulling again")
					return true
				}
			}
			continue
		}
		idle = time.Now()
		msgs := []jetstream.Msg{m}
		for len(msgs) < fetchBatch {
			m, err := it.Next(jetstream.NextMaxWait(2 * time.Millisecond))
			if err != nil {
				break
			}
			msgs = append(msgs, m)
		}
		// Deliveries are numbered: a gap is one lost on the way. What is
		// before it is applied and acknowledged; the consumer is made
		// again from there (consumer).
		gap := false
		for i, m := range msgs {
			md, err := m.Metadata()
			if err != nil {
				continue
			}
			if md.Sequence.Consumer != next {
				s.log.Info("fleet: a delivery missed: consuming again from the last acknowledged", "want", next, "got", md.Sequence.Consumer)
				msgs, gap = msgs[:i], true
				break
			}
			next++
		}
		if len(msgs) > 0 {
			s.applyAll(ctx, msgs)
			if err := msgs[len(msgs)-1].Ack(); err != nil { // AckAll: every one before it too
				s.fail("ack", err)
			}
		}
		if gap {
			return true
		}
		if md, err := msgs[len(msgs)-1].Metadata(); err == nil { // what is left, without asking
			s.mu.Lock()
			s.lag = md.NumPending
			s.mu.Unlock()
		}
	}
	return true
}

// lagEvery is how often an idle host asks the server for its lag.
const lagEvery = 5 * time.Second

// consumer makes this host's durable consumer of the others' bans. One
// left with messages delivered and never acknowledged (this host's
// previous run pulled them, then stopped) is made again from its
// acknowledged floor: else the server would hold them back until their
// acknowledgement wait ran out, and a shared ban would arrive that much
// late after every restart.
func (s *Sharer) consumer(ctx context.Context, js jetstream.JetStream) (jetstream.Consumer, error) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cc := jetstream.ConsumerConfig{
		Durable: "host-" + s.cfg.Name, FilterSubject: subjectPrefix + ">", DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy: jetstream.AckAllPolicy, MaxAckPending: 4 * fetchBatch, AckWait: time.Minute,
		Description: "sshguard-go on " + s.cfg.Name + ": the others' bans",
	}
	if c, err := js.Consumer(cctx, s.cfg.Stream, cc.Durable); err == nil {
		info := c.CachedInfo()
		if info.NumAckPending == 0 { // where it starts cannot change
			cc.DeliverPolicy, cc.OptStartSeq = info.Config.DeliverPolicy, info.Config.OptStartSeq
			return js.CreateOrUpdateConsumer(cctx, s.cfg.Stream, cc)
		}
		if err := js.DeleteConsumer(cctx, s.cfg.Stream, cc.Durable); err != nil {
			return nil, err
		}
		cc.DeliverPolicy, cc.OptStartSeq = jetstream.DeliverByStartSequencePolicy, info.AckFloor.Stream+1
	}
	return js.CreateOrUpdateConsumer(cctx, s.cfg.Stream, cc)
}

// updateLag reads how many of the stream's bans this host's consumer
// has not had yet, and returns it (0 when the server does not answer).
func (s *Sharer) updateLag(ctx context.Context, cons jetstream.Consumer) uint64 {
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	info, err := cons.Info(cctx)
	if err != nil {
		return 0
	}
	s.mu.Lock()
	s.lag = info.NumPending
	s.mu.Unlock()
	return info.NumPending
}

// applyAll applies msgs in order: runs of bans at once, unbans one by one.
// Each ban passes the engine's gate; here only the message is read.
func (s *Sharer) applyAll(ctx context.Context, msgs []jetstream.Msg) {
	var bans []Remote
	at := map[hostPrefix]int{} // where each host's prefix is in bans
	flush := func() {
		if len(bans) == 0 {
			return
		}
		codes, errs := s.apply.BanRemote(ctx, bans)
		for i, code := range codes {
			switch {
			case code == "" && errs[i] == nil:
				s.count(bans[i].Host, "applied", 1)
			case code == "":
				s.count(bans[i].Host, "failed", 1)
				s.log.Warn("fleet: remote ban not applied", "prefix", bans[i].Prefix.String(), "from", bans[i].Host, "err", errs[i])
			default:
				s.count(bans[i].Host, receivedCode(code), 1)
				if code != "expired" && code != "already" {
					s.log.Warn("fleet: remote ban refused", "prefix", bans[i].Prefix.String(), "from", bans[i].Host, "why", errs[i])
				}
			}
		}
		bans = bans[:0]
		clear(at)
	}
	for _, m := range msgs {
		host := strings.TrimPrefix(m.Subject(), subjectPrefix)
		if host == s.cfg.Name || host == m.Subject() {
			continue // ours, or not a host's subject
		}
		msg, ok := decodeMessage(m.Data())
		if !ok {
			s.count(host, "garbage", 1)
			continue
		}
		if msg.Kind == "unban" {
			flush()
			s.unban(ctx, host, msg.Prefix)
			continue
		}
		reason := "fleet: " + host + ": " + msg.Reason
		if len(reason) > 300 {
			reason = reason[:300]
		}
		r := Remote{Prefix: msg.Prefix, Until: msg.Expires, Reason: reason, Host: host}
		// A host's later word on a prefix replaces its earlier one in
		// the same run (the gate would refuse the second as asked twice).
		k := hostPrefix{host, r.Prefix}
		if i, ok := at[k]; ok {
			s.count(host, "already", 1)
			bans[i] = r
			continue
		}
		at[k] = len(bans)
		bans = append(bans, r)
		if len(bans) == fetchBatch {
			flush()
		}
	}
	flush()
}

type hostPrefix struct {
	host   string
	prefix netip.Prefix
}

// receivedCode is how a refusal is counted in Status: "already" and
// "expired" as they are, the others as refused_<code>.
func receivedCode(code string) string {
	if code == "already" || code == "expired" {
		return code
	}
	return "refused_" + code
}

// unban lifts p's ban when it is the one host shared.
func (s *Sharer) unban(ctx context.Context, host string, p netip.Prefix) {
	kept, err := s.apply.UnbanRemote(ctx, p, host)
	switch {
	case err != nil:
		s.fail("unban "+p.String(), err)
	case kept:
		s.count(host, "kept", 1) // not its ban here (ours, another's, or none)
	default:
		s.count(host, "unbanned", 1)
	}
}
