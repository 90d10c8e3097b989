// Package roottest holds what tests that need root share: the rule that
// under CI=true a missing prerequisite fails the test instead of skipping
// it, and fresh network namespaces.
package roottest

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/vishvananda/netns"
)

// Require skips tb under -short (which promises neither root nor
// namespaces), and unless it runs as root with tools on $PATH; when
// CI=true a missing prerequisite fails tb instead, because in CI every
// root test must run.
func Require(tb testing.TB, tools ...string) {
	tb.Helper()
	if testing.Short() {
		tb.Skip("needs root and namespaces; skipped under -short")
	}
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root")
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		tb.Fatalf("CI=true and this test needs %v", missing)
	}
	tb.Skipf("needs %v", missing)
}

// NetNS creates a fresh named network namespace, deleted when tb ends,
// and returns its name and an open handle on it (for nftables.WithNetNSFd
// and netlink.NewHandleAt).
func NetNS(tb testing.TB, prefix string) (string, *os.File) {
	tb.Helper()
	Require(tb, "ip")
	name := fmt.Sprintf("%s%d-%d", prefix, os.Getpid()%100000, rand.IntN(1e6))
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		tb.Fatalf("ip netns add: %v: %s", err, out)
	}
	tb.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	f, err := os.Open("/run/netns/" + name)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { f.Close() })
	return name, f
}

// ListenIn listens on the TCP address addr inside the named network
// namespace ns: the socket stays there, the thread goes back.
func ListenIn(ns, addr string) (net.Listener, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return nil, err
	}
	defer orig.Close()
	h, err := netns.GetFromName(ns)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	if err := netns.Set(h); err != nil {
		return nil, err
	}
	defer netns.Set(orig)
	return net.Listen("tcp", addr)
}

// Link joins the named namespaces a and b with a veth pair, gives a's end
// the address aAddr and b's end bAddr (CIDR, e.g. "10.212.1.2/24"), and
// brings both up. The pair goes with the namespaces.
func Link(tb testing.TB, a, b, aAddr, bAddr string) {
	tb.Helper()
	veth := fmt.Sprintf("sgl%d", rand.IntN(1e8))
	for _, args := range [][]string{
		{"link", "add", veth + "a", "netns", a, "type", "veth", "peer", "name", veth + "b", "netns", b},
		{"-n", a, "addr", "add", aAddr, "dev", veth + "a"},
		{"-n", b, "addr", "add", bAddr, "dev", veth + "b"},
		{"-n", a, "link", "set", veth + "a", "up"},
		{"-n", b, "link", "set", veth + "b", "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			tb.Fatalf("ip %v: %v: %s", args, err, out)
		}
	}
}

// Lock holds the machine-wide lock name until tb ends: tests of different
// packages (go test runs them at once) that share something of the
// machine, such as the sgtest account that the labs with a real sshd set
// up and log in as, take turns.
func Lock(tb testing.TB, name string) {
	tb.Helper()
	f, err := os.OpenFile("/run/sshguard-go-test-"+name+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		tb.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		tb.Fatal(err)
	}
	tb.Cleanup(func() { f.Close() }) // closing releases it
}

// RunGuarded runs the tests of m and fails them if they left a table of
// sshguard-go's in the host's own nftables ruleset (tests work in network
// namespaces of their own; a table that was there before is not theirs).
// A package's TestMain calls os.Exit(roottest.RunGuarded(m)).
func RunGuarded(m *testing.M) int {
	had := hostTables()
	code := m.Run()
	if os.Geteuid() != 0 {
		return code
	}
	for _, t := range hostTables() {
		if !slices.Contains(had, t) {
			fmt.Fprintf(os.Stderr, "FAIL: the tests left table %s in the host's nftables ruleset (delete it: nft delete table %s)\n", t, t)
			code = 1
		}
	}
	return code
}

// hostTables lists the tables of the host's ruleset that sshguard-go's
// tests make ("inet sshguard-go", "inet sg..."), nil without nft.
func hostTables() []string {
	out, err := exec.Command("nft", "list", "tables").Output()
	if err != nil {
		return nil
	}
	var tables []string
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "table" && (strings.HasPrefix(f[2], "sshguard") || strings.HasPrefix(f[2], "sg")) {
			tables = append(tables, f[1]+" "+f[2])
		}
	}
	return tables
}
