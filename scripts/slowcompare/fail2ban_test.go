package main

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// f2bJail drives fail2ban's own FailManager, FailTicket and BanManager
// with failures read from stdin ("ADDR TIME"), the clock at each one, as
// its filter (cleanup, addFailure, performBan) and its actions thread
// (unBanList, addBanTicket) would: a ban prints "ban ADDR START END", a
// prolonged one "prolong ADDR END".
const f2bJail = `
import sys
from fail2ban.server.failmanager import FailManager, FailManagerEmpty
from fail2ban.server.banmanager import BanManager
from fail2ban.server.ticket import FailTicket, BanTicket
from fail2ban.server.mytime import MyTime
maxretry, findtime, bantime = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
fm = FailManager(); fm.setMaxRetry(maxretry); fm.setMaxTime(findtime)
bm = BanManager(); bm.setBanTime(bantime)
for line in sys.stdin:
    ip, t = line.split(); t = float(t)
    MyTime.setTime(t)
    fm.cleanup(t)
    bm.unBanList(t)
    if fm.addFailure(FailTicket(ip, t)) < maxretry:
        continue
    try:
        tk = fm.toBan(ip)
    except FailManagerEmpty:
        continue
    bt = BanTicket.wrap(tk)
    reason = {}
    if bm.addBanTicket(bt, reason=reason):
        print("ban", ip, repr(t), repr(bt.getEndOfBanTime(bantime)))
    elif 'ticket' in reason:
        print("prolong", ip, repr(reason['ticket'].getEndOfBanTime(bantime)))
`

// TestJailRuleIsFail2bans: the jail rule slowcompare applies decides as
// fail2ban's own classes do, on random failures of a few addresses, at the
// sshd jail's settings and the recidive jail's. Needs python3 and
// fail2ban.
func TestJailRuleIsFail2bans(t *testing.T) {
	py := fail2banPython()
	if err := exec.Command(py, "-c", "import fail2ban.server.failmanager").Run(); err != nil {
		if os.Getenv("CI") == "true" { // CI installs it: a missing one is a failure there
			t.Fatalf("CI=true and this test needs fail2ban (apt-get install fail2ban): %v", err)
		}
		t.Skip("needs fail2ban (apt-get install fail2ban)")
	}
	for _, j := range []jail{sshdJail, recidiveJail} {
		t.Run(j.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, 2))
			addrs := []netip.Addr{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("2001:db8::3")}
			var fails []failure
			at := 1.8e9
			for range 3000 {
				// Gaps around a tenth of findtime, some much longer.
				gap := rng.ExpFloat64() * j.findTime.Seconds() / 10
				if rng.IntN(20) == 0 {
					gap *= 30
				}
				at += float64(int64(gap))
				fails = append(fails, failure{addrs[rng.IntN(len(addrs))], at})
			}
			var in bytes.Buffer
			for _, f := range fails {
				fmt.Fprintf(&in, "%s %d\n", f.addr, int64(f.at))
			}
			cmd := exec.Command(py, "-c", f2bJail, strconv.Itoa(j.maxRetry),
				strconv.Itoa(int(j.findTime.Seconds())), strconv.Itoa(int(j.banTime.Seconds())))
			cmd.Stdin = &in
			out, err := cmd.Output()
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			last := map[string]int{}
			for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
				f := strings.Fields(l)
				switch f[0] {
				case "ban":
					last[f[1]] = len(want)
					want = append(want, fmt.Sprintf("%s %s %s", f[1], sec(t, f[2]), sec(t, f[3])))
				case "prolong":
					i := last[f[1]]
					w := strings.Fields(want[i])
					want[i] = fmt.Sprintf("%s %s %s", w[0], w[1], sec(t, f[2]))
				}
			}
			var got []string
			for _, b := range j.run(fails) {
				got = append(got, fmt.Sprintf("%s %d %d", b.prefix.Addr(), b.start.Unix(), b.end.Unix()))
			}
			if len(want) < 10 {
				t.Fatalf("only %d bans: a weak test", len(want))
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("bans:\n%s\nfail2ban's:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}

// fail2banPython is the Python fail2ban-regex runs with (its #! line):
// the one its modules are installed for.
func fail2banPython() string {
	if p, err := exec.LookPath("fail2ban-regex"); err == nil {
		if b, err := os.ReadFile(p); err == nil {
			first, _, _ := strings.Cut(string(b), "\n")
			if f := strings.Fields(strings.TrimPrefix(first, "#!")); strings.HasPrefix(first, "#!") && len(f) > 0 {
				return f[0]
			}
		}
	}
	return "python3"
}

// sec is a time Python printed, in whole seconds.
func sec(t *testing.T, s string) string {
	t.Helper()
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatal(err)
	}
	return strconv.FormatInt(int64(f), 10)
}

// TestSSHGuardBlocks: sshg-blocker's rule on hand-made attacks.
func TestSSHGuardBlocks(t *testing.T) {
	t0 := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	a := netip.MustParseAddr("192.0.2.1")
	at := func(s int) attack { return attack{a, 10, t0.Add(time.Duration(s) * time.Second)} }
	for _, c := range []struct {
		name    string
		attacks []attack
		want    []string // start+s, length s
	}{
		{"the 3rd attack blocks", []attack{at(0), at(10), at(20)}, []string{"20 121"}},
		{"from the first attack on: 1800 s is in", []attack{at(0), at(1), at(1800)}, []string{"1800 121"}},
		{"1801 s is not", []attack{at(0), at(1), at(1801)}, nil},
		{"blocked: ignored; then 1.5 times longer", []attack{at(0), at(1), at(2), at(3), at(4), at(5), at(200), at(201), at(202)}, []string{"2 121", "202 181"}},
	} {
		var got []string
		for _, b := range sshguardBlocks(c.attacks) {
			got = append(got, fmt.Sprintf("%d %d", int(b.start.Sub(t0).Seconds()), int(b.end.Sub(b.start).Seconds())))
		}
		if strings.Join(got, ",") != strings.Join(c.want, ",") {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}
