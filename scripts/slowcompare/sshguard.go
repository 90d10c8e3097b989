package main

import (
	"bufio"
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// What is SSHGuard's own here, and what is its blocker's rule applied in
// the log's time.
//
// SSHGuard's own: which lines are attacks, of which address, how
// dangerous. Its parser, sshg-parser, reads the month twice: with -a it
// marks each line that is an attack ("* "), without it prints each
// attack ("service address kind dangerousness"), in order; the nth
// marked line is the nth attack, at that line's time.
//
// Its blocker's rule (sshg-blocker, SSHGuard 2.4's src/blocker/blocker.c
// and blocklist.c), on Debian's /etc/sshguard/sshguard.conf (THRESHOLD=30,
// DETECTION_TIME=1800, BLOCK_TIME=120; no blacklist), applied here in the
// log's time:
//
//   - An address's attacks add up their dangerousness (10 each here) from
//     its first attack on; the sum is dropped once that first attack is
//     more than DETECTION_TIME old (purge_limbo_stale, at every attack):
//     a window from the first attack, not a sliding one.
//   - At THRESHOLD (30: the 3rd attack) the address is blocked, for
//     BLOCK_TIME, 1.5 times longer at each block after its first (kept for
//     the blocker's whole run).
//   - Attacks of a blocked address are ignored. A block is released once
//     more than its time has passed since the attack that made it, at a
//     check that comes at random 1 to 61 s apart: here at the earliest.
//
// sshg-blocker itself was checked to block at the 3rd attack of 10 (30
// reached, not exceeded) and to count from the first attack (three
// attacks 1.5 s apart, DETECTION_TIME 2: no block).
const (
	sshguardThreshold  = 30
	sshguardDetection  = 1800 // seconds
	sshguardBlock      = 120  // seconds
	sshguardMultiplier = 1.5
)

// sshguardParsers are where Debian and a build from source put
// sshg-parser.
var sshguardParsers = []string{"/usr/libexec/sshguard/sshg-parser", "/usr/local/libexec/sshguard/sshg-parser"}

// attack is one attack sshg-parser found.
type attack struct {
	addr   netip.Addr
	danger int
	at     time.Time
}

// sshguard decides SSHGuard's blocks over log.
func sshguard(log string) ([]ban, error) {
	attacks, err := sshgParse(log)
	if err != nil {
		return nil, err
	}
	return sshguardBlocks(attacks), nil
}

// sshgParse is the attacks sshg-parser finds in log, each at its line's
// time.
func sshgParse(log string) ([]attack, error) {
	parser := ""
	for _, p := range sshguardParsers {
		if _, err := os.Stat(p); err == nil {
			parser = p
			break
		}
	}
	if parser == "" {
		return nil, errNotInstalled("sshg-parser", "sshguard")
	}
	lines, err := readLines(log)
	if err != nil {
		return nil, err
	}
	marked, err := runParser(parser, log, "-a")
	if err != nil {
		return nil, err
	}
	found, err := runParser(parser, log)
	if err != nil {
		return nil, err
	}
	if len(marked) != len(lines) {
		return nil, fmt.Errorf("sshg-parser -a: %d lines for %d", len(marked), len(lines))
	}
	var out []attack
	for i, m := range marked {
		if !strings.HasPrefix(m, "* ") {
			continue
		}
		k := len(out)
		if k >= len(found) {
			return nil, fmt.Errorf("sshg-parser: more lines marked than attacks printed")
		}
		f := strings.Fields(found[k])
		if len(f) != 4 {
			return nil, fmt.Errorf("sshg-parser: unexpected output %q", found[k])
		}
		addr, err := netip.ParseAddr(f[1])
		if err != nil {
			return nil, fmt.Errorf("sshg-parser: %w", err)
		}
		danger, err := strconv.Atoi(f[3])
		if err != nil {
			return nil, fmt.Errorf("sshg-parser: %w", err)
		}
		out = append(out, attack{addr, danger, lines[i].at})
	}
	if len(out) != len(found) {
		return nil, fmt.Errorf("sshg-parser: %d attacks printed, %d lines marked", len(found), len(out))
	}
	return out, nil
}

// runParser is sshg-parser's output for log, line by line.
func runParser(parser, log string, args ...string) ([]string, error) {
	f, err := os.Open(log)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cmd := exec.Command(parser, args...)
	cmd.Stdin = f
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", parser, err)
	}
	var lines []string
	s := bufio.NewScanner(bytes.NewReader(out))
	s.Buffer(nil, 1<<20)
	for s.Scan() {
		lines = append(lines, s.Text())
	}
	return lines, s.Err()
}

// sshguardBlocks applies sshg-blocker's rule to attacks, in order.
func sshguardBlocks(attacks []attack) []ban {
	type pending struct {
		first, last time.Time
		danger      int
	}
	type blocked struct {
		last   time.Time
		pardon int64 // seconds
	}
	limbo := map[netip.Addr]*pending{}
	hell := map[netip.Addr]blocked{}
	offenses := map[netip.Addr]int{}
	var out []ban
	for _, a := range attacks {
		now := a.at.Unix() // sshg-blocker's clock: time(NULL), whole seconds
		for addr, p := range limbo {
			if now-p.first.Unix() > sshguardDetection {
				delete(limbo, addr)
			}
		}
		if b, ok := hell[a.addr]; ok {
			if now-b.last.Unix() <= b.pardon {
				continue // already blocked
			}
			delete(hell, a.addr)
		}
		if a.addr.IsLoopback() { // its whitelist: 127.0.0.0/8, ::1
			continue
		}
		p := limbo[a.addr]
		if p == nil {
			p = &pending{first: a.at, last: a.at, danger: a.danger}
			limbo[a.addr] = p
		} else {
			p.last = a.at
			p.danger += a.danger
		}
		if p.danger < sshguardThreshold {
			continue
		}
		offenses[a.addr]++
		pardon := int64(sshguardBlock)
		for range offenses[a.addr] - 1 {
			pardon = int64(float32(pardon) * sshguardMultiplier) // time_t *= float
		}
		hell[a.addr] = blocked{last: p.last, pardon: pardon}
		delete(limbo, a.addr)
		out = append(out, ban{prefix: netip.PrefixFrom(a.addr, a.addr.BitLen()), start: a.at,
			end: p.last.Add(time.Duration(pardon+1) * time.Second)})
	}
	return out
}
