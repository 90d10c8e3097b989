package main

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"time"
)

// What is fail2ban's own here, and what is its jail rule applied in the
// log's time.
//
// fail2ban's own: which lines of the month are failures, of which address,
// at which time. `fail2ban-regex -o row LOG filter.d/sshd.conf` prints the
// failures its filter hands the jail, one per line, in the file's order:
// with -o it matches as the server does (the first matching regex of a
// line wins; a line marked <F-NOFAIL>, such as a refused public key or a
// login, is no failure; lines of one connection are merged by the
// filter's <F-MLFID>). The same for the recidive jail, on the fail2ban.log
// lines the sshd jail's bans would have written, with filter.d/
// recidive.conf (which skips the recidive jail's own bans).
//
// Its jail rule, applied here: fail2ban-server cannot be fed a past month
// (its filter drops lines older than findtime before now), so the rule of
// fail2ban 1.0.2's server (server/failmanager.py, ticket.py,
// banmanager.py, actions.py), on Debian's defaults (jail.conf), is
// applied to those failures in the log's time:
//
//   - An address's failures make a ticket: first and last time, and a
//     retry count. The filter's service task drops a ticket whose last
//     failure is findtime old or older (FailManager.cleanup; the server
//     runs it every few seconds: here, before each failure).
//   - A failure on a ticket adds one to its count; before that, when the
//     ticket's first failure is more than findtime before this one, the
//     count is scaled to the rate it shows over findtime, rounded (Python's
//     round: half to even), and the first time moved to findtime before
//     this one (FailTicket.adjustTime). So the rule is not a strict
//     sliding window: "maxretry within findtime" as the documentation
//     says, estimated from the rate once a ticket lives longer.
//   - At maxretry the ticket is taken and the address banned for bantime
//     from then (the jail bans at once: Filter.performBan). A ban has no
//     effect on the filter: the failures of a banned address make a new
//     ticket, and reaching maxretry again while the ban is in force
//     prolongs it to bantime after that failure ("already banned",
//     BanManager.addBanTicket), which is no new ban (and no "Ban" line).
//     bantime.increment is off (Debian's default).
var (
	sshdJail     = jail{name: "sshd", maxRetry: 5, findTime: 10 * time.Minute, banTime: 10 * time.Minute}
	recidiveJail = jail{name: "recidive", maxRetry: 5, findTime: 24 * time.Hour, banTime: 7 * 24 * time.Hour}
)

const (
	sshdFilter     = "/etc/fail2ban/filter.d/sshd.conf"
	recidiveFilter = "/etc/fail2ban/filter.d/recidive.conf"
)

// jail is a fail2ban jail's settings.
type jail struct {
	name              string
	maxRetry          int
	findTime, banTime time.Duration
}

// failure is one failure fail2ban's filter found: of addr, at (Unix
// seconds, as fail2ban keeps them).
type failure struct {
	addr netip.Addr
	at   float64
}

// fail2banBans are the bans of the sshd jail and of the recidive jail.
type fail2banBans struct{ sshd, recidive []ban }

// fail2ban decides the bans of fail2ban's sshd jail over log, and of its
// recidive jail over what the sshd jail logged; dir takes the
// fail2ban.log.
func fail2ban(log, dir string) (*fail2banBans, error) {
	fails, err := fail2banRegex(log, sshdFilter)
	if err != nil {
		return nil, err
	}
	var out fail2banBans
	out.sshd = sshdJail.run(fails)
	// The lines fail2ban-server logs for them (its default format, in
	// UTC), for the recidive jail to read.
	var buf bytes.Buffer
	for _, b := range out.sshd {
		fmt.Fprintf(&buf, "%s %-24s[%d]: %-7s [%s] Ban %s\n", b.start.UTC().Format("2006-01-02 15:04:05,000"),
			"fail2ban.actions", 4242, "NOTICE", sshdJail.name, b.prefix.Addr())
	}
	flog := filepath.Join(dir, "fail2ban.log")
	if err := os.WriteFile(flog, buf.Bytes(), 0o644); err != nil {
		return nil, err
	}
	rfails, err := fail2banRegex(flog, recidiveFilter, "--timezone=UTC")
	if err != nil {
		return nil, err
	}
	if len(rfails) != len(out.sshd) {
		return nil, fmt.Errorf("recidive's filter found %d of the sshd jail's %d bans", len(rfails), len(out.sshd))
	}
	out.recidive = recidiveJail.run(rfails)
	return &out, nil
}

// rowRE is a failure fail2ban-regex -o row prints: ['ADDR', TIME, {...}],
var rowRE = regexp.MustCompile(`^\['([^']+)',\s*([0-9]+(?:\.[0-9]+)?),`)

// fail2banRegex is the failures fail2ban's filter finds in log, in order.
func fail2banRegex(log, filter string, args ...string) ([]failure, error) {
	if _, err := exec.LookPath("fail2ban-regex"); err != nil {
		return nil, errNotInstalled("fail2ban-regex", "fail2ban")
	}
	if _, err := os.Stat(filter); err != nil {
		return nil, err
	}
	cmd := exec.Command("fail2ban-regex", append(append([]string{"-o", "row"}, args...), log, filter)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("fail2ban-regex %s: %w: %s", filter, err, stderr.Bytes())
	}
	var fails []failure
	s := bufio.NewScanner(bytes.NewReader(out))
	s.Buffer(nil, 1<<20)
	for s.Scan() {
		if len(bytes.TrimSpace(s.Bytes())) == 0 {
			continue
		}
		m := rowRE.FindStringSubmatch(s.Text())
		if m == nil {
			return nil, fmt.Errorf("fail2ban-regex: unexpected output %q", s.Text())
		}
		addr, err := netip.ParseAddr(m[1])
		if err != nil {
			return nil, fmt.Errorf("fail2ban-regex: %w", err)
		}
		at, err := strconv.ParseFloat(m[2], 64)
		if err != nil {
			return nil, err
		}
		fails = append(fails, failure{addr, at})
	}
	return fails, s.Err()
}

// ticket is a FailTicket: an address's failures since first.
type ticket struct {
	first, last float64
	retry       int
}

// run applies the jail's rule to fails, in order, and returns its bans
// (new bans only; a prolonged ban's end is moved).
func (j jail) run(fails []failure) []ban {
	find, banFor := j.findTime.Seconds(), j.banTime.Seconds()
	tickets := map[netip.Addr]*ticket{}
	current := map[netip.Addr]int{} // the address's last ban, in out
	var out []ban
	for _, f := range fails {
		t := f.at
		for a, tk := range tickets { // FailManager.cleanup
			if tk.last <= t-find {
				delete(tickets, a)
			}
		}
		tk := tickets[f.addr]
		if tk == nil {
			tk = &ticket{first: t, last: t, retry: 1}
			tickets[f.addr] = tk
		} else {
			if t > tk.last { // FailTicket.adjustTime
				if tk.first < t-find {
					tk.retry = int(math.RoundToEven(float64(tk.retry) / (t - tk.first) * find))
					tk.first = t - find
				}
				tk.last = t
			}
			tk.retry++
		}
		if tk.retry < j.maxRetry {
			continue
		}
		delete(tickets, f.addr) // FailManager.toBan
		end := unix(tk.last + banFor)
		if i, ok := current[f.addr]; ok && unix(t).Before(out[i].end) {
			if end.After(out[i].end) { // already banned: prolonged
				out[i].end = end
			}
			continue
		}
		current[f.addr] = len(out)
		out = append(out, ban{prefix: netip.PrefixFrom(f.addr, f.addr.BitLen()), start: unix(t), end: end, jail: j.name})
	}
	return out
}

// unix is a time fail2ban keeps (Unix seconds) as a time.Time.
func unix(s float64) time.Time {
	sec := math.Floor(s)
	return time.Unix(int64(sec), int64(math.Round((s-sec)*1e9))).UTC()
}
