package alert

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
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

// Store is the outbox the Worker delivers from (store.DB implements it).
type Store interface {
	Pending(fn func(id uint64, data []byte) error) error
	UpdateAlerts(data map[uint64][]byte, done map[uint64]bool) error
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

// Worker delivers the outbox. Run it once; DeliverDue may be called
// directly (tests, with an injected clock).
type Worker struct {
	cfg   WorkerConfig
	st    Store
	chans map[string]Channel
	now   func() time.Time
	log   *slog.Logger
	wake  chan struct{}

	// OnResult, if set, is told every delivery's channel and result
	// ("sent", "retry", "failed", "expired").
	OnResult func(channel, result string)

	mu     sync.Mutex // guards flood and paused, and serialises DeliverDue
	flood  map[string]*flood
	paused map[string]time.Time // channel -> no tries before
}

// flood is a channel's recent ban alerts and digest state.
type flood struct {
	sent       []time.Time // individual ban alerts sent within the flood window
	on         bool
	nextDigest time.Time
}

// NewWorker returns a Worker over st for chans. now may be nil.
func NewWorker(cfg WorkerConfig, st Store, chans []Channel, now func() time.Time, log *slog.Logger) *Worker {
	cfg.defaults()
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	w := &Worker{cfg: cfg, st: st, chans: map[string]Channel{}, now: now, log: log, wake: make(chan struct{}, 1),
		flood: map[string]*flood{}, paused: map[string]time.Time{}}
	for _, c := range chans {
		w.chans[c.Name()] = c
	}
	return w
}

// Wake asks Run to deliver now (a new message is in the outbox).
func (w *Worker) Wake() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Run delivers until ctx ends: at once when woken, else every second.
func (w *Worker) Run(ctx context.Context) error {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		if err := w.DeliverDue(ctx); err != nil && ctx.Err() == nil {
			w.log.Error("alert delivery", "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-w.wake:
		case <-tick.C:
		}
	}
}

type entry struct {
	id uint64
	m  *Message
}

// DeliverDue tries every delivery that is due now.
func (w *Worker) DeliverDue(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.now()
	var due []entry
	err := w.st.Pending(func(id uint64, data []byte) error {
		m, err := Unmarshal(data)
		if err != nil {
			w.log.Error("unreadable alert in the outbox; skipped", "id", id, "err", err)
			return nil
		}
		due = append(due, entry{id, m})
		return nil
	})
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range due {
		for name, d := range e.m.Deliveries {
			if _, ok := w.chans[name]; !ok && d.State == Pending {
				d.State, d.Error = Failed, "channel "+name+" is not configured"
				errs = append(errs, w.save(e))
			}
		}
	}
	names := make([]string, 0, len(w.chans))
	for n := range w.chans {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, name := range names {
		if ctx.Err() != nil {
			break
		}
		errs = append(errs, w.deliver(ctx, name, due, now))
	}
	return errors.Join(errs...)
}

// deliver sends what channel name has due: other kinds first, one by
// one; then bans, one by one until a flood, then as digests.
func (w *Worker) deliver(ctx context.Context, name string, due []entry, now time.Time) error {
	if now.Before(w.paused[name]) {
		return nil
	}
	var bans []entry
	for _, e := range due {
		d := e.m.Deliveries[name]
		if d == nil || d.State != Pending || d.Next.After(now) {
			continue
		}
		if e.m.Kind == KindBan {
			bans = append(bans, e)
			continue
		}
		if ok, err := w.send(ctx, name, e, now); !ok || err != nil {
			return err
		}
	}
	return w.deliverBans(ctx, name, bans, now)
}

func (w *Worker) deliverBans(ctx context.Context, name string, bans []entry, now time.Time) error {
	f := w.flood[name]
	if f == nil {
		f = &flood{}
		w.flood[name] = f
	}
	f.sent = slices.DeleteFunc(f.sent, func(t time.Time) bool { return now.Sub(t) >= w.cfg.FloodWindow })
	for len(bans) > 0 && !f.on {
		if len(f.sent) >= w.cfg.FloodRate {
			f.on, f.nextDigest = true, now.Add(w.cfg.DigestInterval)
			w.log.Warn("ban alert flood: gathering ban alerts into digests", "channel", name,
				"rate", fmt.Sprintf("%d per %v", w.cfg.FloodRate, w.cfg.FloodWindow), "digest_every", w.cfg.DigestInterval.String())
			break
		}
		ok, err := w.send(ctx, name, bans[0], now)
		if !ok || err != nil {
			return err
		}
		f.sent = append(f.sent, now)
		bans = bans[1:]
	}
	if !f.on || now.Before(f.nextDigest) {
		return nil
	}
	f.nextDigest = now.Add(w.cfg.DigestInterval)
	if len(bans) < w.cfg.FloodRate {
		f.on = false // the flood is over; what is held goes as one last digest
	}
	if len(bans) == 0 {
		return nil
	}
	return w.sendDigest(ctx, name, bans, now)
}

// send delivers one message on one channel and records the outcome. ok
// is false when the channel failed and is paused.
func (w *Worker) send(ctx context.Context, name string, e entry, now time.Time) (ok bool, err error) {
	d := e.m.Deliveries[name]
	serr := w.chans[name].Send(ctx, Render(e.m, fmt.Sprintf("%d.%s", e.id, name)))
	w.outcome(name, d, e.m.Time, serr, now)
	return serr == nil, w.save(e)
}

func (w *Worker) sendDigest(ctx context.Context, name string, bans []entry, now time.Time) error {
	msgs := make([]*Message, len(bans))
	for i, e := range bans {
		msgs[i] = e.m
	}
	serr := w.chans[name].Send(ctx, RenderDigest(w.cfg.Host, msgs, fmt.Sprintf("%d-%d.%s", bans[0].id, bans[len(bans)-1].id, name)))
	data, done := map[uint64][]byte{}, map[uint64]bool{}
	for _, e := range bans {
		d := e.m.Deliveries[name]
		w.outcome(name, d, e.m.Time, serr, now)
		d.Digest = serr == nil
		data[e.id], done[e.id] = e.m.Marshal(), e.m.Done()
	}
	return w.st.UpdateAlerts(data, done)
}

// outcome records a send's result in d.
func (w *Worker) outcome(name string, d *Delivery, created time.Time, err error, now time.Time) {
	d.Attempts++
	result := "sent"
	var perm *PermanentError
	switch {
	case err == nil:
		d.State, d.Sent, d.Next, d.Error = Sent, now, time.Time{}, ""
	case errors.As(err, &perm):
		d.State, d.Error, result = Failed, err.Error(), "failed"
		w.log.Error("alert not delivered: the channel refused it", "channel", name, "err", err)
	case now.Sub(created) >= w.cfg.MaxAge:
		d.State, d.Error, result = Expired, err.Error(), "expired"
		w.log.Error("alert not delivered: still failing at the maximum age", "channel", name, "age", w.cfg.MaxAge.String(), "err", err)
	default:
		d.Error, result = err.Error(), "retry"
		d.Next = now.Add(w.backoff(d.Attempts))
		w.paused[name] = d.Next
		w.log.Warn("alert delivery failed; will retry", "channel", name, "attempt", d.Attempts, "next", d.Next.Format(time.RFC3339), "err", err)
	}
	if w.OnResult != nil {
		w.OnResult(name, result)
	}
}

// backoff is MinBackoff doubled per earlier attempt, at most MaxBackoff,
// with +-50% jitter so that many daemons do not retry in step.
func (w *Worker) backoff(attempt int) time.Duration {
	d := w.cfg.MinBackoff
	for i := 1; i < attempt && d < w.cfg.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, w.cfg.MaxBackoff)
	return time.Duration(float64(d) * (0.5 + rand.Float64()))
}

func (w *Worker) save(e entry) error {
	return w.st.UpdateAlerts(map[uint64][]byte{e.id: e.m.Marshal()}, map[uint64]bool{e.id: e.m.Done()})
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
