package alert

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// WorkerConfig tunes delivery. Zero values mean the defaults.
type WorkerConfig struct {
	Host string
	// Instance is the outbox's own random id (store.DB.Instance): with the
	// host name it makes each message's id (the email Message-ID) unique
	// across hosts sharing a sender address and across a recreated
	// database.
	Instance       string
	MaxAge         time.Duration // retries stop for messages older than this; default 24h
	MinBackoff     time.Duration // first retry after about this; default 10s
	MaxBackoff     time.Duration // retries at most this far apart; default 10m
	FloodRate      int           // more ban alerts than this within FloodWindow make a flood; default 10
	FloodWindow    time.Duration // default 1m
	DigestInterval time.Duration // during a flood, one digest per channel this often; default 15m
}

func (c *WorkerConfig) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.MaxAge, 24*time.Hour)
	def(&c.MinBackoff, 10*time.Second)
	def(&c.MaxBackoff, 10*time.Minute)
	def(&c.FloodWindow, time.Minute)
	def(&c.DigestInterval, 15*time.Minute)
	if c.FloodRate <= 0 {
		c.FloodRate = 10
	}
}

// Worker delivers the outbox. Each channel delivers on its own, so a
// mail server that hangs does not hold back text messages; each saves
// only its own delivery state. Each channel keeps a queue of its pending
// deliveries (ids and retry times), filled from the outbox once at start
// and then from what was written since (the pending list is ordered by
// id), so a pass costs what it sends, not what the outbox holds. Run it
// once; DeliverDue may be called directly (tests, with an injected
// clock). Reconfigure changes the channels and settings of a running
// Worker.
type Worker struct {
	st  Outbox
	now func() time.Time
	log *slog.Logger
	cfg atomic.Pointer[WorkerConfig]

	mu      sync.Mutex // guards chans, run, removed
	chans   []*outlet
	run     func(*outlet) // starts an outlet's loop while Run runs
	removed []*outlet     // channels taken out, whose queued deliveries are to be failed

	scanMu sync.Mutex // serialises refresh; guards seen
	seen   uint64     // the highest outbox id read into the queues

	// OnResult, if set, is told every delivery's channel and result
	// ("sent", "retry", "failed", "expired"). It may be called from
	// several goroutines at once.
	OnResult func(channel, result string)
	// Jitter returns a number in [0, 1) that spreads each retry over
	// 50% to 150% of its backoff; nil means math/rand/v2's Float64. Set
	// it before Run; it may be called from several goroutines at once.
	Jitter func() float64
	// Resolve turns a message's BanRef into its Ban (see Message.BanRef);
	// nil, or an error, renders the ban alert without its details. Set it
	// before Run.
	Resolve func(ref []byte) (*Ban, error)
}

// outlet is one channel and its delivery state.
type outlet struct {
	name   string
	wake   chan struct{}
	stop   chan struct{}           // closed when the channel is no longer configured
	next   atomic.Pointer[Channel] // a changed channel, taken at the start of the next pass
	bans   *queue                  // pending ban alerts
	others *queue                  // pending logins, reports, tests
	loaded atomic.Bool             // the queues hold the records written before the Worker's seen mark

	mu       sync.Mutex // serialises passes; guards what follows
	ch       Channel
	paused   time.Time // no tries before
	retryNow bool      // the next pass ignores the messages' backoff (the channel changed)
	flood    floodState
}

// NewWorker returns a Worker over st for chans. now may be nil.
func NewWorker(cfg WorkerConfig, st Outbox, chans []Channel, now func() time.Time, log *slog.Logger) *Worker {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	w := &Worker{st: st, now: now, log: log}
	w.Reconfigure(cfg, chans)
	return w
}

// conf is the current configuration.
func (w *Worker) conf() *WorkerConfig { return w.cfg.Load() }

// Reconfigure replaces the settings and the channels. A channel whose
// name is new starts delivering; one no longer given stops after the
// send in progress, and its pending deliveries are marked failed; one
// given again is swapped in after the pass in progress and retries what
// it holds at once (the change may be the fix for its failures). The
// flood state of a kept channel carries over.
func (w *Worker) Reconfigure(cfg WorkerConfig, chans []Channel) {
	cfg.defaults()
	w.cfg.Store(&cfg)
	w.mu.Lock()
	old := map[string]*outlet{}
	for _, o := range w.chans {
		old[o.name] = o
	}
	w.chans = nil
	for _, c := range chans {
		o := old[c.Name()]
		delete(old, c.Name())
		if o == nil {
			o = &outlet{name: c.Name(), ch: c, wake: make(chan struct{}, 1), stop: make(chan struct{}),
				bans: newQueue(), others: newQueue()}
			if err := w.st.Position(floodKey(o.name), &o.flood); err != nil {
				o.flood = floodState{} // none kept (or unreadable): no flood
			}
			if w.run != nil {
				w.run(o)
			}
		} else {
			o.next.Store(&c) // not o.mu: a pass may hold it for a whole send
		}
		w.chans = append(w.chans, o)
	}
	for _, o := range old {
		close(o.stop)
		w.removed = append(w.removed, o)
	}
	w.mu.Unlock()
	w.Wake()
}

// removed reports whether the channel is no longer configured.
func (o *outlet) removed() bool {
	select {
	case <-o.stop:
		return true
	default:
		return false
	}
}

// outlets is the current channel set.
func (w *Worker) outlets() []*outlet {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.chans)
}

// Wake asks every channel to deliver now (a new message is in the outbox).
func (w *Worker) Wake() {
	for _, o := range w.outlets() {
		select {
		case o.wake <- struct{}{}:
		default:
		}
	}
}

// Run delivers until ctx ends: each channel at once when woken, else
// every second.
func (w *Worker) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	w.mu.Lock()
	w.run = func(o *outlet) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(time.Second)
			defer tick.Stop()
			for {
				if err := w.pass(ctx, o); err != nil && ctx.Err() == nil {
					w.log.Error("alert delivery", "channel", o.name, "err", err)
				}
				select {
				case <-ctx.Done():
					return
				case <-o.stop:
					return
				case <-o.wake:
				case <-tick.C:
				}
			}
		}()
	}
	for _, o := range w.chans {
		w.run(o)
	}
	w.mu.Unlock()
	// With no channel configured, records routed to none are still
	// settled (failed) once a minute.
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(time.Minute)
		defer tick.Stop()
		for {
			if err := w.refresh(); err != nil && ctx.Err() == nil {
				w.log.Error("alert outbox", "err", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	<-ctx.Done()
	w.mu.Lock()
	w.run = nil
	w.mu.Unlock()
	wg.Wait()
	return ctx.Err()
}

// DeliverDue makes one delivery pass on every channel, one after the
// other.
func (w *Worker) DeliverDue(ctx context.Context) error {
	errs := []error{w.refresh()}
	for _, o := range w.outlets() {
		errs = append(errs, w.pass(ctx, o))
	}
	return errors.Join(errs...)
}

// refresh brings the channels' queues up to date with the outbox: a new
// channel's queues are filled with the pending records routed to it (one
// read of the outbox), every queue gets the records written since the
// last refresh, and deliveries to channels that are not configured (any
// more) are marked failed, as are records that cannot be read (taken off
// the pending list; they stay in the history).
func (w *Worker) refresh() error {
	w.scanMu.Lock()
	defer w.scanMu.Unlock()
	w.mu.Lock()
	outs, removed := slices.Clone(w.chans), w.removed
	w.removed = nil
	w.mu.Unlock()
	known := map[string]*outlet{}
	var fresh map[string]*outlet
	for _, o := range outs {
		known[o.name] = o
		if !o.loaded.Load() {
			if fresh == nil {
				fresh = map[string]*outlet{}
			}
			fresh[o.name] = o
		}
	}
	var unrouted []uint64
	var unreadable []uint64
	file := func(id uint64, data []byte, to map[string]*outlet, isNew bool) {
		m, err := Unmarshal(data)
		if err != nil {
			if isNew {
				w.log.Error("unreadable alert in the outbox: not delivered, kept in the history", "id", id, "err", err)
				unreadable = append(unreadable, id)
			}
			return
		}
		for name, d := range m.Deliveries {
			if d.State != Pending {
				continue
			}
			if o := to[name]; o != nil {
				o.queueFor(m.Kind).add(item{id: id, next: d.Next})
			} else if isNew && known[name] == nil {
				unrouted = append(unrouted, id)
			}
		}
	}
	if fresh != nil && w.seen > 0 {
		err := w.st.PendingAfter(0, func(id uint64, data []byte) error {
			if id <= w.seen {
				file(id, data, fresh, false)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	for _, o := range fresh {
		o.loaded.Store(true)
	}
	err := w.st.PendingAfter(w.seen, func(id uint64, data []byte) error {
		file(id, data, known, true)
		w.seen = id
		return nil
	})
	if err != nil {
		return err
	}
	for _, o := range removed {
		// Not under o.mu: a pass of o in progress may be waiting for
		// scanMu. What it sends meanwhile is saved after, and failing
		// only touches deliveries still pending.
		ids := append(o.bans.clear(), o.others.clear()...)
		if known[o.name] == nil {
			unrouted = append(unrouted, ids...)
		}
	}
	return errors.Join(w.failUnrouted(known, unrouted), w.dropUnreadable(unreadable))
}

// queueFor is the queue of messages of kind k.
func (o *outlet) queueFor(k Kind) *queue {
	if k == KindBan {
		return o.bans
	}
	return o.others
}

// failUnrouted marks failed, in the records of ids, the pending
// deliveries to channels not among known.
func (w *Worker) failUnrouted(known map[string]*outlet, ids []uint64) error {
	if len(ids) == 0 {
		return nil
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	return w.update(ids, func(_ uint64, data []byte) ([]byte, bool, error) {
		m, err := Unmarshal(data)
		if err != nil {
			return data, true, nil
		}
		for name, d := range m.Deliveries {
			if known[name] == nil && d.State == Pending {
				d.State, d.Error = Failed, "channel "+name+" is not configured"
			}
		}
		return m.Marshal(), m.Done(), nil
	})
}

// dropUnreadable takes records that cannot be read off the pending list.
func (w *Worker) dropUnreadable(ids []uint64) error {
	if len(ids) == 0 {
		return nil
	}
	return w.update(ids, func(_ uint64, data []byte) ([]byte, bool, error) { return data, true, nil })
}

// updateChunk bounds the records rewritten in one transaction.
const updateChunk = 1000

// update runs UpdateAlerts over ids in chunks.
func (w *Worker) update(ids []uint64, fn func(id uint64, data []byte) ([]byte, bool, error)) error {
	for len(ids) > 0 {
		n := min(updateChunk, len(ids))
		if err := w.st.UpdateAlerts(ids[:n], fn); err != nil {
			return err
		}
		ids = ids[n:]
	}
	return nil
}

type entry struct {
	id uint64
	m  *Message
}

// load reads the records of ids that channel name still has to deliver,
// with their bans resolved; ids whose delivery has ended are left out.
func (w *Worker) load(name string, ids []uint64) ([]entry, error) {
	var out []entry
	err := w.st.Records(ids, func(id uint64, data []byte) error {
		m, err := Unmarshal(data)
		if err != nil {
			return nil
		}
		if d := m.Deliveries[name]; d != nil && d.State == Pending {
			out = append(out, entry{id, m})
		}
		return nil
	})
	// Resolved after the read: Resolve reads the store too, and a read
	// transaction inside another can deadlock with a writer.
	for _, e := range out {
		e.m.ResolveBan(w.Resolve)
	}
	return out, err
}

// pass sends what channel o has due: other kinds first, one by one; then
// bans, one by one until a flood, then as digests.
func (w *Worker) pass(ctx context.Context, o *outlet) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if c := o.next.Swap(nil); c != nil {
		o.ch, o.paused, o.retryNow = *c, time.Time{}, true
	}
	now := w.now()
	if now.Before(o.paused) || o.removed() {
		return nil
	}
	if err := w.refresh(); err != nil {
		return err
	}
	all := o.retryNow
	o.retryNow = false
	others := o.others.take(now, all)
	for i, id := range others {
		if ctx.Err() != nil || o.removed() {
			o.others.putBack(others[i:])
			return nil
		}
		es, err := w.load(o.name, []uint64{id})
		if err != nil {
			o.others.putBack(others[i:])
			return err
		}
		if len(es) == 0 {
			continue // ended meanwhile
		}
		if ok, err := w.send(ctx, o, es[0], now); !ok || err != nil {
			o.others.putBack(others[i+1:])
			return err
		}
	}
	return w.deliverBans(ctx, o, now, all)
}

// messageID is the id of outbox record(s) ids on channel name: unique per
// host and database.
func (w *Worker) messageID(ids, name string) string {
	cfg := w.conf()
	id := ids + "." + name + "." + idAtom(cfg.Host)
	if cfg.Instance != "" {
		id += "." + idAtom(cfg.Instance)
	}
	return id
}

// idAtom keeps what a Message-ID's left part may hold of s.
func idAtom(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 128 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
			return r
		}
		return -1
	}, s)
}

// send delivers one message on one channel and records the outcome. ok
// is false when the channel failed and is paused.
func (w *Worker) send(ctx context.Context, o *outlet, e entry, now time.Time) (ok bool, err error) {
	d := e.m.Deliveries[o.name]
	r := Render(e.m, w.messageID(fmt.Sprint(e.id), o.name))
	r.Done = d.Done
	serr := o.ch.Send(ctx, r)
	result := w.outcome(o, d, e.m.Time, serr, now)
	w.report(o, d, result, 1)
	w.counted(o, result)
	if d.State == Pending {
		o.queueFor(e.m.Kind).add(item{id: e.id, next: d.Next})
	}
	return serr == nil, w.save(o.name, map[uint64]*Delivery{e.id: d})
}

// save writes channel name's deliveries into their records, leaving the
// other channels' state as the store has it.
func (w *Worker) save(name string, ds map[uint64]*Delivery) error {
	ids := make([]uint64, 0, len(ds))
	for id := range ds {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return w.update(ids, func(id uint64, data []byte) ([]byte, bool, error) {
		m, err := Unmarshal(data)
		if err != nil {
			return nil, false, err
		}
		m.Deliveries[name] = ds[id]
		return m.Marshal(), m.Done(), nil
	})
}

// outcome records a send's result in d and returns it: "sent", "retry",
// "failed" or "expired". A retry pauses the channel until d's next try.
func (w *Worker) outcome(o *outlet, d *Delivery, created time.Time, err error, now time.Time) string {
	d.Attempts++
	var perm *PermanentError
	var part *PartialError
	if errors.As(err, &part) {
		for _, to := range part.Done {
			if !slices.Contains(d.Done, to) {
				d.Done = append(d.Done, to)
			}
		}
	}
	switch {
	case err == nil:
		d.State, d.Sent, d.Next, d.Error, d.Done = Sent, now, time.Time{}, "", nil
		return "sent"
	case errors.As(err, &perm):
		d.State, d.Error = Failed, err.Error()
		return "failed"
	case now.Sub(created) >= w.conf().MaxAge:
		d.State, d.Error = Expired, err.Error()
		return "expired"
	}
	d.Error = err.Error()
	d.Next = now.Add(w.backoff(d.Attempts))
	if d.Next.After(o.paused) {
		o.paused = d.Next
	}
	return "retry"
}

// report logs a delivery's result (n deliveries for a digest).
func (w *Worker) report(o *outlet, d *Delivery, result string, n int) {
	switch result {
	case "failed":
		w.log.Error("alert not delivered: the channel refused it", "channel", o.name, "alerts", n, "err", d.Error)
	case "expired":
		w.log.Error("alert not delivered: still failing at the maximum age", "channel", o.name, "alerts", n, "age", w.conf().MaxAge.String(), "err", d.Error)
	case "retry":
		w.log.Warn("alert delivery failed; will retry", "channel", o.name, "alerts", n, "attempt", d.Attempts, "next", d.Next.Format(time.RFC3339), "err", d.Error)
	}
}

// counted tells OnResult.
func (w *Worker) counted(o *outlet, result string) {
	if w.OnResult != nil {
		w.OnResult(o.name, result)
	}
}

// backoff is MinBackoff doubled per earlier attempt, at most MaxBackoff,
// with +-50% jitter so that many daemons do not retry in step.
func (w *Worker) backoff(attempt int) time.Duration {
	cfg := w.conf()
	d := cfg.MinBackoff
	for i := 1; i < attempt && d < cfg.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, cfg.MaxBackoff)
	jitter := w.Jitter
	if jitter == nil {
		jitter = rand.Float64
	}
	return time.Duration(float64(d) * (0.5 + jitter()))
}

// Enqueue puts m in the outbox and wakes the worker (for messages that
// are not written together with a ban or a login: reports, tests).
func (w *Worker) Enqueue(m *Message) (uint64, error) {
	id, err := w.st.Enqueue(m.Marshal())
	if err == nil {
		w.Wake()
	}
	return id, err
}
