package share

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"sshguard-go/internal/ban"
)

// Fleet-wide counting: every host publishes the attempts it counts,
// batched every 100 ms, on sshguard.attempts.<host> (plain NATS: a count
// is worth nothing later), and keeps a second sliding window per address
// over the whole fleet; the host whose window reaches the fleet threshold
// bans, and shares the ban as any other.

const (
	attemptsPrefix = "sshguard.attempts."
	countEvery     = 100 * time.Millisecond
	// maxBatch bounds the attempts one host publishes per 100 ms: a wave
	// of 100,000 addresses on one host reaches the others as at most
	// 50,000 a second (the rest dropped and counted), not all at once.
	maxBatch = 5000
)

// attempt is one counted attempt on the wire: address (or prefix),
// weight, Unix milliseconds.
type attempt struct {
	P netip.Prefix `json:"p"`
	W float64      `json:"w"`
	T int64        `json:"t"`
}

// Counter is the fleet-wide window. It is safe for concurrent use.
type Counter struct {
	name      string
	threshold float64
	window    time.Duration
	bans      chan ban.Element // keys that reached the threshold, for the banner

	mu         sync.Mutex
	win        *ban.Window
	buf        []attempt
	dropped    int64 // attempts not published (batches full)
	remote     int64 // attempts received from the others
	sent       int64
	bytes      int64 // published
	subscribed bool  // to the others' attempts
}

// NewCounter returns the fleet-wide window of threshold attempts in
// window, tracking at most maxTracked addresses.
func NewCounter(name string, threshold float64, window time.Duration, maxTracked int) *Counter {
	return &Counter{name: name, threshold: threshold, window: window, bans: make(chan ban.Element, 1024),
		win: ban.NewWindow(ban.WindowConfig{Window: window, Threshold: threshold, MaxTracked: maxTracked})}
}

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
	c.add(p, at, w)
}

// add counts an attempt in the fleet window. c.mu is held.
func (c *Counter) add(p netip.Prefix, at time.Time, w float64) {
	if sum, reached := c.win.Add(p, at, w); reached {
		c.win.Reset(p)
		select {
		case c.bans <- ban.Element{Prefix: p, Timeout: time.Duration(sum * float64(time.Second))}: // the sum rides in Timeout
		default: // the banner is behind: the next attempt trips it again
		}
	}
}

// receive takes a batch another host published.
func (c *Counter) receive(data []byte) error {
	var batch []attempt
	if err := json.Unmarshal(data, &batch); err != nil {
		return err
	}
	if len(batch) > maxBatch {
		return fmt.Errorf("%d attempts in one batch, at most %d", len(batch), maxBatch)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	for _, a := range batch {
		at := time.UnixMilli(a.T)
		if !a.P.IsValid() || !(a.W > 0 && a.W <= 12.75) || at.After(now.Add(time.Minute)) || at.Before(now.Add(-c.window)) {
			continue // a forged weight, a NaN, a time out of the window
		}
		c.remote++
		c.add(a.P.Masked(), at, a.W)
	}
	return nil
}

// flush publishes what was counted here since the last flush.
func (c *Counter) flush(nc *nats.Conn) {
	c.mu.Lock()
	buf := c.buf
	c.buf = nil
	c.mu.Unlock()
	if len(buf) == 0 {
		return
	}
	data, _ := json.Marshal(buf)
	if err := nc.Publish(attemptsPrefix+c.name, data); err != nil {
		c.mu.Lock()
		c.dropped += int64(len(buf))
		c.mu.Unlock()
		return
	}
	c.mu.Lock()
	c.sent += int64(len(buf))
	c.bytes += int64(len(data))
	c.mu.Unlock()
}

// CountStatus is what the fleet-wide counting did.
type CountStatus struct {
	Sent     int64 `json:"sent"`
	Bytes    int64 `json:"bytes"`
	Dropped  int64 `json:"dropped"`
	Received int64 `json:"received"`
	Tracked  int   `json:"tracked"`
	// Listening is set once the others' attempts are subscribed to.
	Listening bool `json:"listening"`
}

// Status reports the counter's figures.
func (c *Counter) Status() CountStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	return CountStatus{Sent: c.sent, Bytes: c.bytes, Dropped: c.dropped, Received: c.remote, Tracked: c.win.Len(), Listening: c.subscribed}
}
