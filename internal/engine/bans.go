package engine

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"sync"
	"time"

	"sshguard-go/internal/ban"
	"sshguard-go/internal/store"
)

// commit writes what batch decided: its logins (one transaction) and its
// bans (stageBans). It returns, in batch's order, each ban made (nil for
// a login) or the error that prevented it.
func (g *Guard) commit(ctx context.Context, batch []decision) ([]*store.Ban, []error) {
	return g.stage(ctx, batch, false)()
}

// stage does the first part of commit, the bans' kernel stage, and
// returns the rest (the logins, the bans' store stage), which returns
// what commit does. A batch staged after another finishes after it: the
// rest of several may run at once (Run's committers), each waiting for
// its turn to write its bans, and a sync in a batch returns once every
// batch staged before it is written.
func (g *Guard) stage(ctx context.Context, batch []decision, urgent bool) (rest func() ([]*store.Ban, []error)) {
	bans, errs := make([]*store.Ban, len(batch)), make([]error, len(batch))
	var li, bi []int
	var synced []chan struct{}
	for i, d := range batch {
		switch d.act {
		case actLogin:
			li = append(li, i)
		case actBan:
			bi = append(bi, i)
		case actSync:
			synced = append(synced, d.synced)
		}
	}
	storeBans := func() ([]*store.Ban, []error) { return nil, nil }
	if len(bi) > 0 {
		storeBans = g.stageBans(ctx, pick(batch, bi), urgent)
	}
	syncTurn := func() {}
	if len(synced) > 0 {
		syncTurn = g.turnAfterStaged()
	}
	return func() ([]*store.Ban, []error) {
		// Whatever happens (a callback's panic), every turn taken is
		// ended, the sync's last, and then the syncs are told.
		defer func() {
			for _, c := range synced {
				close(c)
			}
		}()
		defer syncTurn()
		if len(bi) > 0 { // first: its turn ends in it, even on a panic
			made, berrs := storeBans()
			for k, i := range bi {
				bans[i], errs[i] = made[k], berrs[k]
			}
		}
		if len(li) > 0 {
			err := g.logins(pick(batch, li))
			for _, i := range li {
				errs[i] = err
			}
		}
		return bans, errs
	}
}

// turnAfterStaged takes a store turn after every kernel stage so far; the
// function it returns waits for that turn, then ends it: every batch
// staged before is written by then.
func (g *Guard) turnAfterStaged() func() {
	g.fwMu.Lock()
	turn := g.turns.take()
	g.fwMu.Unlock()
	return func() {
		defer g.turns.done()
		g.turns.wait(turn)
	}
}

// pick returns the elements of s at the indexes idx.
func pick[T any](s []T, idx []int) []T {
	if len(idx) == len(s) {
		return s
	}
	out := make([]T, len(idx))
	for i, j := range idx {
		out[i] = s[j]
	}
	return out
}

// stageBans enforces the bans of batch, which the gate admitted with
// their lengths, and returns what records them: every element in one
// netlink batch, every record with its alert in one bbolt transaction.
// The kernel first: a ban that is recorded but not enforced would be a
// lie in `list`; one enforced but not recorded is restored from the
// kernel set at the next start. The kernel's stage (here) is one batch at
// a time, the store's (the function returned) in turns in the same
// order: a batch's element goes into the kernel while the batches before
// it are being written to disk. The function returns, in batch's order,
// each ban made or the error that prevented it; a decision whose hold the
// gate no longer has (lifted while it waited) is not made.
//
// urgent is a batch the log's detection decided: it goes before the
// others' (a peer's, an archive's), which are written in pieces and step
// aside between two pieces when one waits. The part written before
// stepping aside is recorded before the rest is staged, after the urgent
// one: no turn is held while the rest waits for the kernel (a Restore
// holds the kernel while it waits for every turn taken).
func (g *Guard) stageBans(ctx context.Context, batch []decision, urgent bool) func() ([]*store.Ban, []error) {
	bans, errs := make([]*store.Ban, len(batch)), make([]error, len(batch))
	cfg, now := g.cfg.Load(), g.now()
	for lo := 0; ; {
		part, at, made, turn, n := g.kernelStage(ctx, batch[lo:], errs[lo:], now, urgent)
		for i := range at {
			at[i] += lo
		}
		lo += n
		write := g.storeStage(cfg, part, at, made, turn, now, bans, errs)
		if lo == len(batch) { // the last part (an urgent batch's only one): the caller's to write
			return func() ([]*store.Ban, []error) { write(); return bans, errs }
		}
		func() {
			defer func() {
				if r := recover(); r != nil { // the rest is not written: its prefixes back
					g.settle(batch[lo:], make([]*store.Ban, len(batch)-lo))
					panic(r)
				}
			}()
			write()
		}()
	}
}

// storeStage returns what writes a part of a batch staged in the kernel
// (its decisions, where each was in the batch, the bans made, its turn)
// into the store, and puts each ban made or its error into bans and errs.
func (g *Guard) storeStage(cfg *Config, part []decision, at []int, made []*store.Ban, turn uint64, now time.Time, bans []*store.Ban, errs []error) func() {
	if len(part) == 0 {
		return func() {}
	}
	return func() {
		// The turn ends whatever happens in it (a callback's panic
		// recovered by an HTTP server must not stop every later ban and
		// unban).
		g.turns.wait(turn)
		var err error
		func() {
			defer g.turns.done()
			made, err = g.recordMade(cfg, part, made, now)
			g.settle(part, made)
		}()
		for i, j := range at {
			switch {
			case made[i] != nil:
				bans[j] = made[i]
			case err != nil:
				errs[j] = err
			case errs[j] == nil:
				errs[j] = fmt.Errorf("ban %s: the firewall refused it (the daemon's log says why)", part[i].key)
			}
		}
	}
}

// kernelPiece is how many elements a batch that is not urgent writes to
// the kernel at once: the most a detected ban waits for. A netlink batch
// into a set of 100,000 elements took up to 100 ms for a peer's 4,096.
const kernelPiece = 64

// kernelStage is stageBans' first stage, under fwMu: of the decisions of
// batch it takes (n, from the first: all of an urgent batch, else piece
// by piece until an urgent one waits), those still held (their place in
// batch in at, the others' errors in errs, and the error of an element
// the kernel refused), their bans made in the kernel (nil where refused),
// and the turn of their store stage (none when none is left).
func (g *Guard) kernelStage(ctx context.Context, batch []decision, errs []error, now time.Time, urgent bool) (kept []decision, at []int, made []*store.Ban, turn uint64, n int) {
	if urgent {
		g.fwMu.LockUrgent()
		defer g.fwMu.UnlockUrgent()
	} else {
		g.fwMu.LockAside()
		defer g.fwMu.Unlock()
	}
	for n < len(batch) {
		hi := len(batch)
		if !urgent {
			hi = min(n+kernelPiece, hi)
		}
		k, a := g.stillHeld(batch[n:hi], errs[n:hi])
		if len(k) > 0 {
			m, err := g.enforce(ctx, k, now)
			g.mu.Lock()
			for i, d := range k {
				if m[i] != nil {
					g.enforced[d.key] = max(g.enforced[d.key], d.seq)
				} else if err != nil {
					errs[n+a[i]] = err
				}
			}
			g.mu.Unlock()
			kept, made = append(kept, k...), append(made, m...)
			for _, i := range a {
				at = append(at, n+i)
			}
		}
		n = hi
		if g.fwMu.Urgent() {
			break // an urgent batch waits: it goes next
		}
	}
	if len(kept) == 0 {
		return nil, nil, nil, 0, n
	}
	return kept, at, made, g.turns.take(), n
}

// turns orders the store's stage of commits and lifts as their kernel's
// stage was: take (under Guard.fwMu) gives the next turn, wait returns
// when it has come, done ends it.
type turns struct {
	mu        sync.Mutex
	cond      sync.Cond // on mu
	next, now uint64
}

func (t *turns) take() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := t.next
	t.next++
	return n
}

func (t *turns) wait(n uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for t.now != n {
		t.cond.Wait()
	}
}

func (t *turns) done() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.now++
	t.cond.Broadcast()
}

// admitDetected passes a ban the window decided through the gate, with
// the prefix's record of earlier bans read first (outside the lock): a
// refusal (banned already, in the log's time, say) is counted and nothing
// is done.
func (g *Guard) admitDetected(d *decision) bool {
	off, err := g.db.Offender(ban.Unmap(d.key))
	if err != nil {
		g.log.Error("read the offender record", "prefix", d.key.String(), "err", err)
	}
	cfg := g.cfg.Load()
	g.mu.LockUrgent()
	defer g.mu.UnlockUrgent()
	if r := g.admit(cfg, d, off); r != nil {
		g.refuse[d.origin+" "+r.Code]++
		g.log.Debug("not banned", "prefix", d.key.String(), "code", r.Code, "why", r.Why)
		return false
	}
	return true
}

// stillHeld returns the decisions of batch still to be written, and
// where each was in batch: not those whose prefix was lifted (unban, the
// allowlist) since they were decided, nor those a newer decision on the
// same prefix already replaced in the kernel and the store; the others
// get their error in errs.
func (g *Guard) stillHeld(batch []decision, errs []error) ([]decision, []int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	kept, at := make([]decision, 0, len(batch)), make([]int, 0, len(batch))
	for i, d := range batch {
		h, ok := g.idx.bans[d.key]
		switch {
		case !ok || h.lifted >= d.seq:
			errs[i] = refuse(d.key, RefusedLifted, "lifted before it was written")
		case h.done > d.seq || g.enforced[d.key] > d.seq:
			errs[i] = refuse(d.key, RefusedAlready, "a newer ban of it was written first")
		default:
			kept, at = append(kept, d), append(at, i)
		}
	}
	return kept, at
}

// settle puts what commit made into the index: a ban written is the
// prefix's in force unless a newer decision holds it; one not written
// gives the prefix back to what its decision replaced.
func (g *Guard) settle(batch []decision, made []*store.Ban) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for i, d := range batch {
		if g.enforced[d.key] <= d.seq {
			delete(g.enforced, d.key)
		}
		h, ok := g.idx.bans[d.key]
		if !ok || h.lifted >= d.seq {
			continue // lifted meanwhile
		}
		newest := h.seq == d.seq
		if b := made[i]; b != nil {
			h.done = max(h.done, d.seq)
			if newest {
				h.expires, h.start, h.nth = expiresNano(b.Expires), b.Start.UnixNano(), int32(b.Count)
				delete(g.idx.before, d.key)
			}
			g.idx.put(d.key, h)
			continue
		}
		if !newest {
			continue
		}
		if e, ok := g.idx.before[d.key]; ok {
			e.seq, e.done, e.lifted = h.seq, h.done, h.lifted
			g.idx.put(d.key, e)
			delete(g.idx.before, d.key)
		} else {
			g.idx.lift(d.key) // nothing before it: no ban
		}
	}
}

func expiresNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// enforce makes batch's bans in the kernel, and returns them in batch's
// order (nil where the kernel refused one). A ban starts at its
// decision's time: a backlog's ban at its line's. One whose end is
// already past (a backlog's, long ago) is not enforced but returned, to
// be recorded (it counts for escalation as it would have live) without
// an alert, nor shared.
func (g *Guard) enforce(ctx context.Context, batch []decision, now time.Time) ([]*store.Ban, error) {
	bans := make([]*store.Ban, len(batch))
	var els []ban.Element
	var in []int // els[k] is bans[in[k]]
	for i, d := range batch {
		// Milliseconds are precise enough for a ban, and its records
		// are shorter (100,000 of them in a wave).
		start := d.at.Truncate(time.Millisecond)
		b := &store.Ban{Prefix: d.key, Start: start, Reason: d.reason, Attempts: d.sum, Users: d.users, Evidence: d.evidence, Origin: d.origin}
		el := ban.Element{Prefix: d.key}
		if !d.permanent {
			b.Expires = start.Add(max(d.dur, time.Second))
			// Never an element without a timeout for a ban with an end;
			// whole seconds, as Restore writes them.
			if el.Timeout = b.Expires.Sub(now).Round(time.Second); el.Timeout < time.Second {
				bans[i] = b // over already
				continue
			}
		}
		bans[i] = b
		els, in = append(els, el), append(in, i)
	}
	if len(els) == 0 {
		return bans, nil
	}
	if err := g.fw.Ban(ctx, els); err != nil {
		if len(batch) == 1 {
			return make([]*store.Ban, 1), fmt.Errorf("ban %s: %w", batch[0].key, err)
		}
		// One element the kernel refuses must not sink the batch: each
		// goes alone, and only those in the kernel are recorded.
		for k := range els {
			if err := g.fw.Ban(ctx, els[k:k+1]); err != nil {
				g.log.Error("ban", "prefix", els[k].Prefix.String(), "err", err)
				bans[in[k]] = nil
			}
		}
	}
	return bans, nil
}

// recordMade records the bans enforce made of batch (with their alerts
// and what the fleet hears of them), logs them and tells OnBan; it
// returns them, or none and the error when the store failed.
func (g *Guard) recordMade(cfg *Config, batch []decision, bans []*store.Ban, now time.Time) ([]*store.Ban, error) {
	record := g.record
	if cfg.DryRun {
		record = g.recordDryRun
		for i, b := range bans {
			if b != nil {
				b.Count = int(batch[i].nth)
			}
		}
	}
	if err := record(cfg, slices.DeleteFunc(slices.Clone(bans), func(b *store.Ban) bool { return b == nil }), now); err != nil {
		return make([]*store.Ban, len(batch)), fmt.Errorf("ban %s%s: %w", batch[0].key, more(len(batch)), err)
	}
	for _, b := range bans {
		if b != nil {
			g.log.Info("banned", "prefix", b.Prefix.String(), "for", durationText(b), "nth", b.Count, "origin", b.Origin, "reason", b.Reason, "users", b.Users)
			if cfg.OnBan != nil {
				cfg.OnBan(b.Origin)
			}
		}
	}
	return bans, nil
}

// record writes bans, their alerts and what the fleet hears of them in
// one transaction; a ban over by now gets neither.
func (g *Guard) record(cfg *Config, bans []*store.Ban, now time.Time) error {
	if len(bans) == 0 {
		return nil
	}
	var share func(*store.Ban) []byte
	if cfg.Share != nil {
		share = func(b *store.Ban) []byte {
			if IsPeer(b.Origin) || !b.Active(now) { // another host's: never sent back
				return nil
			}
			return cfg.Share(b)
		}
	}
	ids, err := g.db.RecordBans(bans, func(b *store.Ban) []byte {
		if cfg.Alerts == nil || !b.Active(now) {
			return nil
		}
		m := cfg.Alerts.BanMessage(BanAlert(*b), b.Start)
		if m != nil { // the alert refers to the ban's record instead of copying it
			m.Ban, m.BanRef = nil, store.BanRef(b)
		}
		return m.Marshal()
	}, share)
	if err != nil {
		return err
	}
	g.countBans(bans)
	if slices.ContainsFunc(ids, func(id uint64) bool { return id != 0 }) && cfg.Wake != nil {
		cfg.Wake()
	}
	return nil
}

// recordDryRun keeps what a dry run would have banned apart from the bans
// (store.RecordDryRun), with its alert ("dry run: would ban"); nothing is
// shared, nor counted as a ban.
func (g *Guard) recordDryRun(cfg *Config, bans []*store.Ban, now time.Time) error {
	if len(bans) == 0 {
		return nil
	}
	ids, err := g.db.RecordDryRun(bans, func(b *store.Ban) []byte {
		if cfg.Alerts == nil || !b.Active(now) {
			return nil
		}
		a := BanAlert(*b)
		a.DryRun = true
		return cfg.Alerts.BanMessage(a, b.Start).Marshal()
	})
	if err != nil {
		return err
	}
	if slices.ContainsFunc(ids, func(id uint64) bool { return id != 0 }) && cfg.Wake != nil {
		cfg.Wake()
	}
	return nil
}

// more is " and N more" for a batch of n, or "".
func more(n int) string {
	if n <= 1 {
		return ""
	}
	return fmt.Sprintf(" and %d more", n-1)
}

// Ban bans p now, for d (0 or less: by this host's policy), as an
// administrator asked: BanMany of one Request.
func (g *Guard) Ban(ctx context.Context, p netip.Prefix, d time.Duration, reason string) (*store.Ban, error) {
	bans, errs := g.BanMany(ctx, []Request{{Prefix: p, For: d, Reason: reason, Origin: Admin}})
	return bans[0], errs[0]
}

// manualBatch is how many requested bans go into one netlink batch and
// one transaction, as the group commit of detected bans.
const manualBatch = 4096

// BanMany passes each request through the gate and makes those it admits,
// at the cost of one netlink batch and one transaction per manualBatch
// bans (a report of an archive may hand over tens of thousands, a peer a
// replay of its history). It returns, in reqs' order, each ban made or
// why not (a *Refusal when the gate refused it).
func (g *Guard) BanMany(ctx context.Context, reqs []Request) ([]*store.Ban, []error) {
	bans, errs := make([]*store.Ban, len(reqs)), make([]error, len(reqs))
	if err := g.load(); err != nil {
		for i := range errs {
			errs[i] = err
		}
		return bans, errs
	}
	for lo := 0; lo < len(reqs); lo += manualBatch {
		hi := min(lo+manualBatch, len(reqs))
		batch, at := g.admitAll(reqs[lo:hi], errs[lo:hi])
		if len(batch) == 0 {
			continue
		}
		made, cerrs := g.commit(ctx, batch)
		for i, j := range at {
			bans[lo+j], errs[lo+j] = made[i], cerrs[i]
		}
	}
	return bans, errs
}

// admitPiece is how many requests admitAll passes through the gate under
// one hold of its lock: a line's decision (decide, admitDetected, urgent
// takers of the lock) waits for a piece at most, never for a peer's whole
// batch of a thousand, and the next piece steps aside for it.
const admitPiece = 64

// admitAll passes reqs through the gate, a piece at a time (admitPiece),
// and returns the decisions admitted with where each was in reqs; the
// refusals go into errs.
func (g *Guard) admitAll(reqs []Request, errs []error) ([]decision, []int) {
	cfg := g.cfg.Load()
	now := g.now()
	keys := make([]netip.Prefix, len(reqs))
	for i, r := range reqs {
		keys[i] = ban.Unmap(r.Prefix)
	}
	offs, err := g.db.Offenders(keys) // for the lengths by policy
	if err != nil {
		for i := range errs {
			errs[i] = err
		}
		return nil, nil
	}
	var batch []decision
	var at []int
	seen := make(map[netip.Prefix]bool, len(reqs))
	admit := func(i int) {
		r := reqs[i]
		d := decision{act: actBan, key: r.Prefix, at: now, reason: r.Reason, origin: r.Origin, dur: r.For,
			permanent: r.Permanent, until: r.Until, force: r.Force, self: r.Self}
		if d.reason == "" {
			d.reason = "banned by the administrator"
		}
		if d.dur <= 0 {
			d.dur = -1
		}
		var why *Refusal
		if seen[keys[i]] {
			why = refuse(keys[i], RefusedTwice, "asked for twice")
		} else if why = g.admit(cfg, &d, offs[i]); why == nil {
			seen[d.key] = true
			batch, at = append(batch, d), append(at, i)
			return
		}
		g.refuse[r.Origin+" "+why.Code]++
		errs[i] = why
	}
	for lo := 0; lo < len(reqs); lo += admitPiece {
		func() {
			g.mu.LockAside()
			defer g.mu.Unlock()
			for i := lo; i < min(lo+admitPiece, len(reqs)); i++ {
				admit(i)
			}
		}()
	}
	return batch, at
}

// Allowlisted reports whether the allowlist covers p.
func (g *Guard) Allowlisted(p netip.Prefix) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.allow.Covers(ban.Unmap(p))
}

// ErrAllowlisted is returned when asked to ban an allowlisted prefix.
var ErrAllowlisted = errors.New("the prefix is on the allowlist")

// Refused returns how many bans the gate refused, by "origin code"
// (peers' origins as they are).
func (g *Guard) Refused() map[string]int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return maps.Clone(g.refuse)
}

// Unban lifts p's ban in the kernel and the store, whoever made it, as an
// administrator asked, and forgets its recent attempts so the next typo
// does not ban again at once. It returns store.ErrNotFound when p had no
// recorded ban (the kernel element, if any, is still removed).
func (g *Guard) Unban(ctx context.Context, p netip.Prefix) error { return g.unban(ctx, p, "") }

// ErrNotTheirs is UnbanRemote's answer for a ban the peer did not make
// (made here, by another peer, or none in force).
var ErrNotTheirs = errors.New("not that peer's ban")

// UnbanRemote lifts p's ban as the peer origin (PeerOrigin(host)) asked:
// only a ban that peer made, and never shared again. Any other ban of p is
// kept (ErrNotTheirs).
func (g *Guard) UnbanRemote(ctx context.Context, p netip.Prefix, origin string) error {
	if err := g.load(); err != nil {
		return err
	}
	return g.unban(ctx, p, origin)
}

// unban lifts p's ban; a peer (by) only its own.
func (g *Guard) unban(ctx context.Context, p netip.Prefix, by string) error {
	p = ban.Unmap(p)
	if by != "" {
		g.mu.Lock()
		h, ok := g.idx.get(p, g.now().UnixNano())
		g.mu.Unlock()
		if !ok || h.origin != by {
			return ErrNotTheirs
		}
	}
	lifted, err := g.lift(ctx, []netip.Prefix{p}, by == "")
	if err == nil && len(lifted) == 0 {
		err = store.ErrNotFound
	}
	if err == nil {
		g.log.Info("unbanned", "prefix", p.String(), "by", cmp.Or(by, "admin"))
	}
	return err
}

// UnbanMany lifts the bans of ps, whoever made them, as an administrator
// asked, in one netlink batch (per 1,024) and one transaction, and
// returns those that had a ban (the kernel's elements are removed in any
// case).
func (g *Guard) UnbanMany(ctx context.Context, ps []netip.Prefix) ([]netip.Prefix, error) {
	for i := range ps {
		ps[i] = ban.Unmap(ps[i])
	}
	lifted, err := g.lift(ctx, ps, true)
	for _, p := range lifted {
		g.log.Info("unbanned", "prefix", p.String(), "by", "admin")
	}
	return lifted, err
}

// lift removes ps from the kernel, the gate and the store (a dry run's
// record in a dry run), forgets their recent attempts, and tells the
// fleet when share.
func (g *Guard) lift(ctx context.Context, ps []netip.Prefix, share bool) ([]netip.Prefix, error) {
	turn, err := func() (uint64, error) {
		g.fwMu.Lock()
		defer g.fwMu.Unlock()
		if err := g.fw.Unban(ctx, ps); err != nil {
			return 0, fmt.Errorf("unban %s%s: %w", ps[0], more(len(ps)), err)
		}
		g.mu.Lock()
		for _, p := range ps {
			g.idx.lift(p)
			g.win.Reset(p)
			delete(g.ev, p)
		}
		g.mu.Unlock()
		return g.turns.take(), nil
	}()
	if err != nil {
		return nil, err
	}
	g.turns.wait(turn)
	defer g.turns.done()
	cfg := g.cfg.Load()
	if cfg.DryRun {
		return g.db.LiftDryRun(ps)
	}
	var msg func(netip.Prefix) []byte
	if share && cfg.ShareUnban != nil {
		msg = cfg.ShareUnban
	}
	return g.db.LiftMany(ps, msg)
}

// Banned is a ban in force as the gate holds it.
type Banned struct {
	Prefix  netip.Prefix
	Origin  string
	Expires time.Time // zero: permanent
}

// BansAt returns the bans in force of p itself, those inside it
// (narrower), and those holding it (wider).
func (g *Guard) BansAt(p netip.Prefix) (own *Banned, inside, holding []Banned, err error) {
	if err := g.load(); err != nil {
		return nil, nil, nil, err
	}
	p = ban.Unmap(p)
	t := g.now().UnixNano()
	g.mu.Lock()
	defer g.mu.Unlock()
	banned := func(q netip.Prefix, h held) Banned {
		b := Banned{Prefix: q, Origin: h.origin}
		if h.expires != 0 {
			b.Expires = time.Unix(0, h.expires)
		}
		return b
	}
	if h, ok := g.idx.get(p, t); ok {
		b := banned(p, h)
		own = &b
	}
	for _, q := range g.idx.narrower(p, t, func(int) bool { return true }) {
		h, _ := g.idx.get(q, t)
		inside = append(inside, banned(q, h))
	}
	for bits := range p.Bits() {
		w, _ := p.Addr().Prefix(bits)
		if h, ok := g.idx.get(w, t); ok {
			holding = append(holding, banned(w, h))
		}
	}
	return own, inside, holding, nil
}

// InForce lists the bans in force as the gate holds them.
func (g *Guard) InForce() ([]Banned, error) {
	if err := g.load(); err != nil {
		return nil, err
	}
	t := g.now().UnixNano()
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]Banned, 0, len(g.idx.bans))
	for p, h := range g.idx.bans {
		if h.active(t) {
			b := Banned{Prefix: p, Origin: h.origin}
			if h.expires != 0 {
				b.Expires = time.Unix(0, h.expires)
			}
			out = append(out, b)
		}
	}
	return out, nil
}

// load fills the gate's index with the store's bans in force, once
// (Restore does it at the daemon's start; a command run without a daemon
// does it at its first ban).
func (g *Guard) load() error {
	g.loadMu.Lock()
	defer g.loadMu.Unlock()
	if g.loaded {
		return nil
	}
	bans, damaged, err := g.inForce(g.now())
	if err != nil {
		return fmt.Errorf("read the bans in force: %w", err)
	}
	g.warnDamaged(damaged)
	g.hold(bans)
	g.loaded = true
	return nil
}

// inForce is the store's bans in force at now (expired ones taken out): a
// dry run's own, else the real ones; and the records left out that do
// not decode.
func (g *Guard) inForce(now time.Time) ([]store.Ban, store.Damaged, error) {
	if g.cfg.Load().DryRun {
		return g.db.DryRunBans(now)
	}
	if err := g.db.Expire(now); err != nil {
		return nil, store.Damaged{}, err
	}
	return g.db.InForce(now)
}

// warnDamaged logs each ban record of d, left out of a read because it
// does not decode, and how many there are: the other bans go on (into
// the kernel, at a restore), and `sshguard-go unban PREFIX` deletes one.
func (g *Guard) warnDamaged(d store.Damaged) {
	if d.N == 0 {
		return
	}
	for _, k := range d.Keys {
		g.log.Warn("left out a ban record that does not decode", "key", k)
	}
	g.log.Warn("ban records that do not decode were left out; `sshguard-go unban PREFIX` deletes the record of PREFIX", "count", d.N)
}

// hold puts bans in force into the index, where it has none of theirs
// (a decision waiting to be written keeps its hold).
func (g *Guard) hold(bans []store.Ban) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, b := range bans {
		p := ban.Unmap(b.Prefix)
		if _, ok := g.idx.bans[p]; ok {
			continue
		}
		g.idx.seq++
		g.idx.put(p, held{expires: expiresNano(b.Expires), start: b.Start.UnixNano(), origin: b.Origin, seq: g.idx.seq, done: g.idx.seq, nth: int32(b.Count)})
	}
}

// Prune forgets the bans that ended, in the log's time as far as it was
// read (a backlog read from its start still sees the bans of its past).
func (g *Guard) Prune() {
	g.mu.Lock()
	defer g.mu.Unlock()
	t := g.now()
	if !g.latest.IsZero() && g.latest.Before(t) {
		t = g.latest
	}
	g.idx.prune(t.Add(-time.Minute).UnixNano())
}

// Lister is implemented by firewalls that can list what the kernel holds.
type Lister interface {
	List() ([]ban.Element, error)
}

// Restore puts every active ban of the store back in the kernel with its
// remaining time (after a reboot the set is empty; after a restart this
// refreshes it). Bans with less than a second left are left to expire. It
// returns how many were restored.
//
// Elements in the kernel set that the store does not know (the database
// was lost or replaced while the table stayed) are kept and recorded, with
// the time the kernel has left for them: dropping them would silently free
// attackers, and `sshguard-go unban` lifts them like any other ban.
//
// It is the daemon's first work at start, and quick: the bans are read
// from their compact records in the store, 4,096 at a time, each group
// written to the kernel while the next is read.
func (g *Guard) Restore(ctx context.Context) (int, error) {
	now := g.now()
	if g.cfg.Load().DryRun { // nothing of a dry run's goes into the kernel
		return 0, g.load()
	}
	// No commit's kernel stage meanwhile (a restore at run time, the
	// table found gone, reads the kernel and writes it whole), and every
	// commit already in the kernel written to the store first: their
	// elements went into the table that is gone, and their records must
	// be read here to be restored. (No store stage takes fwMu.)
	g.fwMu.Lock()
	defer g.fwMu.Unlock()
	turn := g.turns.take()
	g.turns.wait(turn)
	defer g.turns.done()
	if err := g.db.Expire(now); err != nil {
		return 0, fmt.Errorf("restore: %w", err)
	}
	var kernel []ban.Element // what the kernel held before (none after a reboot)
	if l, ok := g.fw.(Lister); ok {
		var err error
		if kernel, err = l.List(); err != nil {
			return 0, fmt.Errorf("restore: %w", err)
		}
	}
	groups := make(chan []store.Ban, 2)
	readErr := make(chan error, 1)
	var damaged store.Damaged // set before readErr is sent
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		defer close(groups)
		var err error
		damaged, err = g.db.EachInForce(now, restoreGroup, func(bs []store.Ban) error {
			g.hold(bs) // the gate holds them while the kernel takes those before
			select {
			case groups <- bs:
				return nil
			case <-rctx.Done():
				return rctx.Err()
			}
		})
		readErr <- err
	}()
	var known map[netip.Prefix]bool // the store's, when the kernel held some
	if len(kernel) > 0 {
		known = map[netip.Prefix]bool{}
	}
	restored, readN := 0, 0
	var werr error
	for bs := range groups {
		readN += len(bs)
		for _, b := range bs {
			if known != nil {
				known[b.Prefix] = true
			}
		}
		if werr != nil {
			continue
		}
		els := make([]ban.Element, 0, len(bs))
		for _, b := range bs {
			var left time.Duration
			if !b.Expires.IsZero() {
				if left = b.Expires.Sub(now).Round(time.Second); left < time.Second {
					continue // left to expire
				}
			}
			els = append(els, ban.Element{Prefix: b.Prefix, Timeout: left})
		}
		if werr = g.fw.Ban(ctx, els); werr != nil {
			cancel()
			continue
		}
		restored += len(els)
	}
	if err := cmp.Or(werr, <-readErr); err != nil {
		return 0, fmt.Errorf("restore %d bans: %w", readN, err)
	}
	g.warnDamaged(damaged)
	adopted, err := g.adopt(kernel, known, now)
	if err != nil {
		return 0, err
	}
	g.loadMu.Lock()
	g.hold(adopted)
	g.loaded = true
	g.loadMu.Unlock()
	return restored + len(adopted), nil
}

// restoreGroup is how many bans Restore reads, and writes to the kernel,
// at a time.
const restoreGroup = 4096

// adopt records (in groups, one transaction each) the kernel's elements
// that no ban in force in the store accounts for (known), and returns the
// bans it recorded.
func (g *Guard) adopt(kernel []ban.Element, known map[netip.Prefix]bool, now time.Time) ([]store.Ban, error) {
	if len(kernel) == 0 {
		return nil, nil
	}
	var adopted []*store.Ban
	for _, el := range kernel {
		if known[el.Prefix] {
			continue
		}
		b := &store.Ban{Prefix: el.Prefix, Start: now, Reason: "found in the kernel set at start"}
		if el.Timeout > 0 {
			b.Expires = now.Add(el.Expires)
		}
		adopted = append(adopted, b)
		g.log.Warn("adopted a ban the database did not know", "prefix", el.Prefix.String(), "expires_in", el.Expires.String())
	}
	out := make([]store.Ban, 0, len(adopted))
	for lo := 0; lo < len(adopted); lo += restoreGroup {
		part := adopted[lo:min(lo+restoreGroup, len(adopted))]
		if _, err := g.db.RecordBans(part, nil, nil); err != nil {
			return nil, fmt.Errorf("restore: %w", err)
		}
		for _, b := range part {
			out = append(out, *b)
		}
	}
	return out, nil
}

// SetAllowlist replaces the allowlist and lifts the bans in force it now
// covers (in one netlink batch and transaction).
func (g *Guard) SetAllowlist(ctx context.Context, a *ban.Allowlist) error {
	g.mu.Lock()
	g.allow = a
	g.mu.Unlock()
	bans, err := g.InForce()
	if err != nil {
		return err
	}
	var covered []netip.Prefix
	for _, b := range bans {
		if a.Covers(b.Prefix) {
			covered = append(covered, b.Prefix)
		}
	}
	if len(covered) == 0 {
		return nil
	}
	_, err = g.UnbanMany(ctx, covered)
	return err
}

func durationText(b *store.Ban) string {
	if b.Expires.IsZero() {
		return "ever"
	}
	return b.Expires.Sub(b.Start).String()
}
