package daemon

import (
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"sshguard-go/internal/loggen"
)

// TestSlowAttackers: a month of the slow attacks seen in the wild (bursts
// of 3 every 9 hours, one guess every 8 hours, one an hour, a new user
// name every 30 minutes, 20 addresses of a /24 twice a day each) beside
// the legitimate users whose mistakes a long window alone would ban (two
// typos every morning then a login, an office NAT of 12 users, a CI key
// refused once a day, a roaming laptop). On the default configuration
// every attacker is banned at the attempt a reader of the log would
// expect, no legitimate user ever, and reading the month from its start
// ends as running through it live does.
func TestSlowAttackers(t *testing.T) {
	h := newHarness(t)
	log := filepath.Join(h.dir, "auth.log")
	f, err := os.Create(log)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now().Add(-30*24*time.Hour - 5*time.Minute).Truncate(time.Second)
	actors, err := loggen.WriteSlowMonth(f, start, 30, 1)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(log)
	lines := int64(countLines(data))
	writeConfig(t, h.dir, "[log]\nfrom_start = true\n[audit]\nlog = \"\"\n")
	h.start()
	h.readAll(t, lines, time.Minute)
	read, _ := h.d.db.History(time.Time{})
	live, _ := liveBans(t, h.config(), log, start).History(time.Time{})
	if g, w := records(t, read), records(t, live); !slices.Equal(g, w) {
		t.Errorf("read from the start:\n%v\nlive:\n%v", g, w)
	}
	first := map[netip.Prefix]time.Time{}
	for _, b := range live {
		if _, ok := first[b.Prefix]; !ok {
			first[b.Prefix] = b.Start
		}
	}
	for _, a := range actors {
		if a.Attack {
			got, ok := first[netip.MustParsePrefix(a.Prefix)]
			if !ok || !got.Equal(a.BanAt.Truncate(time.Millisecond)) {
				t.Errorf("%s (%s): banned at %v (%v), want %v", a.Name, a.Prefix, got, ok, a.BanAt)
			}
			// Nothing else covered it before: no network ban of what
			// other attackers did.
			for p, at := range first {
				if at.Before(got) && p.Contains(netip.MustParseAddr(a.Addrs[0])) {
					t.Errorf("%s: %s banned at %v, before %v", a.Name, p, at, got)
				}
			}
			continue
		}
		for _, ip := range a.Addrs {
			for p := range first {
				if p.Contains(netip.MustParseAddr(ip)) {
					t.Errorf("%s: %s banned (%s at %v)", a.Name, ip, p, first[p])
				}
			}
		}
	}
}

func countLines(b []byte) int {
	n := 0
	for _, c := range b {
		if c == '\n' {
			n++
		}
	}
	return n
}
