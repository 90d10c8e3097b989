package alert

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// floodState is a channel's flood control, kept in the store so that a
// restart during a flood does not send flood_rate single alerts again.
type floodState struct {
	Sent       []time.Time `json:"sent,omitempty"` // individual ban alerts sent within the flood window
	Flooding   bool        `json:"flooding,omitempty"`
	NextDigest time.Time   `json:"next_digest,omitzero"`
}

func floodKey(channel string) string { return "alert-flood:" + channel }

// deliverBans sends o's ban alerts that are due: one by one until
// flood_rate were sent within flood_window, then held and sent as one
// digest every digest_interval (all: every one queued, due or not).
func (w *Worker) deliverBans(ctx context.Context, o *outlet, now time.Time, all bool) error {
	cfg := w.conf()
	f := &o.flood
	kept := slices.DeleteFunc(slices.Clone(f.Sent), func(t time.Time) bool { return now.Sub(t) >= cfg.FloodWindow })
	if len(kept) != len(f.Sent) {
		f.Sent = kept
		w.saveFlood(o)
	}
	if f.Flooding && now.Before(f.NextDigest) {
		return nil // held for the digest: not even read
	}
	bans := o.bans.take(now, all)
	for len(bans) > 0 && !f.Flooding {
		if ctx.Err() != nil || o.removed() {
			o.bans.putBack(bans)
			return nil
		}
		if len(f.Sent) >= cfg.FloodRate {
			f.Flooding, f.NextDigest = true, now.Add(cfg.DigestInterval)
			w.saveFlood(o)
			w.log.Warn("ban alert flood: gathering ban alerts into digests", "channel", o.name,
				"rate", fmt.Sprintf("%d per %v", cfg.FloodRate, cfg.FloodWindow), "digest_every", cfg.DigestInterval.String())
			o.bans.putBack(bans)
			return nil
		}
		es, err := w.load(o.name, bans[:1])
		if err != nil {
			o.bans.putBack(bans)
			return err
		}
		bans = bans[1:]
		if len(es) == 0 {
			continue
		}
		ok, err := w.send(ctx, o, es[0], now)
		if !ok || err != nil {
			o.bans.putBack(bans)
			return err
		}
		f.Sent = append(f.Sent, now)
		w.saveFlood(o)
	}
	if len(bans) == 0 {
		if f.Flooding && !now.Before(f.NextDigest) {
			f.Flooding = false // the flood is over and nothing is held
			w.saveFlood(o)
		}
		return nil
	}
	f.NextDigest = now.Add(cfg.DigestInterval)
	if len(bans) < cfg.FloodRate {
		f.Flooding = false // the flood is over; what is held goes as one last digest
	}
	w.saveFlood(o)
	return w.sendDigest(ctx, o, bans, now)
}

// saveFlood keeps o's flood state in the store.
func (w *Worker) saveFlood(o *outlet) {
	if err := w.st.SavePosition(floodKey(o.name), o.flood); err != nil {
		w.log.Error("save flood state", "channel", o.name, "err", err)
	}
}

// sendDigest sends the ban alerts ids as one digest, reading them in
// chunks (a digest of 100,000 bans never holds them all), and records the
// outcome in each.
func (w *Worker) sendDigest(ctx context.Context, o *outlet, ids []uint64, now time.Time) error {
	dg := NewDigest(w.conf().Host)
	var done []string // recipients every ban reached already (a retried digest skips them)
	var sent []uint64
	for chunk := range slices.Chunk(ids, updateChunk) {
		es, err := w.load(o.name, chunk)
		if err != nil {
			o.bans.putBack(ids)
			return err
		}
		for _, e := range es {
			d := e.m.Deliveries[o.name]
			if len(sent) == 0 {
				done = slices.Clone(d.Done)
			} else {
				done = slices.DeleteFunc(done, func(to string) bool { return !slices.Contains(d.Done, to) })
			}
			dg.Add(e.m)
			sent = append(sent, e.id)
		}
	}
	if len(sent) == 0 {
		return nil
	}
	r := dg.Render(w.messageID(fmt.Sprintf("%d-%d", sent[0], sent[len(sent)-1]), o.name))
	r.Done = done
	serr := o.ch.Send(ctx, r)
	var last *Delivery
	results := map[string]int{}
	err := w.update(sent, func(id uint64, data []byte) ([]byte, bool, error) {
		m, err := Unmarshal(data)
		if err != nil {
			return nil, false, err
		}
		d := m.Deliveries[o.name]
		if d == nil {
			return data, m.Done(), nil
		}
		result := w.outcome(o, d, m.Time, serr, now)
		results[result]++
		w.counted(o, result)
		last = d
		d.Digest = serr == nil
		if d.State == Pending {
			o.bans.add(item{id: id, next: d.Next})
		}
		return m.Marshal(), m.Done(), nil
	})
	for result, n := range results {
		w.report(o, last, result, n)
	}
	return err
}
