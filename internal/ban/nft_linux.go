package ban

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// NFTSet bans prefixes in an nftables table of its own, `inet
// sshguard-go`, with four sets (flags timeout): ip4_32 and ip6_64, hash
// sets of the addresses and /64 networks the daemon bans by (named after
// the configured lengths), and ip4_nets and ip6_nets, interval sets for
// prefixes of any other length; a chain hooked on input drops their
// sources, and optionally one on forward. It never touches other tables.
// Bans expire in the kernel.
//
// The hash sets are what keeps a ban fast with 100,000 bans present: the
// kernel's interval sets (an rbtree) take time that grows with their size
// on every insert, a hash set does not.
type NFTSet struct {
	mu    sync.Mutex // guards conn and the objects below: one batch at a time
	conn  *nftables.Conn
	cfg   NFTConfig
	table *nftables.Table
	sets  []*banSet
	ct    *netlink.Handle // nil unless CutConnections
	// known is what we believe the sets hold, with each element's expiry
	// (zero: permanent), so that a ban does not list the whole set. nil
	// means "load it from the kernel"; a transaction that finds it wrong
	// (ENOENT: an element expired meanwhile) reloads it and is retried.
	known    map[netip.Prefix]time.Time
	bansSeen int // bans since known was last pruned of expired elements
}

// NewNFTSet connects to nftables. It does not change anything; call Ensure.
func NewNFTSet(cfg NFTConfig) (*NFTSet, error) {
	if cfg.Table == "" {
		cfg.Table = "sshguard-go"
	}
	prio := -10
	if cfg.Priority != nil {
		prio = *cfg.Priority
	}
	cfg.Priority = &prio // its own copy
	if cfg.IPv4Bits == 0 {
		cfg.IPv4Bits = 32
	}
	if cfg.IPv6Bits == 0 {
		cfg.IPv6Bits = 64
	}
	if cfg.IPv4Bits < 1 || cfg.IPv4Bits > 32 || cfg.IPv6Bits < 1 || cfg.IPv6Bits > 128 {
		return nil, fmt.Errorf("nftables: ban prefix lengths /%d and /%d out of range", cfg.IPv4Bits, cfg.IPv6Bits)
	}
	var opts []nftables.ConnOption
	if cfg.NetNSFd != 0 {
		opts = append(opts, nftables.WithNetNSFd(cfg.NetNSFd))
	}
	opts = append(opts, nftables.AsLasting())
	conn, err := nftables.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("nftables: %w", err)
	}
	n := &NFTSet{conn: conn, cfg: cfg}
	if cfg.CutConnections {
		if n.ct, err = conntrackHandle(cfg); err != nil {
			conn.CloseLasting()
			return nil, fmt.Errorf("conntrack: %w", err)
		}
	}
	n.table = &nftables.Table{Name: cfg.Table, Family: nftables.TableFamilyINet}
	n.sets = []*banSet{
		newBanSet(n.table, false, cfg.IPv4Bits), newBanSet(n.table, true, cfg.IPv6Bits),
		newBanSet(n.table, false, 0), newBanSet(n.table, true, 0),
	}
	return n, nil
}

// banSet is one of our sets: a hash set of prefixes of one length (keyed
// by their masked address) or an interval set of prefixes of any length.
type banSet struct {
	set  *nftables.Set
	v6   bool
	bits int // the length of a hash set's prefixes; 0 for an interval set
}

// setComment marks the sets sshguard-go creates: a table is taken for
// sshguard-go's only when what it holds is marked so (or carries the names
// of an earlier release's sets).
const setComment = "sshguard-go"

func newBanSet(t *nftables.Table, v6 bool, bits int) *banSet {
	s := &nftables.Set{Table: t, KeyType: nftables.TypeIPAddr, HasTimeout: true, Name: "ip4_", Comment: setComment}
	if v6 {
		s.KeyType, s.Name = nftables.TypeIP6Addr, "ip6_"
	}
	if bits == 0 {
		s.Interval, s.Name = true, s.Name+"nets"
	} else {
		s.Name += strconv.Itoa(bits)
	}
	return &banSet{set: s, v6: v6, bits: bits}
}

// holds reports whether p belongs in s.
func (s *banSet) holds(p netip.Prefix) bool {
	return p.Addr().Is6() == s.v6 && (s.bits == 0 || p.Bits() == s.bits)
}

// elements are the set elements for p (masked).
func (s *banSet) elements(p netip.Prefix, timeout time.Duration) []nftables.SetElement {
	if s.bits != 0 {
		return []nftables.SetElement{{Key: p.Addr().AsSlice(), Timeout: timeout}}
	}
	return keys(p, timeout)
}

// match is the rule that drops a source in s: `meta nfproto <proto>
// <ip|ip6> saddr [& mask] @set counter drop`.
func (s *banSet) match() []expr.Any {
	proto, off, size := byte(unix.NFPROTO_IPV4), uint32(12), uint32(4)
	if s.v6 {
		proto, off, size = unix.NFPROTO_IPV6, 8, 16
	}
	e := []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: size},
	}
	if s.bits != 0 && s.bits != int(size)*8 {
		mask := net.CIDRMask(s.bits, int(size)*8)
		e = append(e, &expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: size, Mask: mask, Xor: make([]byte, size)})
	}
	return append(e,
		&expr.Lookup{SourceRegister: 1, SetName: s.set.Name, SetID: s.set.ID},
		&expr.Counter{},
		&expr.Verdict{Kind: expr.VerdictDrop},
	)
}

// setFor returns the set p belongs in.
func (n *NFTSet) setFor(p netip.Prefix) *banSet {
	for _, s := range n.sets {
		if s.holds(p) {
			return s
		}
	}
	return nil // not reached: the interval sets hold every length
}

// Close releases the netlink connection.
func (n *NFTSet) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ct != nil {
		n.ct.Close()
	}
	return n.conn.CloseLasting()
}

// Ensure creates the table, sets, chains and rules if they are missing, and
// repairs the chains' rules, in one atomic batch. Existing set elements are
// kept.
//
// A table of that name that sshguard-go did not create (the
// administrator's `inet filter`, a typo in firewall.table) is refused with
// ErrForeignTable, and nothing in it is touched.
func (n *NFTSet) Ensure() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.checkOwned(); err != nil {
		return err
	}
	c := n.conn
	c.AddTable(n.table)
	for _, s := range n.sets {
		if err := c.AddSet(s.set, nil); err != nil {
			return fmt.Errorf("nftables: add set: %w", err)
		}
	}
	hooks := []*nftables.ChainHook{nftables.ChainHookInput}
	names := []string{"input"}
	if n.cfg.Forward {
		hooks = append(hooks, nftables.ChainHookForward)
		names = append(names, "forward")
	}
	prio := nftables.ChainPriority(*n.cfg.Priority)
	// Chains of ours from another configuration (forward no longer
	// wanted, another priority, which a chain cannot change) go first.
	if chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyINet); err == nil {
		for _, ch := range chains {
			if ch.Table.Name != n.cfg.Table {
				continue
			}
			if i := slices.Index(names, ch.Name); i < 0 || ch.Priority == nil || *ch.Priority != prio ||
				ch.Hooknum == nil || *ch.Hooknum != *hooks[i] {
				c.FlushChain(ch)
				c.DelChain(ch)
			}
		}
	}
	for i, hook := range hooks {
		policy := nftables.ChainPolicyAccept
		ch := c.AddChain(&nftables.Chain{
			Name: names[i], Table: n.table, Type: nftables.ChainTypeFilter,
			Hooknum: hook, Priority: &prio, Policy: &policy,
		})
		c.FlushChain(ch)
		for _, s := range n.sets {
			c.AddRule(&nftables.Rule{Table: n.table, Chain: ch, Exprs: s.match()})
		}
	}
	// Sets of ours no rule uses any more (the ban lengths changed, or an
	// older layout) go; the bans they held come back from the store.
	if old, err := c.GetSets(n.table); err == nil {
		for _, o := range old {
			if !slices.ContainsFunc(n.sets, func(s *banSet) bool { return s.set.Name == o.Name }) {
				c.DelSet(o)
			}
		}
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables: create table %s: %w", n.cfg.Table, err)
	}
	n.known = nil // the table may have been recreated empty
	return nil
}

// ErrForeignTable is returned by Ensure when a table of the configured
// name exists and was not created by sshguard-go.
var ErrForeignTable = errors.New("the table exists and was not created by sshguard-go")

// ourSetName reports whether name is a set name some release of
// sshguard-go used (its sets carry no mark before this one).
func ourSetName(name string) bool {
	if name == "banned4" || name == "banned6" {
		return true
	}
	for _, p := range []string{"ip4_", "ip6_"} {
		if rest, ok := strings.CutPrefix(name, p); ok {
			if rest == "nets" {
				return true
			}
			_, err := strconv.Atoi(rest)
			return err == nil
		}
	}
	return false
}

// checkOwned returns nil if our table does not exist or is one that
// sshguard-go made: its sets are ours (marked, or named as a release of
// ours named them) and its chains are input or forward base chains of
// ours (filter, policy accept). An empty table is not ours.
func (n *NFTSet) checkOwned() error {
	t, err := n.conn.ListTableOfFamily(n.cfg.Table, nftables.TableFamilyINet)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("nftables: list table %s: %w", n.cfg.Table, err)
	}
	foreign := func(what string) error {
		return fmt.Errorf("nftables table inet %s: %w (it holds %s); sshguard-go only manages a table of its own: set firewall.table (or --table) to a name no other table has",
			n.cfg.Table, ErrForeignTable, what)
	}
	sets, err := n.conn.GetSets(t)
	if err != nil {
		return fmt.Errorf("nftables: list sets of %s: %w", n.cfg.Table, err)
	}
	for _, s := range sets {
		if s.Comment != setComment && !ourSetName(s.Name) {
			return foreign(fmt.Sprintf("set %q", s.Name))
		}
	}
	chains, err := n.conn.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		return fmt.Errorf("nftables: list chains: %w", err)
	}
	mine := 0
	for _, ch := range chains {
		if ch.Table.Name != n.cfg.Table {
			continue
		}
		if (ch.Name != "input" && ch.Name != "forward") || ch.Hooknum == nil || ch.Type != nftables.ChainTypeFilter ||
			(ch.Policy != nil && *ch.Policy != nftables.ChainPolicyAccept) {
			return foreign(fmt.Sprintf("chain %q", ch.Name))
		}
		mine++
	}
	if mine == 0 && len(sets) == 0 {
		return foreign("nothing sshguard-go made")
	}
	return nil
}

// Exists reports whether our table, both sets and the input chain exist.
func (n *NFTSet) Exists() (bool, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, err := n.conn.ListTableOfFamily(n.cfg.Table, nftables.TableFamilyINet); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return false, nil
		}
		return false, fmt.Errorf("nftables: list table: %w", err)
	}
	for _, s := range n.sets {
		if _, err := n.conn.GetSetByName(n.table, s.set.Name); err != nil {
			return false, nil
		}
	}
	chains, err := n.conn.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		return false, fmt.Errorf("nftables: list chains: %w", err)
	}
	for _, ch := range chains {
		if ch.Table.Name == n.cfg.Table && ch.Name == "input" {
			return true, nil
		}
	}
	return false, nil
}

// chunk is how many prefixes go in one netlink transaction: a whole
// 100,000-prefix batch does not fit the socket buffer.
const chunk = 1024

// Ban adds elements, chunk prefixes per transaction; a prefix already in
// the set gets the new timeout (it is deleted and added again in the same
// transaction, so a longer escalated ban replaces a shorter one
// atomically). ctx is checked between chunks: the chunks already written
// stay.
//
// A timeout between 0 and 1s is refused: the kernel keeps milliseconds,
// and one that rounds to 0 would be an element without end that no ban
// accounts for (0 itself is a permanent ban, asked for as such).
func (n *NFTSet) Ban(ctx context.Context, elems []Element) error {
	for _, e := range elems {
		if e.Timeout < 0 || e.Timeout > 0 && e.Timeout < time.Second {
			return fmt.Errorf("nftables: %s: a timeout of %v (at least 1s, or 0 for a permanent ban)", e.Prefix, e.Timeout)
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ct != nil && len(elems) <= maxCut {
		ps := make([]netip.Prefix, len(elems))
		for i, e := range elems {
			ps[i] = e.Prefix.Masked()
		}
		defer cutConnections(n.ct, ps) // best effort, once the ban is in place
	}
	return inChunks(ctx, n, elems, n.ban, func(part []Element, err error) error {
		return fmt.Errorf("nftables: add %d elements: %w", len(part), err)
	})
}

// inChunks writes items chunk per transaction with write, checking ctx
// between chunks (the chunks already written stay). A chunk that fails with
// ENOENT (an element we meant to replace or delete expired in between) is
// written again once the view of the kernel is dropped; another failure
// ends the writing with fail's error. n.mu is held.
func inChunks[T any](ctx context.Context, n *NFTSet, items []T, write func([]T) error, fail func(part []T, err error) error) error {
	for len(items) > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		part := items[:min(chunk, len(items))]
		items = items[len(part):]
		err := write(part)
		if errors.Is(err, unix.ENOENT) {
			n.known = nil
			err = write(part)
		}
		if err != nil {
			return fail(part, err)
		}
	}
	return nil
}

// ban writes one chunk in one transaction.
func (n *NFTSet) ban(part []Element) error {
	if err := n.loadKnown(); err != nil {
		return err
	}
	now := time.Now()
	add, del := map[*banSet][]nftables.SetElement{}, map[*banSet][]nftables.SetElement{}
	for _, e := range part {
		p := e.Prefix.Masked()
		s := n.setFor(p)
		add[s] = append(add[s], s.elements(p, e.Timeout)...)
		if exp, ok := n.known[p]; ok && (exp.IsZero() || exp.After(now)) {
			del[s] = append(del[s], s.elements(p, 0)...)
		}
	}
	if err := n.batch(del, false); err != nil {
		return err
	}
	if err := n.batch(add, true); err != nil {
		return err
	}
	if err := n.conn.Flush(); err != nil {
		return err
	}
	for _, e := range part {
		var exp time.Time
		if e.Timeout > 0 {
			exp = now.Add(e.Timeout)
		}
		n.known[e.Prefix.Masked()] = exp
	}
	n.prune(now, len(part))
	return nil
}

// loadKnown fills known from the kernel if it is not loaded.
func (n *NFTSet) loadKnown() error {
	if n.known != nil {
		return nil
	}
	_, err := n.list()
	return err
}

// prune forgets expired elements now and then, so known does not grow
// with every ban ever made.
func (n *NFTSet) prune(now time.Time, added int) {
	n.bansSeen += added
	if n.bansSeen < 4096 || n.bansSeen < len(n.known) {
		return
	}
	n.bansSeen = 0
	for p, exp := range n.known {
		if !exp.IsZero() && !exp.After(now) {
			delete(n.known, p)
		}
	}
}

// Unban deletes prefixes, chunk per transaction. Prefixes that are not in
// the set (never banned, or already expired in the kernel) are skipped, so
// they never fail a batch; if an element expires between our view and the
// delete, the view is reloaded from the kernel and the transaction retried.
func (n *NFTSet) Unban(ctx context.Context, prefixes []netip.Prefix) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return inChunks(ctx, n, prefixes, n.unban, func(_ []netip.Prefix, err error) error {
		return fmt.Errorf("nftables: delete elements: %w", err)
	})
}

// unban deletes the prefixes of part that are present, in one transaction.
func (n *NFTSet) unban(part []netip.Prefix) error {
	if err := n.loadKnown(); err != nil {
		return err
	}
	now := time.Now()
	del := map[*banSet][]nftables.SetElement{}
	for _, p := range part {
		p = p.Masked()
		exp, ok := n.known[p]
		if !ok || (!exp.IsZero() && !exp.After(now)) {
			continue
		}
		s := n.setFor(p)
		del[s] = append(del[s], s.elements(p, 0)...)
	}
	if len(del) > 0 {
		if err := n.batch(del, false); err != nil {
			return err
		}
		if err := n.conn.Flush(); err != nil {
			return err
		}
	}
	for _, p := range part {
		delete(n.known, p.Masked())
	}
	return nil
}

// batch queues adds or deletes in the connection's pending batch.
func (n *NFTSet) batch(elems map[*banSet][]nftables.SetElement, add bool) error {
	for _, s := range n.sets {
		if len(elems[s]) == 0 {
			continue
		}
		var err error
		if add {
			err = n.conn.SetAddElements(s.set, elems[s])
		} else {
			err = n.conn.SetDeleteElements(s.set, elems[s])
		}
		if err != nil {
			return fmt.Errorf("nftables: %w", err)
		}
	}
	return nil
}

// keys returns the start and end elements of an interval set for p.
func keys(p netip.Prefix, timeout time.Duration) []nftables.SetElement {
	start := p.Addr()
	end, ok := lastAddr(p)
	s := nftables.SetElement{Key: start.AsSlice(), Timeout: timeout}
	if !ok {
		return []nftables.SetElement{s} // runs to the end of the address space
	}
	return []nftables.SetElement{s, {Key: end.AsSlice(), IntervalEnd: true}}
}

// lastAddr returns the address after the last one in p, and false when p
// reaches the end of the address space.
func lastAddr(p netip.Prefix) (netip.Addr, bool) {
	b := p.Addr().AsSlice()
	bits := p.Bits()
	for i := range b {
		if i*8 >= bits {
			b[i] = 0xff
		} else if i*8+8 > bits {
			b[i] |= 0xff >> (bits - i*8)
		}
	}
	a, _ := netip.AddrFromSlice(b)
	next := a.Next()
	return next, next.IsValid()
}

// List returns the elements in the kernel sets with their time left.
func (n *NFTSet) List() ([]Element, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.list()
}

// list reads our sets and sets known from what it read. The kernel dumps
// a big set in parts, each resuming by skipping as many elements as were
// sent; a hash table resizing or elements expiring between two parts
// shifts what is skipped, so one dump can repeat some elements and miss
// others (seen: 8% of 100,000 just after a bulk insert). A view missing a
// ban would make an unban skip it, so list dumps again until a dump
// repeats nothing and adds nothing to what the earlier ones found (at
// most four dumps), and returns the union.
func (n *NFTSet) list() ([]Element, error) {
	seen := map[netip.Prefix]Element{}
	for try := 0; try < 4; try++ {
		els, err := n.dump()
		if err != nil {
			return nil, err
		}
		repeated, added := false, false
		got := make(map[netip.Prefix]bool, len(els))
		for _, e := range els {
			repeated = repeated || got[e.Prefix]
			got[e.Prefix] = true
			if _, ok := seen[e.Prefix]; !ok {
				added = true
			}
			seen[e.Prefix] = e
		}
		if try > 0 && !repeated && !added {
			break
		}
	}
	now := time.Now()
	out := make([]Element, 0, len(seen))
	n.known = make(map[netip.Prefix]time.Time, len(seen))
	for p, e := range seen {
		out = append(out, e)
		var exp time.Time
		if e.Timeout > 0 {
			exp = now.Add(e.Expires)
		}
		n.known[p] = exp
	}
	slices.SortFunc(out, func(a, b Element) int {
		if c := a.Prefix.Addr().Compare(b.Prefix.Addr()); c != 0 {
			return c
		}
		return a.Prefix.Bits() - b.Prefix.Bits()
	})
	return out, nil
}

// dump reads every element of our sets once.
func (n *NFTSet) dump() ([]Element, error) {
	var out []Element
	for _, s := range n.sets {
		raw, err := n.conn.GetSetElements(s.set)
		if err != nil {
			return nil, fmt.Errorf("nftables: list set %s: %w", s.set.Name, err)
		}
		if s.bits == 0 {
			out = append(out, intervals(raw)...)
			continue
		}
		for _, e := range raw {
			if a, ok := netip.AddrFromSlice(e.Key); ok {
				out = append(out, Element{Prefix: netip.PrefixFrom(a, s.bits), Timeout: e.Timeout, Expires: e.Expires})
			}
		}
	}
	return out, nil
}

// intervals turns an interval set's start and end elements into prefixes.
func intervals(raw []nftables.SetElement) []Element {
	// Keys are big-endian addresses of one length: bytes order them.
	sort.Slice(raw, func(i, j int) bool {
		if c := bytes.Compare(raw[i].Key, raw[j].Key); c != 0 {
			return c < 0
		}
		return raw[i].IntervalEnd && !raw[j].IntervalEnd
	})
	var out []Element
	for i, e := range raw {
		if e.IntervalEnd {
			continue
		}
		start, ok := netip.AddrFromSlice(e.Key)
		if !ok {
			continue
		}
		var end netip.Addr // invalid: the interval runs to the end of the space
		if i+1 < len(raw) && raw[i+1].IntervalEnd {
			end, _ = netip.AddrFromSlice(raw[i+1].Key)
		}
		bits := prefixBits(start, end)
		if bits < 0 {
			continue
		}
		out = append(out, Element{Prefix: netip.PrefixFrom(start, bits), Timeout: e.Timeout, Expires: e.Expires})
	}
	return out
}

// prefixBits returns the prefix length of [start, end), end invalid
// meaning the end of the address space, or -1 if it is not a prefix.
func prefixBits(start, end netip.Addr) int {
	for bits := start.BitLen(); bits >= 0; bits-- {
		p := netip.PrefixFrom(start, bits)
		if p.Masked().Addr() != start {
			return -1
		}
		last, ok := lastAddr(p)
		if !ok && !end.IsValid() || ok && last == end {
			return bits
		}
	}
	return -1
}
