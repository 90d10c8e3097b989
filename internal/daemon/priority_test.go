package daemon

import (
	"encoding/json"
	"os/exec"
	"testing"

	"sshguard-go/internal/roottest"
)

// TestFirewallPriorityZero: firewall.priority = 0 (nftables' "filter")
// hooks the daemon's input chain at 0, and no setting at -10, in a fresh
// network namespace. 0 was taken for "unset" and became -10.
func TestFirewallPriorityZero(t *testing.T) {
	roottest.Require(t, "ip", "nft")
	for _, c := range []struct {
		config string
		want   int
	}{{"[firewall]\npriority = 0\n", 0}, {"", -10}} {
		ns, nsf := roottest.NetNS(t, "sgprio")
		h := newHarness(t)
		h.useNetNS(int(nsf.Fd()))
		writeConfig(t, h.dir, "[audit]\nlog = \"\"\n"+c.config)
		h.start()
		out, err := exec.Command("ip", "netns", "exec", ns, "nft", "-j", "list", "chain", "inet", "sshguard-go", "input").CombinedOutput()
		if err != nil {
			t.Fatalf("nft: %v: %s", err, out)
		}
		var rs struct {
			Nftables []struct {
				Chain *struct{ Prio int } `json:"chain"`
			} `json:"nftables"`
		}
		if err := json.Unmarshal(out, &rs); err != nil {
			t.Fatal(err)
		}
		got := []int{}
		for _, o := range rs.Nftables {
			if o.Chain != nil {
				got = append(got, o.Chain.Prio)
			}
		}
		if len(got) != 1 || got[0] != c.want {
			t.Errorf("config %q: the input chain's priority %v, want %d", c.config, got, c.want)
		}
		h.halt()
	}
}
