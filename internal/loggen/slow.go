package loggen

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"time"
)

// Actor is one client of a month WriteSlowMonth writes: an attacker who
// stays under a short window, or a legitimate user whose mistakes look
// like one.
type Actor struct {
	Name   string
	Attack bool
	Addrs  []string // the addresses it comes from
	// Prefix is what a ban of it covers ("203.0.113.7/32", a network's
	// "198.18.7.0/24"); BanAt is when a reader of the log would ban it:
	// the attempt that crosses the line (attackers only).
	Prefix string
	BanAt  time.Time
	Lines  int // the lines it wrote
}

type monthLine struct {
	at   time.Time
	pid  int
	text string
}

// WriteSlowMonth writes days of sshd's log (RFC 3339 stamps) from start:
// the slow attacks seen in the wild, and the legitimate users whose typos
// a long window alone would ban. It returns who is in it. The expected ban
// times follow sshguard-go's default horizons: 6 failed attempts within a
// day, 8 within a week, 20 from one network (a /24 none of whose addresses
// logs in) within a day.
func WriteSlowMonth(w io.Writer, start time.Time, days int, seed uint64) ([]Actor, error) {
	rng := rand.New(rand.NewPCG(seed, 23))
	end := start.Add(time.Duration(days) * 24 * time.Hour)
	var lines []monthLine
	pid := 20000
	var actors []*Actor
	// add writes a line of a connection of its own; same, of the one
	// before (the lines of one guess).
	add := func(a *Actor, at time.Time, format string, args ...any) {
		pid++
		lines = append(lines, monthLine{at, pid, fmt.Sprintf(format, args...)})
		a.Lines++
	}
	same := func(a *Actor, at time.Time, format string, args ...any) {
		lines = append(lines, monthLine{at, pid, fmt.Sprintf(format, args...)})
		a.Lines++
	}
	port := func() int { return 30000 + rng.IntN(30000) }
	day := func(d int, h, m int) time.Time {
		return start.Add(time.Duration(d)*24*time.Hour + time.Duration(h)*time.Hour + time.Duration(m)*time.Minute)
	}

	// Each attacker comes from a network of its own: the network horizons
	// count each pattern alone, not the month's attackers together.
	//
	// Bots: bursts of 3 every 9 hours over 5 days. The day's 6th attempt
	// is the second burst's third.
	bots := &Actor{Name: "bursts of 3 every 9 hours", Attack: true, Addrs: []string{"203.0.113.31"}, Prefix: "203.0.113.31/32"}
	for b := range 14 {
		for k := range 3 {
			at := day(2, 3, 0).Add(time.Duration(b)*9*time.Hour + time.Duration(k)*20*time.Second)
			add(bots, at, "Failed password for root from 203.0.113.31 port %d ssh2", port())
			if b == 1 && k == 2 {
				bots.BanAt = at
			}
		}
	}
	// Targeted: one attempt every 8 hours over 3 days, at a real account:
	// the week's 8th.
	targeted := &Actor{Name: "one attempt every 8 hours", Attack: true, Addrs: []string{"198.51.100.32"}, Prefix: "198.51.100.32/32"}
	for k := range 10 {
		at := day(5, 1, 17).Add(time.Duration(k) * 8 * time.Hour)
		add(targeted, at, "Failed password for alice from 198.51.100.32 port %d ssh2", port())
		if k == 7 {
			targeted.BanAt = at
		}
	}
	// One guess an hour: the day's 6th.
	hourly := &Actor{Name: "one guess an hour", Attack: true, Addrs: []string{"198.18.33.33"}, Prefix: "198.18.33.33/32"}
	for k := range 72 {
		at := day(9, 0, 41).Add(time.Duration(k) * time.Hour)
		add(hourly, at, "Failed password for root from 198.18.33.33 port %d ssh2", port())
		if k == 5 {
			hourly.BanAt = at
		}
	}
	// User enumeration: a new name every 30 minutes for a day.
	enum := &Actor{Name: "a new user name every 30 minutes", Attack: true, Addrs: []string{"198.19.34.34"}, Prefix: "198.19.34.34/32"}
	for k := range 48 {
		at := day(13, 6, 0).Add(time.Duration(k) * 30 * time.Minute)
		u := fmt.Sprintf("user%02d", k)
		p := port()
		add(enum, at, "Invalid user %s from 198.19.34.34 port %d", u, p)
		same(enum, at.Add(time.Second), "Failed password for invalid user %s from 198.19.34.34 port %d ssh2", u, p)
		if k == 5 {
			enum.BanAt = at
		}
	}
	// A network: 20 addresses of one /24, each guessing twice a day.
	network := &Actor{Name: "20 addresses of a /24, twice a day each", Attack: true, Prefix: "198.18.7.0/24"}
	var netTimes []time.Time
	for i := range 20 {
		ip := fmt.Sprintf("198.18.7.%d", 10+i)
		network.Addrs = append(network.Addrs, ip)
		for d := range 5 {
			for range 2 {
				at := day(17+d, rng.IntN(24), rng.IntN(60))
				add(network, at, "Failed password for root from %s port %d ssh2", ip, port())
				netTimes = append(netTimes, at)
			}
		}
	}
	slices.SortFunc(netTimes, func(a, b time.Time) int { return a.Compare(b) })
	network.BanAt = netTimes[19] // within the first day: the 20th

	// The colleague who mistypes twice every morning, then logs in.
	typos := &Actor{Name: "two typos every morning, then a login", Addrs: []string{"192.0.2.10"}, Prefix: "192.0.2.10/32"}
	for d := range days {
		at := day(d, 8, rng.IntN(30))
		for k := range 2 {
			add(typos, at.Add(time.Duration(k)*15*time.Second), "Failed password for bob from 192.0.2.10 port %d ssh2", port())
		}
		accepted(add, typos, at.Add(45*time.Second), "bob", "192.0.2.10", port())
	}
	// An office behind one address: a dozen users, typos now and then.
	office := &Actor{Name: "an office NAT of 12 users with typos", Addrs: []string{"192.0.2.20"}, Prefix: "192.0.2.20/32"}
	for d := range days {
		for u := range 12 {
			at := day(d, 8+u%9, rng.IntN(50))
			user := fmt.Sprintf("staff%02d", u)
			for k := range rng.IntN(3) { // 0 to 2 typos
				add(office, at.Add(time.Duration(k)*10*time.Second), "Failed password for %s from 192.0.2.20 port %d ssh2", user, port())
			}
			accepted(add, office, at.Add(30*time.Second), user, "192.0.2.20", port())
		}
	}
	// A CI job whose first key is refused every day before the second logs in.
	ci := &Actor{Name: "a CI key refused once a day before it logs in", Addrs: []string{"192.0.2.30"}, Prefix: "192.0.2.30/32"}
	for d := range days {
		at := day(d, 3, 7)
		p := port()
		add(ci, at, "Failed publickey for deploy from 192.0.2.30 port %d ssh2: RSA SHA256:Cm2kO1KtrhIvP8a5pG1xF0g0a7GvWn0NfVt1d2xQ0Zk", p)
		accepted(same, ci, at.Add(time.Second), "deploy", "192.0.2.30", p)
	}
	// A roaming laptop: typos from a new address every day.
	roaming := &Actor{Name: "a roaming laptop with typos from a new address"}
	for d := range days {
		ip := fmt.Sprintf("100.%d.%d.%d", 64+rng.IntN(60), rng.IntN(256), 1+rng.IntN(254))
		roaming.Addrs = append(roaming.Addrs, ip)
		at := day(d, 14, rng.IntN(50))
		for k := range 1 + rng.IntN(2) {
			add(roaming, at.Add(time.Duration(k)*12*time.Second), "Failed password for carol from %s port %d ssh2", ip, port())
		}
		accepted(add, roaming, at.Add(40*time.Second), "carol", ip, port())
	}
	actors = append(actors, bots, targeted, hourly, enum, network, typos, office, ci, roaming)

	slices.SortStableFunc(lines, func(a, b monthLine) int { return a.at.Compare(b.at) })
	bw := bufio.NewWriter(w)
	for _, l := range lines {
		if l.at.After(end) {
			continue
		}
		fmt.Fprintf(bw, "%s web-01 sshd[%d]: %s\n", l.at.UTC().Format("2006-01-02T15:04:05.000000-07:00"), l.pid, l.text)
	}
	out := make([]Actor, len(actors))
	for i, a := range actors {
		out[i] = *a
	}
	return out, bw.Flush()
}

// accepted writes a login with its session, as sshd does.
func accepted(add func(*Actor, time.Time, string, ...any), a *Actor, at time.Time, user, ip string, port int) {
	add(a, at, "Accepted password for %s from %s port %d ssh2", user, ip, port)
}
