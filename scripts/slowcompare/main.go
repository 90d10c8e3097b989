// Command slowcompare writes the generated month of slow attackers and
// legitimate users (internal/loggen's WriteSlowMonth, the month of
// TestSlowAttackers) to a file and decides, for sshguard-go, fail2ban
// (its default sshd jail, alone and with its recidive jail) and SSHGuard,
// who in it is banned and when, on each tool's defaults. It prints a
// Markdown table: one row per client of the month, one column per tool.
//
//	go run ./scripts/slowcompare [-log month.log] [-tools sshguard-go,fail2ban,sshguard]
//
// Every tool reads the same file, line by line in the log's time, as a
// daemon that was running through that month would have:
//
//   - sshguard-go: its own scanner and engine (internal/detect,
//     internal/engine) on config.Default(), the clock following the lines,
//     as internal/daemon's TestBacklogReadLikeLive does.
//   - fail2ban: which lines are failures, of which address and when, is
//     fail2ban's own: `fail2ban-regex -o row` with /etc/fail2ban/filter.d/
//     sshd.conf (the server's matching: -o turns off the check of every
//     regex, as the server runs). fail2ban's server cannot be fed a past
//     month (it ignores lines older than findtime), so its jail rule is
//     applied here in the log's time: see fail2ban.go for the rule, taken
//     from fail2ban 1.0.2's failmanager, ticket, banmanager and actions.
//     The recidive jail reads the fail2ban.log lines the sshd jail's bans
//     would have written, matched by fail2ban-regex with filter.d/
//     recidive.conf.
//   - SSHGuard: which lines are attacks, of which address and how
//     dangerous, is SSHGuard's own: its sshg-parser. Its blocker's rule
//     (sshg-blocker: threshold, detection time, block time) is applied
//     here in the log's time: see sshguard.go.
//
// The month does not answer bans: an attacker keeps to its schedule.
// What a tool does with the lines of an address it has banned is its own:
// sshguard-go counts them but bans no address twice at once, SSHGuard
// ignores them, fail2ban counts them and prolongs the ban.
//
// The month is fixed (seed 1, from 2026-11-02 00:00 UTC, 30 days), and
// so is the end of the replay ("now": the month's end): the table is the
// same on every run with the same tools.
//
// Needs: apt-get install fail2ban sshguard (Debian's packages; their
// default configurations are what the columns say).
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"sshguard-go/internal/loggen"
)

// The month: fixed, so the table is too.
var (
	monthStart = time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	monthDays  = 30
	monthSeed  = uint64(1)
)

// ban is one ban a tool made: of prefix, from start until end (zero:
// permanent), by jail (fail2ban's; empty for the other tools).
type ban struct {
	prefix     netip.Prefix
	start, end time.Time
	jail       string
}

// tool decides the bans of a month's log.
type tool struct {
	name, header string
	bans         func(log string) ([]ban, error)
}

func main() {
	logPath := flag.String("log", "", "write the month to this file and keep it (default: a temporary file)")
	which := flag.String("tools", "sshguard-go,fail2ban,sshguard", "tools to compare, comma-separated")
	flag.Parse()
	if err := run(*logPath, strings.Split(*which, ",")); err != nil {
		fmt.Fprintln(os.Stderr, "slowcompare:", err)
		os.Exit(1)
	}
}

func run(logPath string, which []string) error {
	dir, err := os.MkdirTemp("", "slowcompare")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	path := logPath
	if path == "" {
		path = filepath.Join(dir, "auth.log")
	}
	actors, err := writeMonth(path)
	if err != nil {
		return err
	}
	lines, err := readLines(path)
	if err != nil {
		return err
	}
	end := monthStart.Add(time.Duration(monthDays) * 24 * time.Hour)

	var cols []tool
	for _, name := range which {
		switch name {
		case "sshguard-go":
			cols = append(cols, tool{"sshguard-go", "sshguard-go (defaults)", func(log string) ([]ban, error) {
				return sshguardGo(log, monthStart, end)
			}})
		case "fail2ban":
			var f2b *fail2banBans
			get := func(log string) (*fail2banBans, error) {
				if f2b != nil {
					return f2b, nil
				}
				var err error
				f2b, err = fail2ban(log, dir)
				return f2b, err
			}
			cols = append(cols,
				tool{"fail2ban", "fail2ban " + version("fail2ban-regex", "-V") + ", sshd jail", func(log string) ([]ban, error) {
					b, err := get(log)
					if err != nil {
						return nil, err
					}
					return b.sshd, nil
				}},
				tool{"fail2ban+recidive", "fail2ban, sshd + recidive jails", func(log string) ([]ban, error) {
					b, err := get(log)
					if err != nil {
						return nil, err
					}
					return append(slices.Clone(b.sshd), b.recidive...), nil
				}})
		case "sshguard":
			cols = append(cols, tool{"sshguard", "SSHGuard " + version("sshguard", "-v"), sshguard})
		default:
			return fmt.Errorf("unknown tool %q (sshguard-go, fail2ban, sshguard)", name)
		}
	}
	results := make([][]ban, len(cols))
	for i, c := range cols {
		b, err := c.bans(path)
		if err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
		results[i] = b
	}
	printTable(os.Stdout, actors, lines, cols, results, end)
	return nil
}

// writeMonth writes the month to path and returns who is in it.
func writeMonth(path string) ([]loggen.Actor, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	actors, err := loggen.WriteSlowMonth(f, monthStart, monthDays, monthSeed)
	if err2 := f.Close(); err == nil {
		err = err2
	}
	return actors, err
}

// line is what the table needs of a line of the month: when, which
// connection, from where, and whether it is a login.
type line struct {
	at    time.Time
	pid   string
	addr  netip.Addr
	login bool
}

var (
	lineRE = regexp.MustCompile(`^(\S+) \S+ sshd\[(\d+)\]: (.*)$`)
	fromRE = regexp.MustCompile(` from (\S+) port \d+`)
)

// readLines reads the month back: the generator's lines, for counting a
// client's attempts. (It is no tool's reading: each reads the file its
// own way.)
func readLines(path string) ([]line, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []line
	s := bufio.NewScanner(f)
	for s.Scan() {
		m := lineRE.FindStringSubmatch(s.Text())
		if m == nil {
			return nil, fmt.Errorf("unexpected line %q", s.Text())
		}
		at, err := time.Parse(time.RFC3339Nano, m[1])
		if err != nil {
			return nil, err
		}
		a := fromRE.FindStringSubmatch(m[3])
		if a == nil {
			return nil, fmt.Errorf("no address in %q", s.Text())
		}
		addr, err := netip.ParseAddr(a[1])
		if err != nil {
			return nil, err
		}
		out = append(out, line{at: at, pid: m[2], addr: addr, login: strings.HasPrefix(m[3], "Accepted ")})
	}
	return out, s.Err()
}

// version is the first line of a tool's version output, its last word.
func version(name string, arg string) string {
	out, err := exec.Command(name, arg).CombinedOutput()
	if err != nil {
		return "(not installed)"
	}
	f := strings.Fields(strings.SplitN(string(out), "\n", 2)[0])
	if len(f) == 0 {
		return ""
	}
	return f[len(f)-1]
}

// errNotInstalled says which package a tool needs.
func errNotInstalled(bin, pkg string) error {
	return errors.New(bin + " not found: apt-get install " + pkg)
}
