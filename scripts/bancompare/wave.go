package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"sshguard-go/internal/roottest"
)

// wave appends n new attackers (5 failed passwords each) to the log in one
// go and reports how long tool t takes to have all of them in its kernel
// set, with its CPU and memory during and after.
func wave(name string, t tool, n int, bin string) error {
	ns := fmt.Sprintf("sgwave-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		return fmt.Errorf("ip netns add: %v: %s", err, out)
	}
	defer exec.Command("ip", "netns", "del", ns).Run()
	exec.Command("ip", "-n", ns, "link", "set", "lo", "up").Run()
	var hooks atomic.Int64
	if waveWebhook && name == "sshguard-go" {
		// A webhook receiver inside the namespace: every ban alert (or
		// digest) the daemon sends arrives here.
		l, err := roottest.ListenIn(ns, "127.0.0.1:9999")
		if err != nil {
			return err
		}
		defer l.Close()
		go http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			hooks.Add(1)
		}))
		goConfig += "\n[alerts.webhook]\nurl = \"http://127.0.0.1:9999/hook\"\nkinds = [\"ban\", \"login\"]\n"
	}
	dir, err := os.MkdirTemp("", "wave-"+name+"-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	log := filepath.Join(dir, "auth.log")
	f, err := os.OpenFile(log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return err
	}
	defer f.Close()
	fmt.Fprintf(f, "%s bench sshd[100]: Server listening on 0.0.0.0 port 22.\n", time.Now().Format(time.Stamp))
	cmd, label, set, err := t(ns, dir, log, bin)
	if err != nil {
		return err
	}
	stop, err := startGroup(cmd, filepath.Join(dir, "daemon.out"))
	if err != nil {
		return err
	}
	defer stop(20 * time.Second)

	time.Sleep(3 * time.Second) // up and following the file

	// The lines, written in one go (as fast as the file system takes them).
	var b strings.Builder
	now := time.Now().Format(time.Stamp)
	for i := range n {
		// Two addresses a /24: more would make sshguard-go ban their
		// network (network_horizons: 20 attempts of a /24 without a
		// login) instead of each address, which is what is timed here.
		addr := fmt.Sprintf("10.%d.%d.%d", i/2>>8, i/2&255, 1+i%2)
		for k := range 5 {
			fmt.Fprintf(&b, "%s bench sshd[%d]: Failed password for invalid user u%d from %s port %d ssh2\n", now, 2000+i%30000, k, addr, 40000+k)
		}
	}
	pids := func() []int { return groupPIDs(cmd.Process.Pid) }
	cpu0 := cpuTicks(pids())
	t0 := time.Now()
	if _, err := f.WriteString(b.String()); err != nil {
		return err
	}
	b.Reset()
	var peakAnon int64
	deadline := t0.Add(30 * time.Minute)
	banned := 0
	// sshguard-go logs each ban once it is in the kernel and recorded:
	// counting those lines costs far less than listing a set of 100,000
	// elements every half second (which slowed the daemon it measured).
	// The set is listed once at the end to check.
	count := func() int { return setCount(ns, set) }
	if name == "sshguard-go" {
		count = func() int {
			b, _ := os.ReadFile(filepath.Join(dir, "daemon.out"))
			return strings.Count(string(b), "msg=banned")
		}
	}
	for time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
		peakAnon = max(peakAnon, rssAnon(pids()))
		if banned = count(); banned >= n {
			break
		}
	}
	took := time.Since(t0)
	if banned >= n {
		banned = setCount(ns, set)
	}
	cpuWave := cpuTicks(pids()) - cpu0
	if banned < n {
		d, _ := os.ReadFile(filepath.Join(dir, "daemon.out"))
		return fmt.Errorf("%d of %d banned after %v; the daemon said:\n%s", banned, n, took, tail(string(d), 2000))
	}
	// Ten seconds after: is it idle?
	cpu1 := cpuTicks(pids())
	var anonAfter int64
	for range 20 {
		time.Sleep(500 * time.Millisecond)
		anonAfter = max(anonAfter, rssAnon(pids()))
	}
	cpuAfter := float64(cpuTicks(pids())-cpu1) / 100 / 10 * 100 // % of one core over 10 s
	size := "-"
	if st, err := os.Stat(filepath.Join(dir, "state.db")); err == nil {
		size = fmt.Sprintf("%.1f MB", float64(st.Size())/1e6)
	}
	webhook := ""
	if waveWebhook && name == "sshguard-go" {
		webhook = fmt.Sprintf("; %d webhook requests", hooks.Load())
	}
	fmt.Printf("%s: %d addresses (%d lines) banned in %.2f s (%.0f bans/s), CPU %.1f s during; after: %.1f%% CPU; RssAnon peak %d MB during, %d MB after; state file %s%s\n",
		label, n, 5*n, took.Seconds(), float64(n)/took.Seconds(), float64(cpuWave)/100, cpuAfter, peakAnon>>10, anonAfter>>10, size, webhook)
	return nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// setCount counts the elements of set ("family table set") in ns.
func setCount(ns, set string) int {
	args := append([]string{"netns", "exec", ns, "nft", "list", "set"}, strings.Fields(set)...)
	out, err := exec.Command("ip", args...).Output()
	if err != nil {
		return 0
	}
	return len(dottedQuad.FindAllIndex(out, -1))
}

var dottedQuad = regexp.MustCompile(`\b\d+\.\d+\.\d+\.\d+\b`)

// groupPIDs lists the processes of process group pgid.
func groupPIDs(pgid int) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if g, err := syscall.Getpgid(pid); err == nil && g == pgid {
			out = append(out, pid)
		}
	}
	return out
}

// cpuTicks sums utime+stime of pids, in clock ticks (1/100 s).
func cpuTicks(pids []int) int64 {
	var sum int64
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		if len(f) > 12 {
			u, _ := strconv.ParseInt(f[11], 10, 64)
			st, _ := strconv.ParseInt(f[12], 10, 64)
			sum += u + st
		}
	}
	return sum
}

// rssAnon sums RssAnon of pids, in KiB.
func rssAnon(pids []int) int64 {
	var sum int64
	for _, pid := range pids {
		fh, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "RssAnon:"); ok {
				kb, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
				sum += kb
			}
		}
		fh.Close()
	}
	return sum
}

// waveWebhook turns on a webhook alert channel for sshguard-go (-webhook).
var waveWebhook bool
