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

// Channel delivers rendered alerts somewhere.
type Channel interface {
	Name() string
	Send(ctx context.Context, r Rendered) error
}

// PermanentError marks a delivery error that retrying cannot mend (a
// rejected recipient, a refused request): the delivery is marked failed.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// PartialError is a failed delivery that reached some of the channel's
// recipients (Done): a retry sends only to the others (Rendered.Done).
type PartialError struct {
	Done []string
	Err  error
}

func (e *PartialError) Error() string {
	return fmt.Sprintf("%v (delivered to %s)", e.Err, strings.Join(e.Done, ", "))
}
func (e *PartialError) Unwrap() error { return e.Err }

// Outbox is what the Worker delivers from (store.DB implements it).
type Outbox interface {
	Pending(fn func(id uint64, data []byte) error) error
	// UpdateAlerts rewrites records in one transaction; fn returns the
	// new record and whether it is no longer pending.
	UpdateAlerts(ids []uint64, fn func(id uint64, data []byte) ([]byte, bool, error)) error
	Enqueue(data []byte) (uint64, error)
}

// WorkerConfig tunes delivery. Zero values mean the defaults.
type WorkerConfig struct {
	Host           string
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
// only its own delivery state. Run it once; DeliverDue may be called
// directly (tests, with an injected clock). Reconfigure changes the
// channels and settings of a running Worker.
type Worker struct {
	st  Outbox
	now func() time.Time
	log *slog.Logger
	cfg atomic.Pointer[WorkerConfig]

	mu    sync.Mutex // guards chans, run
	chans []*outlet
	run   func(*outlet) // starts an outlet's loop while Run runs

	// OnResult, if set, is told every delivery's channel and result
	// ("sent", "retry", "failed", "expired"). It may be called from
	// several goroutines at once.
	OnResult func(channel, result string)
	// Jitter returns a number in [0, 1) that spreads each retry over
	// 50% to 150% of its backoff; nil means math/rand/v2's Float64. Set
	// it before Run; it may be called from several goroutines at once.
	Jitter func() float64
}

// outlet is one channel and its delivery state.
type outlet struct {
	name string
	wake chan struct{}
	stop chan struct{}           // closed when the channel is no longer configured
	next atomic.Pointer[Channel] // a changed channel, taken at the start of the next pass

	mu         sync.Mutex // serialises passes; guards what follows
	ch         Channel
	paused     time.Time   // no tries before
	retryNow   bool        // the next pass ignores the messages' backoff (the channel changed)
	sent       []time.Time // individual ban alerts sent within the flood window
	flooding   bool
	nextDigest time.Time
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
			o = &outlet{name: c.Name(), ch: c, wake: make(chan struct{}, 1), stop: make(chan struct{})}
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
	wg.Add(1)
	go func() { // records no channel here can take: once now, then each minute
		defer wg.Done()
		tick := time.NewTicker(time.Minute)
		defer tick.Stop()
		for {
			if err := w.dropUnrouted(); err != nil && ctx.Err() == nil {
				w.log.Error("alert outbox", "err", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
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
	errs := []error{w.dropUnrouted()}
	for _, o := range w.outlets() {
		errs = append(errs, w.pass(ctx, o))
	}
	return errors.Join(errs...)
}

type entry struct {
	id uint64
	m  *Message
}

// due returns the messages channel name has to deliver at now, oldest
// first.
func (w *Worker) due(name string, now time.Time, ignoreBackoff bool) ([]entry, error) {
	var out []entry
	err := w.st.Pending(func(id uint64, data []byte) error {
		m, err := Unmarshal(data)
		if err != nil {
			return nil // dropUnrouted takes it off the pending list
		}
		if d := m.Deliveries[name]; d != nil && d.State == Pending && (ignoreBackoff || !d.Next.After(now)) {
			out = append(out, entry{id, m})
		}
		return nil
	})
	return out, err
}

// dropUnrouted marks failed the deliveries to channels that are not
// configured (any more), and takes records it cannot read off the
// pending list (reported once; the record stays in the history).
func (w *Worker) dropUnrouted() error {
	known := map[string]bool{}
	for _, o := range w.outlets() {
		known[o.name] = true
	}
	var ids []uint64
	err := w.st.Pending(func(id uint64, data []byte) error {
		m, err := Unmarshal(data)
		if err != nil {
			w.log.Error("unreadable alert in the outbox: not delivered, kept in the history", "id", id, "err", err)
			ids = append(ids, id)
			return nil
		}
		for name, d := range m.Deliveries {
			if !known[name] && d.State == Pending {
				ids = append(ids, id)
				break
			}
		}
		return nil
	})
	if err != nil || len(ids) == 0 {
		return err
	}
	return w.st.UpdateAlerts(ids, func(_ uint64, data []byte) ([]byte, bool, error) {
		m, err := Unmarshal(data)
		if err != nil {
			return data, true, nil
		}
		for name, d := range m.Deliveries {
			if !known[name] && d.State == Pending {
				d.State, d.Error = Failed, "channel "+name+" is not configured"
			}
		}
		return m.Marshal(), m.Done(), nil
	})
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
	if now.Before(o.paused) {
		return nil
	}
	due, err := w.due(o.name, now, o.retryNow)
	if err != nil {
		return err
	}
	o.retryNow = false
	var bans []entry
	for _, e := range due {
		if ctx.Err() != nil || o.removed() {
			return nil
		}
		if e.m.Kind == KindBan {
			bans = append(bans, e)
			continue
		}
		if ok, err := w.send(ctx, o, e, now); !ok || err != nil {
			return err
		}
	}
	return w.deliverBans(ctx, o, bans, now)
}

func (w *Worker) deliverBans(ctx context.Context, o *outlet, bans []entry, now time.Time) error {
	cfg := w.conf()
	o.sent = slices.DeleteFunc(o.sent, func(t time.Time) bool { return now.Sub(t) >= cfg.FloodWindow })
	for len(bans) > 0 && !o.flooding {
		if ctx.Err() != nil || o.removed() {
			return nil
		}
		if len(o.sent) >= cfg.FloodRate {
			o.flooding, o.nextDigest = true, now.Add(cfg.DigestInterval)
			w.log.Warn("ban alert flood: gathering ban alerts into digests", "channel", o.name,
				"rate", fmt.Sprintf("%d per %v", cfg.FloodRate, cfg.FloodWindow), "digest_every", cfg.DigestInterval.String())
			break
		}
		ok, err := w.send(ctx, o, bans[0], now)
		if !ok || err != nil {
			return err
		}
		o.sent = append(o.sent, now)
		bans = bans[1:]
	}
	if !o.flooding || now.Before(o.nextDigest) {
		return nil
	}
	o.nextDigest = now.Add(cfg.DigestInterval)
	if len(bans) < cfg.FloodRate {
		o.flooding = false // the flood is over; what is held goes as one last digest
	}
	if len(bans) == 0 {
		return nil
	}
	return w.sendDigest(ctx, o, bans, now)
}

// send delivers one message on one channel and records the outcome. ok
// is false when the channel failed and is paused.
func (w *Worker) send(ctx context.Context, o *outlet, e entry, now time.Time) (ok bool, err error) {
	d := e.m.Deliveries[o.name]
	r := Render(e.m, fmt.Sprintf("%d.%s", e.id, o.name))
	r.Done = d.Done
	serr := o.ch.Send(ctx, r)
	w.outcome(o, d, e.m.Time, serr, now)
	return serr == nil, w.save(o.name, map[uint64]*Delivery{e.id: d})
}

func (w *Worker) sendDigest(ctx context.Context, o *outlet, bans []entry, now time.Time) error {
	msgs := make([]*Message, len(bans))
	for i, e := range bans {
		msgs[i] = e.m
	}
	r := RenderDigest(w.conf().Host, msgs, fmt.Sprintf("%d-%d.%s", bans[0].id, bans[len(bans)-1].id, o.name))
	// Retried digests go again only to the recipients none of its bans reached.
	r.Done = bans[0].m.Deliveries[o.name].Done
	for _, e := range bans[1:] {
		r.Done = slices.DeleteFunc(slices.Clone(r.Done), func(to string) bool { return !slices.Contains(e.m.Deliveries[o.name].Done, to) })
	}
	serr := o.ch.Send(ctx, r)
	ds := map[uint64]*Delivery{}
	for _, e := range bans {
		d := e.m.Deliveries[o.name]
		w.outcome(o, d, e.m.Time, serr, now)
		d.Digest = serr == nil
		ds[e.id] = d
	}
	return w.save(o.name, ds)
}

// save writes channel name's deliveries into their records, leaving the
// other channels' state as the store has it.
func (w *Worker) save(name string, ds map[uint64]*Delivery) error {
	ids := make([]uint64, 0, len(ds))
	for id := range ds {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return w.st.UpdateAlerts(ids, func(id uint64, data []byte) ([]byte, bool, error) {
		m, err := Unmarshal(data)
		if err != nil {
			return nil, false, err
		}
		m.Deliveries[name] = ds[id]
		return m.Marshal(), m.Done(), nil
	})
}

// outcome records a send's result in d.
func (w *Worker) outcome(o *outlet, d *Delivery, created time.Time, err error, now time.Time) {
	d.Attempts++
	result := "sent"
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
	case errors.As(err, &perm):
		d.State, d.Error, result = Failed, err.Error(), "failed"
		w.log.Error("alert not delivered: the channel refused it", "channel", o.name, "err", err)
	case now.Sub(created) >= w.conf().MaxAge:
		d.State, d.Error, result = Expired, err.Error(), "expired"
		w.log.Error("alert not delivered: still failing at the maximum age", "channel", o.name, "age", w.conf().MaxAge.String(), "err", err)
	default:
		d.Error, result = err.Error(), "retry"
		d.Next = now.Add(w.backoff(d.Attempts))
		o.paused = d.Next
		w.log.Warn("alert delivery failed; will retry", "channel", o.name, "attempt", d.Attempts, "next", d.Next.Format(time.RFC3339), "err", err)
	}
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
