package ban

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"sync"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// NFTSet bans prefixes in an nftables table of its own: `inet
// sshguard-go` with the sets banned4 and banned6 (flags interval, timeout),
// a chain hooked on input that drops their sources, and optionally one on
// forward. It never touches other tables. Bans expire in the kernel.
type NFTSet struct {
	mu    sync.Mutex // guards conn and the objects below: one batch at a time
	conn  *nftables.Conn
	cfg   NFTConfig
	table *nftables.Table
	set4  *nftables.Set
	set6  *nftables.Set
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
	if cfg.Priority == 0 {
		cfg.Priority = -10
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
	n.set4 = &nftables.Set{Table: n.table, Name: "banned4", KeyType: nftables.TypeIPAddr, Interval: true, HasTimeout: true}
	n.set6 = &nftables.Set{Table: n.table, Name: "banned6", KeyType: nftables.TypeIP6Addr, Interval: true, HasTimeout: true}
	return n, nil
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
func (n *NFTSet) Ensure() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	c := n.conn
	c.AddTable(n.table)
	if err := c.AddSet(n.set4, nil); err != nil {
		return fmt.Errorf("nftables: add set: %w", err)
	}
	if err := c.AddSet(n.set6, nil); err != nil {
		return fmt.Errorf("nftables: add set: %w", err)
	}
	hooks := []*nftables.ChainHook{nftables.ChainHookInput}
	names := []string{"input"}
	if n.cfg.Forward {
		hooks = append(hooks, nftables.ChainHookForward)
		names = append(names, "forward")
	}
	prio := nftables.ChainPriority(n.cfg.Priority)
	for i, hook := range hooks {
		policy := nftables.ChainPolicyAccept
		ch := c.AddChain(&nftables.Chain{
			Name: names[i], Table: n.table, Type: nftables.ChainTypeFilter,
			Hooknum: hook, Priority: &prio, Policy: &policy,
		})
		c.FlushChain(ch)
		c.AddRule(&nftables.Rule{Table: n.table, Chain: ch, Exprs: dropFrom(unix.NFPROTO_IPV4, 12, 4, n.set4)})
		c.AddRule(&nftables.Rule{Table: n.table, Chain: ch, Exprs: dropFrom(unix.NFPROTO_IPV6, 8, 16, n.set6)})
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables: create table %s: %w", n.cfg.Table, err)
	}
	n.known = nil // the table may have been recreated empty
	return nil
}

// dropFrom is `meta nfproto <proto> <ip|ip6> saddr @set drop`.
func dropFrom(proto byte, off, size uint32, set *nftables.Set) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: size},
		&expr.Lookup{SourceRegister: 1, SetName: set.Name, SetID: set.ID},
		&expr.Counter{},
		&expr.Verdict{Kind: expr.VerdictDrop},
	}
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
	for _, s := range []*nftables.Set{n.set4, n.set6} {
		if _, err := n.conn.GetSetByName(n.table, s.Name); err != nil {
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
// atomically).
func (n *NFTSet) Ban(elems []Element) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ct != nil && len(elems) <= maxCut {
		ps := make([]netip.Prefix, len(elems))
		for i, e := range elems {
			ps[i] = e.Prefix.Masked()
		}
		defer cutConnections(n.ct, ps) // best effort, once the ban is in place
	}
	for len(elems) > 0 {
		part := elems[:min(chunk, len(elems))]
		elems = elems[len(part):]
		err := n.ban(part)
		if errors.Is(err, unix.ENOENT) {
			n.known = nil // an element we meant to replace had expired
			err = n.ban(part)
		}
		if err != nil {
			return fmt.Errorf("nftables: add %d elements: %w", len(part), err)
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
	var add4, add6, del4, del6 []nftables.SetElement
	for _, e := range part {
		p := e.Prefix.Masked()
		k := keys(p, e.Timeout)
		exp, ok := n.known[p]
		present := ok && (exp.IsZero() || exp.After(now))
		if p.Addr().Is4() {
			add4 = append(add4, k...)
			if present {
				del4 = append(del4, keys(p, 0)...)
			}
		} else {
			add6 = append(add6, k...)
			if present {
				del6 = append(del6, keys(p, 0)...)
			}
		}
	}
	if err := n.batch(del4, del6, false); err != nil {
		return err
	}
	if err := n.batch(add4, add6, true); err != nil {
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
	els, err := n.list()
	if err != nil {
		return err
	}
	now := time.Now()
	n.known = make(map[netip.Prefix]time.Time, len(els))
	for _, e := range els {
		var exp time.Time
		if e.Timeout > 0 {
			exp = now.Add(e.Expires)
		}
		n.known[e.Prefix] = exp
	}
	return nil
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
func (n *NFTSet) Unban(prefixes []netip.Prefix) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	for len(prefixes) > 0 {
		part := prefixes[:min(chunk, len(prefixes))]
		prefixes = prefixes[len(part):]
		err := n.unban(part)
		if errors.Is(err, unix.ENOENT) {
			n.known = nil
			err = n.unban(part)
		}
		if err != nil {
			return fmt.Errorf("nftables: delete elements: %w", err)
		}
	}
	return nil
}

// unban deletes the prefixes of part that are present, in one transaction.
func (n *NFTSet) unban(part []netip.Prefix) error {
	if err := n.loadKnown(); err != nil {
		return err
	}
	now := time.Now()
	var del4, del6 []nftables.SetElement
	for _, p := range part {
		p = p.Masked()
		exp, ok := n.known[p]
		if !ok || (!exp.IsZero() && !exp.After(now)) {
			continue
		}
		if p.Addr().Is4() {
			del4 = append(del4, keys(p, 0)...)
		} else {
			del6 = append(del6, keys(p, 0)...)
		}
	}
	if len(del4)+len(del6) > 0 {
		if err := n.batch(del4, del6, false); err != nil {
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
func (n *NFTSet) batch(v4, v6 []nftables.SetElement, add bool) error {
	for _, b := range []struct {
		set   *nftables.Set
		elems []nftables.SetElement
	}{{n.set4, v4}, {n.set6, v6}} {
		if len(b.elems) == 0 {
			continue
		}
		var err error
		if add {
			err = n.conn.SetAddElements(b.set, b.elems)
		} else {
			err = n.conn.SetDeleteElements(b.set, b.elems)
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

func (n *NFTSet) list() ([]Element, error) {
	var out []Element
	for _, s := range []*nftables.Set{n.set4, n.set6} {
		raw, err := n.conn.GetSetElements(s)
		if err != nil {
			return nil, fmt.Errorf("nftables: list set %s: %w", s.Name, err)
		}
		out = append(out, intervals(raw)...)
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
