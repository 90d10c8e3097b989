package ban

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"sshguard-go/internal/roottest"
)

// testNS creates a fresh named network namespace (never the host's) and
// returns its name and an NFTSet working in it.
func testNS(t *testing.T, cfg NFTConfig) (string, *NFTSet) {
	t.Helper()
	roottest.Require(t, "ip", "nft", "ping")
	name, f := roottest.NetNS(t, "sg-nft-")
	cfg.NetNSFd = int(f.Fd())
	n, err := NewNFTSet(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return name, n
}

// nftJSON runs `nft -j list ruleset` in the namespace.
func nftJSON(t *testing.T, ns string) string {
	t.Helper()
	out, err := exec.Command("ip", "netns", "exec", ns, "nft", "-j", "list", "ruleset").CombinedOutput()
	if err != nil {
		t.Fatalf("nft list: %v: %s", err, out)
	}
	return string(out)
}

func nft(t *testing.T, ns string, args ...string) {
	t.Helper()
	out, err := exec.Command("ip", append([]string{"netns", "exec", ns, "nft"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("nft %v: %v: %s", args, err, out)
	}
}

func listed(t *testing.T, n *NFTSet) map[netip.Prefix]Element {
	t.Helper()
	els, err := n.List()
	if err != nil {
		t.Fatal(err)
	}
	m := map[netip.Prefix]Element{}
	for _, e := range els {
		m[e.Prefix] = e
	}
	return m
}

func TestNFTCreatesItsTable(t *testing.T) {
	ns, n := testNS(t, NFTConfig{})
	if ok, err := n.Exists(); err != nil || ok {
		t.Fatalf("Exists before Ensure = %v, %v", ok, err)
	}
	if err := n.Ensure(); err != nil {
		t.Fatal(err)
	}
	if err := n.Ensure(); err != nil { // idempotent
		t.Fatalf("second Ensure: %v", err)
	}
	var rs struct {
		Nftables []map[string]json.RawMessage `json:"nftables"`
	}
	if err := json.Unmarshal([]byte(nftJSON(t, ns)), &rs); err != nil {
		t.Fatal(err)
	}
	var sets, chains, rules int
	for _, obj := range rs.Nftables {
		switch {
		case obj["set"] != nil:
			var s struct {
				Family, Table, Name, Type string
				Flags                     []string
			}
			json.Unmarshal(obj["set"], &s)
			flags := strings.Join(s.Flags, ",")
			want := map[string]string{"ip4_32": "timeout", "ip6_64": "timeout", "ip4_nets": "interval,timeout", "ip6_nets": "interval,timeout"}[s.Name]
			if s.Family != "inet" || s.Table != "sshguard-go" || flags != want {
				t.Errorf("set %+v", s)
			}
			sets++
		case obj["chain"] != nil:
			var c struct {
				Name, Hook string
				Prio       int
			}
			json.Unmarshal(obj["chain"], &c)
			if c.Name != "input" || c.Hook != "input" || c.Prio != -10 {
				t.Errorf("chain %+v", c)
			}
			chains++
		case obj["rule"] != nil:
			rules++
		}
	}
	if sets != 4 || chains != 1 || rules != 4 {
		t.Fatalf("%d sets, %d chains, %d rules; want 4, 1, 4 (ensure twice must not duplicate)", sets, chains, rules)
	}
	if ok, err := n.Exists(); err != nil || !ok {
		t.Fatalf("Exists after Ensure = %v, %v", ok, err)
	}
}

// TestNFTPriority: the input chain is hooked at the configured priority,
// 0 (nftables' "filter") included, and at -10 when none is configured.
// 0 was taken for "none" and became -10.
func TestNFTPriority(t *testing.T) {
	for _, tc := range []struct {
		prio *int
		want int
	}{{nil, -10}, {new(0), 0}, {new(-300), -300}, {new(100), 100}} {
		ns, n := testNS(t, NFTConfig{Priority: tc.prio})
		if err := n.Ensure(); err != nil {
			t.Fatal(err)
		}
		if got := chainPriority(t, ns, "input"); got != tc.want {
			t.Errorf("priority %v configured: the chain's is %d, want %d", deref(tc.prio), got, tc.want)
		}
	}
}

// deref is *p, or "unset".
func deref(p *int) any {
	if p == nil {
		return "unset"
	}
	return *p
}

// chainPriority is the priority of the chain name of our table in the
// namespace ns, as nft lists it.
func chainPriority(t *testing.T, ns, name string) int {
	t.Helper()
	var rs struct {
		Nftables []struct {
			Chain *struct {
				Table, Name string
				Prio        int
			} `json:"chain"`
		} `json:"nftables"`
	}
	if err := json.Unmarshal([]byte(nftJSON(t, ns)), &rs); err != nil {
		t.Fatal(err)
	}
	for _, obj := range rs.Nftables {
		if c := obj.Chain; c != nil && c.Table == "sshguard-go" && c.Name == name {
			return c.Prio
		}
	}
	t.Fatalf("no chain %s in the namespace's ruleset", name)
	return 0
}

func TestNFTBanExpireUnban(t *testing.T) {
	ns, n := testNS(t, NFTConfig{Forward: true})
	if err := n.Ensure(); err != nil {
		t.Fatal(err)
	}
	short := netip.MustParsePrefix("192.0.2.1/32")
	v6 := netip.MustParsePrefix("2001:db8:1:2::/64")
	perm := netip.MustParsePrefix("198.51.100.0/24")
	err := n.Ban(context.Background(), []Element{
		{Prefix: short, Timeout: 2 * time.Second},
		{Prefix: v6, Timeout: time.Hour},
		{Prefix: perm},
	})
	if err != nil {
		t.Fatal(err)
	}
	got := listed(t, n)
	if len(got) != 3 {
		t.Fatalf("listed %v", got)
	}
	if e := got[v6]; e.Timeout != time.Hour || e.Expires <= 59*time.Minute {
		t.Errorf("v6 element %+v", e)
	}
	if e := got[perm]; e.Timeout != 0 {
		t.Errorf("permanent element %+v", e)
	}
	if js := nftJSON(t, ns); !strings.Contains(js, `"2001:db8:1:2::"`) || !strings.Contains(js, `"198.51.100.0"`) {
		t.Errorf("nft does not show the elements:\n%s", js)
	}

	// A longer ban replaces the shorter one.
	if err := n.Ban(context.Background(), []Element{{Prefix: v6, Timeout: 2 * time.Hour}}); err != nil {
		t.Fatal(err)
	}
	if e := listed(t, n)[v6]; e.Timeout != 2*time.Hour {
		t.Errorf("re-banned element %+v", e)
	}

	// The kernel expires the short ban by itself.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if _, ok := listed(t, n)[short]; !ok {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, ok := listed(t, n)[short]; ok {
		t.Fatal("element did not expire")
	}

	// Unbanning the expired one, and one never banned, is not an error and
	// does not stop the rest of the batch.
	if err := n.Unban(context.Background(), []netip.Prefix{short, netip.MustParsePrefix("203.0.113.9/32"), v6}); err != nil {
		t.Fatal(err)
	}
	got = listed(t, n)
	if _, ok := got[v6]; ok || len(got) != 1 {
		t.Fatalf("after unban: %v", got)
	}

	// A timeout under a second would round to none in the kernel: refused,
	// nothing written.
	for _, d := range []time.Duration{500 * time.Microsecond, 999 * time.Millisecond, -time.Second} {
		if err := n.Ban(context.Background(), []Element{{Prefix: short, Timeout: d}}); err == nil {
			t.Errorf("a timeout of %v taken", d)
		}
	}
	if _, ok := listed(t, n)[short]; ok {
		t.Fatal("an element of a refused timeout is in the set")
	}
}

func TestNFTBatch100k(t *testing.T) {
	_, n := testNS(t, NFTConfig{})
	if err := n.Ensure(); err != nil {
		t.Fatal(err)
	}
	const count = 100000
	els := make([]Element, 0, count)
	for i := 0; i < count; i++ {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		els = append(els, Element{Prefix: netip.PrefixFrom(a, 32), Timeout: time.Hour})
	}
	start := time.Now()
	if err := n.Ban(context.Background(), els); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d elements written in %v", count, time.Since(start))
	// Listed at once, while the kernel may still be resizing the hash
	// table: every element, none twice (a single dump misses some).
	start = time.Now()
	els2, err := n.List()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d elements listed in %v", len(els2), time.Since(start))
	if got := len(listed(t, n)); got != count || len(els2) != count {
		t.Fatalf("%d elements in the set (%d listed), want %d", got, len(els2), count)
	}
	prefixes := make([]netip.Prefix, 0, count)
	for _, e := range els {
		prefixes = append(prefixes, e.Prefix)
	}
	start = time.Now()
	if err := n.Unban(context.Background(), prefixes); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d elements deleted in %v", count, time.Since(start))
	if got := len(listed(t, n)); got != 0 {
		t.Fatalf("%d elements left", got)
	}
}

// TestNFTDropsTraffic: a client in another namespace, joined by a veth
// pair, reaches the server until its address is banned, and again after
// the unban; over IPv4 and IPv6, for each kind of set: an address (hash
// set), an IPv6 /64 (hash set, the rule masks the source), and prefixes
// of other lengths (interval sets).
func TestNFTDropsTraffic(t *testing.T) {
	srv, n := testNS(t, NFTConfig{})
	cli := srv + "-c"
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v: %s", args, err, out)
		}
	}
	run("ip", "netns", "add", cli)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", cli).Run() })
	veth := fmt.Sprintf("sgv%d", rand.IntN(1e6))
	run("ip", "link", "add", veth+"a", "netns", srv, "type", "veth", "peer", "name", veth+"b", "netns", cli)
	run("ip", "-n", srv, "addr", "add", "10.201.0.1/24", "dev", veth+"a")
	run("ip", "-n", cli, "addr", "add", "10.201.0.2/24", "dev", veth+"b")
	run("ip", "-n", srv, "addr", "add", "fd00:201::1/64", "dev", veth+"a", "nodad")
	run("ip", "-n", cli, "addr", "add", "fd00:201::2:3/64", "dev", veth+"b", "nodad")
	run("ip", "-n", srv, "link", "set", veth+"a", "up")
	run("ip", "-n", cli, "link", "set", veth+"b", "up")
	reach := func(server string) bool {
		return exec.Command("ip", "netns", "exec", cli, "ping", "-c1", "-W1", server).Run() == nil
	}
	if err := n.Ensure(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ ban, server string }{
		{"10.201.0.2/32", "10.201.0.1"},
		{"fd00:201::/64", "fd00:201::1"},
		{"10.201.0.0/30", "10.201.0.1"},
		{"fd00:201::2:0/112", "fd00:201::1"},
		{"fd00:201::2:3/128", "fd00:201::1"},
	} {
		if !reach(tc.server) {
			t.Fatalf("%s: client cannot reach the server before the ban", tc.ban)
		}
		client := netip.MustParsePrefix(tc.ban)
		if err := n.Ban(context.Background(), []Element{{Prefix: client, Timeout: time.Hour}}); err != nil {
			t.Fatal(err)
		}
		if reach(tc.server) {
			t.Fatalf("%s: banned client still reaches the server", tc.ban)
		}
		if _, ok := listed(t, n)[client]; !ok {
			t.Errorf("%s not listed: %v", tc.ban, listed(t, n))
		}
		if err := n.Unban(context.Background(), []netip.Prefix{client}); err != nil {
			t.Fatal(err)
		}
		if !reach(tc.server) {
			t.Fatalf("%s: client cannot reach the server after the unban", tc.ban)
		}
	}
}

// TestNFTLayoutChanges: Ensure takes over a table left by another
// configuration or an older release: a set of the old layout referenced
// by an old rule, a forward chain no longer wanted, another priority.
func TestNFTLayoutChanges(t *testing.T) {
	ns, _ := testNS(t, NFTConfig{})
	old := filepath.Join(t.TempDir(), "old.nft")
	os.WriteFile(old, []byte(`table inet sshguard-go {
	set banned4 { type ipv4_addr; flags interval,timeout; elements = { 192.0.2.1 timeout 1h } }
	chain input { type filter hook input priority -10; policy accept; ip saddr @banned4 drop; }
	chain forward { type filter hook forward priority -10; policy accept; ip saddr @banned4 drop; }
}
`), 0o600)
	nft(t, ns, "-f", old)
	f, err := os.Open("/run/netns/" + ns)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := NewNFTSet(NFTConfig{Priority: new(-20), NetNSFd: int(f.Fd())})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.Ensure(); err != nil {
		t.Fatalf("Ensure over the old layout: %v", err)
	}
	out, _ := exec.Command("ip", "netns", "exec", ns, "nft", "list", "table", "inet", "sshguard-go").CombinedOutput()
	js := string(out)
	if strings.Contains(js, "banned4") || strings.Contains(js, "chain forward") || !strings.Contains(js, "hook input priority -20;") ||
		!strings.Contains(js, "@ip4_32") {
		t.Fatalf("after Ensure:\n%s", js)
	}
	if ok, err := m.Exists(); !ok || err != nil {
		t.Fatalf("Exists = %v, %v", ok, err)
	}
}

// TestNFTPrefixLengths: with other ban lengths configured, the hash sets
// follow them (a /24 ban is one hash element, matched through the mask),
// and the sets of the old layout go at the next Ensure.
func TestNFTPrefixLengths(t *testing.T) {
	ns, n := testNS(t, NFTConfig{})
	if err := n.Ensure(); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open("/run/netns/" + ns)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := NewNFTSet(NFTConfig{IPv4Bits: 24, IPv6Bits: 48, NetNSFd: int(f.Fd())})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.Ensure(); err != nil {
		t.Fatal(err)
	}
	js := nftJSON(t, ns)
	for _, want := range []string{`"ip4_24"`, `"ip6_48"`, `"ip4_nets"`, `"ip6_nets"`} {
		if !strings.Contains(js, want) {
			t.Errorf("no set %s:\n%s", want, js)
		}
	}
	if strings.Contains(js, `"ip4_32"`) || strings.Contains(js, `"ip6_64"`) {
		t.Errorf("sets of the old layout left:\n%s", js)
	}
	p4, p6 := netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("2001:db8:7::/48")
	if err := m.Ban(context.Background(), []Element{{Prefix: p4, Timeout: time.Hour}, {Prefix: p6}}); err != nil {
		t.Fatal(err)
	}
	out, _ := exec.Command("ip", "netns", "exec", ns, "nft", "list", "set", "inet", "sshguard-go", "ip4_24").CombinedOutput()
	if !strings.Contains(string(out), "198.51.100.0 timeout 1h") {
		t.Errorf("ip4_24:\n%s", out)
	}
	if got := listed(t, m); len(got) != 2 || got[p6].Timeout != 0 || got[p4].Timeout != time.Hour {
		t.Errorf("listed %v", got)
	}
	out, _ = exec.Command("ip", "netns", "exec", ns, "nft", "list", "chain", "inet", "sshguard-go", "input").CombinedOutput()
	if !strings.Contains(string(out), "ip saddr & 255.255.255.0 == @ip4_24") || !strings.Contains(string(out), "ip6 saddr & ffff:ffff:ffff:: == @ip6_48") {
		t.Errorf("rules:\n%s", out)
	}
}

func TestNFTRestoredAfterTableDeleted(t *testing.T) {
	ns, n := testNS(t, NFTConfig{})
	if err := n.Ensure(); err != nil {
		t.Fatal(err)
	}
	nft(t, ns, "delete", "table", "inet", "sshguard-go")
	if ok, err := n.Exists(); err != nil || ok {
		t.Fatalf("Exists after delete = %v, %v", ok, err)
	}
	if err := n.Ensure(); err != nil {
		t.Fatal(err)
	}
	p := netip.MustParsePrefix("192.0.2.7/32")
	if err := n.Ban(context.Background(), []Element{{Prefix: p, Timeout: time.Hour}}); err != nil {
		t.Fatal(err)
	}
	if _, ok := listed(t, n)[p]; !ok {
		t.Fatal("ban not in restored set")
	}
	// Someone else's table is never touched.
	nft(t, ns, "add", "table", "ip", "other")
	if err := n.Ensure(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(nftJSON(t, ns), `"name": "other"`) && !strings.Contains(nftJSON(t, ns), `"name":"other"`) {
		t.Fatal("other table gone")
	}
}

func TestNFTCutConnections(t *testing.T) {
	ns, n := testNS(t, NFTConfig{CutConnections: true})
	_ = ns
	if err := n.Ensure(); err != nil {
		t.Fatal(err)
	}
	flow := func(src string) *netlink.ConntrackFlow {
		return &netlink.ConntrackFlow{
			FamilyType: unix.AF_INET,
			Forward:    netlink.IPTuple{SrcIP: net.ParseIP(src).To4(), DstIP: net.ParseIP("10.0.0.1").To4(), Protocol: unix.IPPROTO_UDP, SrcPort: 4000, DstPort: 22},
			Reverse:    netlink.IPTuple{SrcIP: net.ParseIP("10.0.0.1").To4(), DstIP: net.ParseIP(src).To4(), Protocol: unix.IPPROTO_UDP, SrcPort: 22, DstPort: 4000},
			TimeOut:    100,
		}
	}
	for _, src := range []string{"192.0.2.1", "198.51.100.1"} {
		if err := n.ct.ConntrackCreate(netlink.ConntrackTable, netlink.FAMILY_V4, flow(src)); err != nil {
			t.Fatalf("create conntrack entry: %v", err)
		}
	}
	if before, _ := n.ct.ConntrackTableList(netlink.ConntrackTable, netlink.FAMILY_V4); len(before) != 2 {
		t.Fatalf("%d conntrack entries created, want 2", len(before))
	}
	if err := n.Ban(context.Background(), []Element{{Prefix: netip.MustParsePrefix("192.0.2.1/32"), Timeout: time.Hour}}); err != nil {
		t.Fatal(err)
	}
	flows, err := n.ct.ConntrackTableList(netlink.ConntrackTable, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	var srcs []string
	for _, f := range flows {
		srcs = append(srcs, f.Forward.SrcIP.String())
	}
	if len(srcs) != 1 || srcs[0] != "198.51.100.1" {
		t.Fatalf("conntrack entries left: %v, want only 198.51.100.1", srcs)
	}
}

// TestNFTElementsGoneBehindOurBack: an element that disappears without us
// (it expired a moment early, or someone deleted it) fails neither a
// re-ban, which would delete it first, nor an unban.
func TestNFTElementsGoneBehindOurBack(t *testing.T) {
	ns, n := testNS(t, NFTConfig{})
	if err := n.Ensure(); err != nil {
		t.Fatal(err)
	}
	a, b := netip.MustParsePrefix("192.0.2.9/32"), netip.MustParsePrefix("192.0.2.10/32")
	if err := n.Ban(context.Background(), []Element{{Prefix: a, Timeout: time.Hour}, {Prefix: b, Timeout: time.Hour}}); err != nil {
		t.Fatal(err)
	}
	nft(t, ns, "delete", "element", "inet", "sshguard-go", "ip4_32", "{ 192.0.2.9, 192.0.2.10 }")
	if err := n.Ban(context.Background(), []Element{{Prefix: a, Timeout: 2 * time.Hour}}); err != nil {
		t.Fatalf("re-ban after the element vanished: %v", err)
	}
	if e := listed(t, n)[a]; e.Timeout != 2*time.Hour {
		t.Fatalf("element %+v", e)
	}
	if err := n.Unban(context.Background(), []netip.Prefix{b, a}); err != nil {
		t.Fatalf("unban after an element vanished: %v", err)
	}
	if got := listed(t, n); len(got) != 0 {
		t.Fatalf("left: %v", got)
	}
}

// TestNFTUnbanRetriesWhenElementVanished: our view says an element is in
// the set, but it left behind our back (expired, or deleted with nft):
// the delete fails with ENOENT in the kernel, and Unban reloads the view
// and retries instead of failing the unban.
func TestNFTUnbanRetriesWhenElementVanished(t *testing.T) {
	ns, n := testNS(t, NFTConfig{})
	if err := n.Ensure(); err != nil {
		t.Fatal(err)
	}
	a, b := netip.MustParsePrefix("192.0.2.21/32"), netip.MustParsePrefix("192.0.2.22/32")
	if err := n.Ban(context.Background(), []Element{{Prefix: a, Timeout: time.Hour}, {Prefix: b, Timeout: time.Hour}}); err != nil {
		t.Fatal(err)
	}
	listed(t, n) // our view now holds both
	nft(t, ns, "delete", "element", "inet", "sshguard-go", "ip4_32", "{ 192.0.2.21 }")
	if err := n.Unban(context.Background(), []netip.Prefix{a, b}); err != nil {
		t.Fatalf("unban with an element gone behind our back: %v", err)
	}
	if got := listed(t, n); len(got) != 0 {
		t.Fatalf("left: %v", got)
	}
}

// TestNFTRefusesForeignTable: Ensure leaves a table it did not create
// exactly as it was; a table made by an earlier release (unmarked sets of
// its names, an input chain of ours) is still taken over.
func TestNFTRefusesForeignTable(t *testing.T) {
	ns, n := testNS(t, NFTConfig{Table: "filter"})
	nft(t, ns, "add", "table", "inet", "filter")
	nft(t, ns, "add", "set", "inet", "filter", "admins", "{ type ipv4_addr; }")
	nft(t, ns, "add", "chain", "inet", "filter", "input", "{ type filter hook input priority 0; policy drop; }")
	before := nftJSON(t, ns)
	if err := n.Ensure(); !errors.Is(err, ErrForeignTable) || !strings.Contains(err.Error(), `set "admins"`) {
		t.Fatalf("Ensure on the administrator's table: %v", err)
	}
	if err := n.Ban(context.Background(), []Element{{Prefix: netip.MustParsePrefix("192.0.2.1/32"), Timeout: time.Hour}}); err == nil {
		t.Fatal("banned into a table not ours")
	}
	if after := nftJSON(t, ns); after != before {
		t.Fatalf("the table changed:\n%s\nwas:\n%s", after, before)
	}
	// An empty table of that name is not ours either.
	nft(t, ns, "delete", "table", "inet", "filter")
	nft(t, ns, "add", "table", "inet", "filter")
	if err := n.Ensure(); !errors.Is(err, ErrForeignTable) {
		t.Fatalf("Ensure on an empty table: %v", err)
	}
	// An earlier release's table: unmarked sets named as ours.
	nft(t, ns, "delete", "table", "inet", "filter")
	nft(t, ns, "add", "table", "inet", "filter")
	nft(t, ns, "add", "set", "inet", "filter", "banned4", "{ type ipv4_addr; flags interval, timeout; }")
	nft(t, ns, "add", "chain", "inet", "filter", "input", "{ type filter hook input priority -10; policy accept; }")
	if err := n.Ensure(); err != nil {
		t.Fatalf("Ensure on an earlier release's table: %v", err)
	}
	if js := nftJSON(t, ns); strings.Contains(js, `"banned4"`) || !strings.Contains(js, `"ip4_32"`) {
		t.Fatalf("old layout not replaced:\n%s", js)
	}
}
