// Package loggen writes a deterministic, realistic auth.log for benchmarks
// and comparisons: brute force with valid and invalid users, scans and
// protocol probes, a spoofed user name, IPv4 and IPv6 attackers, successful
// logins with sessions and sftp, and a quarter of unrelated lines.
package loggen

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"time"
)

// Format selects the timestamp style.
type Format int

const (
	Traditional Format = iota // "Nov 23 20:14:49 host sshd[1]: ..."
	RFC3339                   // "2026-11-23T20:14:49.561999+00:00 host sshd[1]: ..."
)

// Write writes n lines generated from seed to w.
func Write(w io.Writer, n int, seed uint64, f Format) error {
	return newGen(w, n, seed, f).run((*gen).step)
}

// WriteSpan writes n lines like Write, from start on, with up to gap
// between lines (Write's gap is 400 ms): a log of days for day-by-day
// counts.
func WriteSpan(w io.Writer, n int, seed uint64, f Format, start time.Time, gap time.Duration) error {
	g := newGen(w, n, seed, f)
	g.t, g.gap = start, gap
	return g.run((*gen).step)
}

func newGen(w io.Writer, n int, seed uint64, f Format) *gen {
	return &gen{
		w:   bufio.NewWriterSize(w, 1<<20),
		rnd: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		t:   time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC),
		f:   f,
		pid: 10000,
		max: n,
		gap: 400 * time.Millisecond,
	}
}

// run calls step until the lines wanted are written.
func (g *gen) run(step func(*gen)) error {
	for g.n < g.max {
		step(g)
	}
	return g.w.Flush()
}

// WriteDense writes n lines of an attack-dense auth.log: three in four
// lines an sshd attack event (failed passwords and keys, invalid users,
// pre-auth disconnects, probes, from many addresses), the rest unrelated.
func WriteDense(w io.Writer, n int, seed uint64, f Format) error {
	return newGen(w, n, seed, f).run((*gen).denseStep)
}

func (g *gen) denseStep() {
	if g.rnd.IntN(4) == 0 {
		g.unrelated()
		return
	}
	g.pid++
	pid, ip, port := g.pid, g.ip(), 1024+g.rnd.IntN(60000)
	user := users[g.rnd.IntN(len(users))]
	switch g.rnd.IntN(6) {
	case 0:
		g.line("sshd", pid, fmt.Sprintf("Failed password for root from %s port %d ssh2", ip, port))
	case 1:
		g.line("sshd", pid, fmt.Sprintf("Failed password for invalid user %s from %s port %d ssh2", user, ip, port))
	case 2:
		g.line("sshd", pid, fmt.Sprintf("Invalid user %s from %s port %d", user, ip, port))
	case 3:
		g.line("sshd", pid, fmt.Sprintf("Connection closed by authenticating user %s %s port %d [preauth]", user, ip, port))
	case 4:
		g.line("sshd", pid, fmt.Sprintf("Disconnected from invalid user %s %s port %d [preauth]", user, ip, port))
	default:
		g.line("sshd", pid, fmt.Sprintf("Unable to negotiate with %s port %d: no matching host key type found. Their offer: ssh-rsa [preauth]", ip, port))
	}
}

type gen struct {
	w   *bufio.Writer
	rnd *rand.Rand
	t   time.Time
	f   Format
	n   int // lines written
	max int // lines wanted
	pid int
	gap time.Duration // the most between two lines
}

var users = []string{"root", "admin", "test", "user", "oracle", "postgres", "ubuntu", "pi", "git", "guest", "ftpuser", "deploy"}

func (g *gen) ip() string {
	if g.rnd.IntN(5) == 0 {
		return fmt.Sprintf("2001:db8:%x:%x::%x", g.rnd.IntN(64), g.rnd.IntN(16), 1+g.rnd.IntN(200))
	}
	return fmt.Sprintf("%d.%d.%d.%d", 1+g.rnd.IntN(223), g.rnd.IntN(256), g.rnd.IntN(256), 1+g.rnd.IntN(254))
}

func (g *gen) line(prog string, pid int, msg string) {
	if g.n >= g.max {
		return
	}
	g.t = g.t.Add(time.Duration(g.rnd.Int64N(int64(g.gap/time.Millisecond))) * time.Millisecond)
	if g.f == RFC3339 {
		g.w.WriteString(g.t.Format("2006-01-02T15:04:05.000000-07:00"))
	} else {
		g.w.WriteString(g.t.Format(time.Stamp))
	}
	g.w.WriteString(" web-01 ")
	g.w.WriteString(prog)
	if pid > 0 {
		fmt.Fprintf(g.w, "[%d]", pid)
	}
	g.w.WriteString(": ")
	g.w.WriteString(msg)
	g.w.WriteByte('\n')
	g.n++
}

func (g *gen) unrelated() {
	switch g.rnd.IntN(4) {
	case 0:
		g.line("CRON", 900+g.rnd.IntN(90), "pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)")
	case 1:
		g.line("systemd-logind", 600, fmt.Sprintf("New session %d of user alice.", g.rnd.IntN(9999)))
	case 2:
		g.line("sudo", 0, "   alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/apt update")
	default:
		g.line("systemd", 1, "Started session-42.scope - Session 42 of User alice.")
	}
}

func (g *gen) step() {
	g.pid++
	pid := g.pid
	ip := g.ip()
	port := 1024 + g.rnd.IntN(60000)
	user := users[g.rnd.IntN(len(users))]
	switch r := g.rnd.IntN(100); {
	case r < 25:
		// unrelated lines, a quarter of the file
		for i := 0; i < 4; i++ {
			g.unrelated()
		}
	case r < 45: // invalid user, one password guess
		g.line("sshd", pid, fmt.Sprintf("Invalid user %s from %s port %d", user, ip, port))
		g.line("sshd", pid, "pam_unix(sshd:auth): check pass; user unknown")
		g.line("sshd", pid, "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost="+ip)
		g.line("sshd", pid, fmt.Sprintf("Failed password for invalid user %s from %s port %d ssh2", user, ip, port))
		g.line("sshd", pid, fmt.Sprintf("Connection closed by invalid user %s %s port %d [preauth]", user, ip, port))
	case r < 60: // root brute force, several guesses, MaxAuthTries
		g.line("sshd", pid, fmt.Sprintf("pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=%s  user=root", ip))
		for i := 0; i < 3; i++ {
			g.line("sshd", pid, fmt.Sprintf("Failed password for root from %s port %d ssh2", ip, port))
		}
		g.line("sshd", pid, fmt.Sprintf("error: maximum authentication attempts exceeded for root from %s port %d ssh2 [preauth]", ip, port))
		g.line("sshd", pid, fmt.Sprintf("Disconnecting authenticating user root %s port %d: Too many authentication failures [preauth]", ip, port))
		g.line("sshd", pid, fmt.Sprintf("PAM 2 more authentication failures; logname= uid=0 euid=0 tty=ssh ruser= rhost=%s  user=root", ip))
	case r < 68: // scanner probes
		switch g.rnd.IntN(4) {
		case 0:
			g.line("sshd", pid, "error: kex_exchange_identification: Connection closed by remote host")
			g.line("sshd", pid, fmt.Sprintf("Connection closed by %s port %d", ip, port))
		case 1:
			g.line("sshd", pid, fmt.Sprintf("banner exchange: Connection from %s port %d: invalid format", ip, port))
		case 2:
			g.line("sshd", pid, fmt.Sprintf("Unable to negotiate with %s port %d: no matching host key type found. Their offer: ssh-rsa,ssh-dss [preauth]", ip, port))
		default:
			g.line("sshd", pid, fmt.Sprintf("Received disconnect from %s port %d:11: Bye Bye [preauth]", ip, port))
			g.line("sshd", pid, fmt.Sprintf("Disconnected from %s port %d [preauth]", ip, port))
		}
	case r < 76: // key-only attempts
		g.line("sshd", pid, fmt.Sprintf("Connection closed by authenticating user %s %s port %d [preauth]", user, ip, port))
	case r < 80: // spoofed user name
		u := fmt.Sprintf("x from 10.9.9.%d port 22", g.rnd.IntN(255))
		g.line("sshd", pid, fmt.Sprintf("Invalid user %s from %s port %d", u, ip, port))
		g.line("sshd", pid, fmt.Sprintf("Failed password for invalid user %s from %s port %d ssh2", u, ip, port))
	case r < 85: // timeouts and no banner
		g.line("sshd", pid, fmt.Sprintf("Timeout before authentication for %s port %d", ip, port))
	case r < 95: // a successful login with a session
		g.line("sshd", pid, fmt.Sprintf("Accepted publickey for alice from %s port %d ssh2: ED25519 SHA256:TZNeiCTCTlvIYUy8EeTnjSoapIo676aoheF7ElbBGdo", ip, port))
		g.line("sshd", pid, "pam_unix(sshd:session): session opened for user alice(uid=1000) by (uid=0)")
		if g.rnd.IntN(3) == 0 {
			g.line("internal-sftp", pid+1, "session opened for local user alice from ["+ip+"]")
			g.line("internal-sftp", pid+1, `open "/home/alice/backup.tar" flags READ mode 0666`)
			g.line("internal-sftp", pid+1, `close "/home/alice/backup.tar" bytes read 1048576 written 0`)
		}
		g.line("sshd", pid, fmt.Sprintf("Received disconnect from %s port %d:11: disconnected by user", ip, port))
		g.line("sshd", pid, fmt.Sprintf("Disconnected from user alice %s port %d", ip, port))
		g.line("sshd", pid, "pam_unix(sshd:session): session closed for user alice")
	default: // other sshd noise
		g.line("sshd", pid, fmt.Sprintf("Connection reset by %s port %d [preauth]", ip, port))
	}
}
