package daemon

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	rtmetrics "runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"sshguard-go/internal/loggen"
	"sshguard-go/internal/report"
	"sshguard-go/internal/roottest"
	"sshguard-go/internal/share"
	"sshguard-go/internal/testkit"
)

// The noisy neighbour: ban latency (a failed password appended to the
// auth log until its element is in the kernel set, nftables in a fresh
// network namespace) while something else keeps the daemon busy, one
// load at a time and then all together. The goal (issue 22) is a p99
// under 5 ms and the daemon under 300 MB in every case; the benchmark
// prints the comparison and fails only on a figure grossly off (a p99
// over 1 s, over 1 GB), which no loaded machine explains. The daemon's
// process runs at the Nice= of deploy/sshguard-go.service while bans are
// measured, as systemd would run it.
//
//	sudo go test ./internal/daemon -run XXX -bench NoisyNeighbour -benchtime 1x
//	sudo SSHGUARD_BENCH_NOISY=full go test ./internal/daemon -run XXX -bench NoisyNeighbour -benchtime 1x -timeout 30m
//
// The first is the smoke size (make bench-smoke): 50 bans a case; the
// second (make bench-noisy) the full size: 1,000 bans a case, each load
// at its full size. Root only.
const (
	noisyGoalP99  = 5 * time.Millisecond
	noisyGoalMem  = 300 << 20
	noisyGrossP99 = time.Second
	noisyGrossMem = 1 << 30
	noisyLate     = 30 * time.Second           // a ban not in the set by then ends the case
	noisyFullEnv  = "SSHGUARD_BENCH_NOISY"     // "full": the full size
	noisyAllEnv   = "SSHGUARD_BENCH_NOISY_ALL" // how many runs of all at once (1)
	noisyChildEnv = "SSHGUARD_TEST_NOISY_REPORT"
	noisyAuditEnv = "SSHGUARD_TEST_NOISY_AUDIT"
	noisyFleetEnv = "SSHGUARD_TEST_NOISY_FLEET"
	noisyAPIEnv   = "SSHGUARD_TEST_NOISY_API"
)

// noisySize is how much each load does.
type noisySize struct {
	bans         int           // bans measured a case
	gap          time.Duration // between two bans
	within       time.Duration // the most a case measures (then fewer bans)
	archiveLines int           // the archive report reads
	auditBytes   int64         // the most the audit stream writes
	loginsPerDay int           // the month's backlog: 30 days of these
}

func noisySizes() (noisySize, string) {
	if os.Getenv(noisyFullEnv) == "full" {
		return noisySize{bans: 1000, gap: 10 * time.Millisecond, within: 5 * time.Minute, archiveLines: 1_000_000, auditBytes: 4 << 30, loginsPerDay: 2000}, "full"
	}
	return noisySize{bans: 50, gap: 20 * time.Millisecond, within: 20 * time.Second, archiveLines: 250_000, auditBytes: 512 << 20, loginsPerDay: 100}, "smoke"
}

// noisyCase is a daemon under its loads while bans are measured.
type noisyCase struct {
	b       *testing.B
	size    noisySize
	h       *harness
	fw      *banWatch
	natsURL string // the fleet load's nats-server
	ctx     context.Context
	wg      sync.WaitGroup
	did     []string // what each load did, for the table
	mu      sync.Mutex
}

// noisyLoad is one neighbour: the configuration it needs, and start,
// which returns once the load is under way and leaves it running (in
// c.wg) until c.ctx ends.
type noisyLoad struct {
	name   string
	config func(c *noisyCase) string
	start  func(c *noisyCase)
}

func (c *noisyCase) note(format string, args ...any) {
	c.mu.Lock()
	c.did = append(c.did, fmt.Sprintf(format, args...))
	c.mu.Unlock()
}

// run starts f in c.wg.
func (c *noisyCase) run(f func()) {
	c.wg.Add(1)
	go func() { defer c.wg.Done(); f() }()
}

// noisyRow is one line of the table.
type noisyRow struct {
	load          string
	p50, p99, max time.Duration
	peak, heap    uint64
	sched         time.Duration // p99 of the time the daemon's goroutines waited for a CPU
	did           string
}

// BenchmarkNoisyNeighbour: see the constants above.
func BenchmarkNoisyNeighbour(b *testing.B) {
	roottest.Require(b, "ip", "nft")
	size, mode := noisySizes()
	archive := sync.OnceValue(func() []string { return writeArchive(b, b.TempDir(), size.archiveLines) })
	loads := []noisyLoad{auditLoad(), reportLoad(archive), backlogLoad(), apiLoad(), fleetLoad()}
	cases := [][]noisyLoad{nil}
	for _, l := range loads {
		cases = append(cases, []noisyLoad{l})
	}
	runsAll := noisyRunsAll(b)
	for range runsAll {
		cases = append(cases, loads)
	}
	rows := make([]*noisyRow, len(cases)) // a case run again (-benchtime over 1x) keeps its last
	for i, ls := range cases {
		name := "none"
		switch {
		case len(ls) == len(loads) && runsAll > 1:
			name = fmt.Sprintf("all-%d", i-len(loads))
		case len(ls) == len(loads):
			name = "all"
		case len(ls) == 1:
			name = ls[0].name
		}
		b.Run(name, func(b *testing.B) {
			row := noisyRun(b, size, ls)
			row.load = name
			rows[i] = &row
		})
	}
	var t strings.Builder
	procs := runtime.GOMAXPROCS(SetProcessors()) // what it sets, set back
	fmt.Fprintf(&t, "ban latency under noisy neighbours (%s size: %d bans a case; the daemon at nice %d as its unit runs it, with %d Go processors on %d CPUs as the run command sets them; the loads' processes at 0, report at %d; goal p99 < %v, < %d MB)\n\n",
		mode, size.bans, unitNice(b), procs, runtime.NumCPU(), report.DefaultNice, noisyGoalP99, noisyGoalMem>>20)
	t.WriteString("| load | p50 | p99 | max | peak MB | heap MB | sched p99 | goal | the load did |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		if r == nil {
			continue // failed
		}
		goal := "met"
		if r.p99 >= noisyGoalP99 || r.peak >= noisyGoalMem {
			goal = "**missed**"
		}
		fmt.Fprintf(&t, "| %s | %.2f ms | %.2f ms | %.2f ms | %d | %d | %.2f ms | %s | %s |\n", r.load, testkit.MS(r.p50), testkit.MS(r.p99), testkit.MS(r.max), r.peak>>20, r.heap>>20, testkit.MS(r.sched), goal, r.did)
	}
	if runsAll > 1 {
		t.WriteString("\n" + allSpread(rows[len(rows)-runsAll:]) + "\n")
	}
	fmt.Print("\n" + t.String() + "\n") // on standard output: b.Log is shown only with -v or a failure
}

// noisyRunsAll is how many times the case of all loads at once runs
// (noisyAllEnv; 1 without it): its p99 differs from run to run by more
// than the goal on a machine of 2 CPUs, and one run says little.
func noisyRunsAll(b *testing.B) int {
	v := os.Getenv(noisyAllEnv)
	if v == "" {
		return 1
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 50 {
		b.Fatalf("%s=%q: a number of runs from 1 to 50", noisyAllEnv, v)
	}
	return n
}

// allSpread is the line under the table for several runs of all at once:
// the median and range of their p99s and p50s, and how many met the goal.
func allSpread(rows []*noisyRow) string {
	var p50, p99 []time.Duration
	met := 0
	for _, r := range rows {
		if r == nil {
			continue // failed
		}
		p50, p99 = append(p50, r.p50), append(p99, r.p99)
		if r.p99 < noisyGoalP99 && r.peak < noisyGoalMem {
			met++
		}
	}
	if len(p99) == 0 {
		return "all at once: no run finished"
	}
	slices.Sort(p50)
	slices.Sort(p99)
	return fmt.Sprintf("all at once, %d runs: p99 median %.2f ms (%.2f-%.2f), p50 median %.2f ms (%.2f-%.2f); the goal met in %d of %d",
		len(p99), testkit.MS(p99[len(p99)/2]), testkit.MS(p99[0]), testkit.MS(p99[len(p99)-1]),
		testkit.MS(p50[len(p50)/2]), testkit.MS(p50[0]), testkit.MS(p50[len(p50)-1]), met, len(rows))
}

// noisyRun starts a daemon in a fresh network namespace with loads,
// waits until each is under way, measures the bans, stops the loads and
// reports.
func noisyRun(b *testing.B, size noisySize, loads []noisyLoad) noisyRow {
	_, nsf := roottest.NetNS(b, "sgn")
	fw := newBanWatch(benchNFTIn(b, int(nsf.Fd())))
	h := newHarness(b)
	h.fw, h.netns = nil, int(nsf.Fd())
	// The daemon's log at warning level, its first 256 KiB: the loads
	// log thousands of lines that would be kept in memory and counted.
	h.opts = append(h.opts, WithFirewall(fw), WithLogger(slog.New(slog.NewTextHandler(&cappedWriter{w: &h.log, left: 256 << 10}, &slog.HandlerOptions{Level: slog.LevelWarn}))))
	ctx, cancel := context.WithCancel(context.Background())
	c := &noisyCase{b: b, size: size, h: h, fw: fw, ctx: ctx}
	defer func() { cancel(); c.wg.Wait() }() // on a failure too
	conf := "[detection]\nthreshold = 1\n"
	if !slices.ContainsFunc(loads, func(l noisyLoad) bool { return l.name == "audit" }) {
		conf += "[audit]\nlog = \"\"\n"
	}
	for _, l := range loads {
		if l.config != nil {
			conf += l.config(c)
		}
	}
	writeConfig(b, h.dir, conf)
	runtime.GC()
	debug.FreeOSMemory() // what the cases before left does not count
	peak := startPeakMemory(ctx)
	// The processors the run command gives the runtime.
	defer runtime.GOMAXPROCS(SetProcessors())
	h.start()
	// A first ban before the loads: a daemon's first is not what is
	// measured.
	first := fw.expect(netip.MustParsePrefix("192.0.2.250/32"))
	h.logf("Failed password for root from 192.0.2.250 port 4000 ssh2")
	select {
	case <-first:
	case <-time.After(noisyLate):
		b.Fatalf("the first ban not in the kernel set within %v:\n%s", noisyLate, h.log.String())
	}
	for _, l := range loads {
		l.start(c)
	}
	// The daemon at the unit's priority, its neighbours (started above)
	// at theirs.
	setNice(b, unitNice(b))
	defer setNice(b, 0)
	b.ResetTimer()
	sched := schedLatency()
	lat, late := measureBans(b, filepath.Join(h.dir, "auth.log"), fw, banRun{n: size.bans, gap: size.gap, limit: noisyLate, within: size.within})
	b.StopTimer()
	cancel()
	c.wg.Wait()
	mem, heap := peak()
	h.halt()
	switch {
	case late:
		c.note("**ban %d of %d not in the kernel set within %v: the case stopped there** (counted as %v)", len(lat), size.bans, noisyLate, noisyLate)
	case len(lat) < size.bans:
		c.note("%d of %d bans measured: the case's %v ran out", len(lat), size.bans, size.within)
	}
	row := noisyRow{peak: mem, heap: heap, sched: sched(), did: strings.Join(c.did, "; ")}
	row.p50, row.p99, row.max = testkit.ReportQuantiles(b, lat)
	b.ReportMetric(float64(mem)/(1<<20), "peak-MB")
	b.ReportMetric(float64(heap)/(1<<20), "heap-MB")
	b.ReportMetric(0, "ns/op")
	if row.p99 > noisyGrossP99 || mem > noisyGrossMem {
		b.Errorf("p99 %v, peak %d MB: grossly over the goal (p99 < %v, < %d MB)", row.p99, mem>>20, noisyGoalP99, noisyGoalMem>>20)
	}
	return row
}

// unitNice is the Nice= of the shipped systemd unit (0 without one): the
// priority the daemon runs at.
func unitNice(b *testing.B) int {
	data, err := os.ReadFile("../../deploy/sshguard-go.service")
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "Nice="); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				b.Fatalf("the unit's Nice=%s: %v", v, err)
			}
			return n
		}
	}
	return 0
}

// setNice sets every thread of this process (the daemon, and the loads'
// clients that run in it) to nice n; threads started later inherit it.
// The loads' own processes keep theirs.
func setNice(b *testing.B, n int) {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		b.Fatal(err)
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		if err := syscall.Setpriority(syscall.PRIO_PROCESS, tid, n); err != nil && err != syscall.ESRCH {
			b.Fatalf("nice %d: %v", n, err)
		}
	}
}

// startPeakMemory samples this process's memory every 10 ms until ctx
// ends; the function it returns gives the peaks: the memory the Go
// runtime holds from the system (all it mapped, less what it gave back:
// what the process's resident size follows) and the heap in use. The
// process is the daemon with the loads' clients (and the NATS server of
// the fleet's): an upper bound of the daemon's own.
func startPeakMemory(ctx context.Context) func() (mem, heap uint64) {
	samples := []rtmetrics.Sample{{Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/released:bytes"},
		{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/memory/classes/heap/unused:bytes"}}
	var mem, heap uint64
	read := func() {
		rtmetrics.Read(samples)
		mem = max(mem, samples[0].Value.Uint64()-samples[1].Value.Uint64())
		heap = max(heap, samples[2].Value.Uint64()+samples[3].Value.Uint64())
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			read()
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return func() (uint64, uint64) { <-done; read(); return mem, heap }
}

// schedLatency starts counting how long this process's goroutines wait,
// runnable, for a processor (the runtime's /sched/latencies); the
// function it returns gives the 99th percentile since (a bucket's upper
// bound).
func schedLatency() func() time.Duration {
	read := func() *rtmetrics.Float64Histogram {
		s := []rtmetrics.Sample{{Name: "/sched/latencies:seconds"}}
		rtmetrics.Read(s)
		return s[0].Value.Float64Histogram()
	}
	before := read()
	return func() time.Duration {
		after := read()
		var total uint64
		counts := make([]uint64, len(after.Counts))
		for i, n := range after.Counts {
			counts[i] = n - before.Counts[i]
			total += counts[i]
		}
		var seen uint64
		for i, n := range counts {
			if seen += n; total > 0 && seen*100 >= total*99 {
				return time.Duration(min(after.Buckets[i+1], 3600) * float64(time.Second))
			}
		}
		return 0
	}
}

// cappedWriter passes the first left bytes to w and drops the rest.
type cappedWriter struct {
	mu   sync.Mutex
	w    io.Writer
	left int
}

func (c *cappedWriter) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.left <= 0 {
		return len(p), nil
	}
	n := min(len(p), c.left)
	c.left -= n
	c.w.Write(p[:n])
	return len(p), nil
}

// appendTo opens path for appending.
func appendTo(b *testing.B, path string) *os.File {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		b.Fatal(err)
	}
	return f
}

// waitUntil waits (testkit.Eventually, at most limit) for cond, or fails b.
func (c *noisyCase) waitUntil(limit time.Duration, what string, cond func() bool) {
	testkit.Eventually(c.b, limit, what, func() (bool, string) { return cond(), "" })
}

// auditLoad: an SSH session of a local user (its sshd line in the auth
// log, auditd's LOGIN record in the audit log the daemon follows) runs
// commands of 64 arguments of 1 KiB each (the most the trail keeps of
// one), written as auditd writes them (SYSCALL, EXECVE with the
// arguments in hex, EOE) as fast as the disk takes them, up to
// size.auditBytes.
func auditLoad() noisyLoad {
	return noisyLoad{name: "audit",
		config: func(c *noisyCase) string {
			return fmt.Sprintf("[audit]\nlog = %q\n", filepath.Join(c.h.dir, "audit.log"))
		},
		start: func(c *noisyCase) {
			path := filepath.Join(c.h.dir, "audit.log")
			f := appendTo(c.b, path)
			c.waitUntil(10*time.Second, "the audit log followed", func() bool { _, ok := c.h.d.sess.status(); return ok })
			const pid, ses = 7000, 777
			now := time.Now()
			al := appendTo(c.b, filepath.Join(c.h.dir, "auth.log"))
			fmt.Fprintf(al, "%s bastion sshd[%d]: Accepted publickey for mallory from 198.51.100.66 port 50000 ssh2: ED25519 SHA256:x\n",
				now.UTC().Format("2006-01-02T15:04:05.000000-07:00"), pid)
			al.Close()
			stamp := func(t time.Time, serial int) string {
				return fmt.Sprintf("audit(%d.%03d:%d)", t.Unix(), t.Nanosecond()/1e6, serial)
			}
			// The tail may fix its start after the first record: LOGIN
			// again until the daemon has read one.
			serial := 100
			c.waitUntil(10*time.Second, "the audit log read", func() bool {
				serial++
				fmt.Fprintf(f, "type=LOGIN msg=%s: pid=%d uid=0 old-auid=4294967295 auid=1001 tty=(none) old-ses=4294967295 ses=%d res=1\n", stamp(now, serial), pid, ses)
				st, _ := c.h.d.sess.status()
				return st.Lines > 0
			})
			f.Close()
			// The flood comes from a process of its own, as auditd's
			// records do: this one's goroutines would share the daemon's
			// scheduler, which auditd never does.
			arg, _ := json.Marshal(noisyAudit{Path: path, Bytes: c.size.auditBytes, Serial: serial, Ses: ses})
			startChild(c, noisyAuditEnv, string(arg), func(out string) {
				var did noisyAuditDid
				json.Unmarshal([]byte(out), &did) // none when stopped halfway
				st, _ := c.h.d.sess.status()
				if did.Commands == 0 {
					c.note("audit: stopped while writing (its own process); the daemon read %d lines", st.Lines)
					return
				}
				c.note("audit: %d commands (%d MB) written (its own process); the daemon read %d lines", did.Commands, did.Bytes>>20, st.Lines)
			})
		}}
}

// noisyAudit is what the audit stream's process is asked to write.
type noisyAudit struct {
	Path        string
	Bytes       int64
	Serial, Ses int
}

// noisyAuditDid is what it wrote.
type noisyAuditDid struct{ Commands, Bytes int64 }

// noisyAuditChild is the audit stream of auditLoad: commands of 64
// arguments of 1 KiB each (the most the trail keeps of one), written as
// auditd writes them (SYSCALL, EXECVE with the arguments in hex, EOE) as
// fast as the disk takes them, up to its Bytes; what it did on standard
// output (JSON).
func noisyAuditChild(arg string) int {
	var a noisyAudit
	if err := json.Unmarshal([]byte(arg), &a); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	f, err := os.OpenFile(a.Path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer f.Close()
	stamp := func(t time.Time, serial int) string {
		return fmt.Sprintf("audit(%d.%03d:%d)", t.Unix(), t.Nanosecond()/1e6, serial)
	}
	one := make([]byte, 1024)
	for i := range one {
		one[i] = byte(' ' + i%90)
	}
	var execve strings.Builder
	execve.WriteString("argc=64")
	for i := range 64 {
		fmt.Fprintf(&execve, " a%d=%s", i, hex.EncodeToString(one))
	}
	var did noisyAuditDid
	serial := a.Serial
	buf := make([]byte, 0, 2<<20)
	for did.Bytes < a.Bytes {
		serial++
		st := stamp(time.Now(), serial)
		buf = fmt.Appendf(buf, "type=SYSCALL msg=%s: arch=c000003e syscall=59 success=yes exit=0 a0=1 a1=2 a2=3 a3=4 items=2 ppid=7001 pid=%d auid=1001 uid=1001 gid=1001 euid=1001 suid=1001 fsuid=1001 egid=1001 sgid=1001 fsgid=1001 tty=pts0 ses=%d comm=\"x\" exe=\"/usr/bin/x\" key=\"sshguard-go\"\n",
			st, 8000+serial%1000, a.Ses)
		buf = fmt.Appendf(buf, "type=EXECVE msg=%s: %s\ntype=EOE msg=%s: \n", st, execve.String(), st)
		did.Commands++
		if len(buf) > 1<<20 {
			n, err := f.Write(buf)
			did.Bytes += int64(n)
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			buf = buf[:0]
		}
	}
	json.NewEncoder(os.Stdout).Encode(did)
	return 0
}

// writeArchive writes lines of generated auth log as a rotated archive
// (auth.log.1 to .4, the last two gzipped) and returns the files.
func writeArchive(b *testing.B, dir string, lines int) []string {
	var names []string
	for i := 1; i <= 4; i++ {
		name := filepath.Join(dir, fmt.Sprintf("auth.log.%d", i))
		if i > 2 {
			name += ".gz"
		}
		f, err := os.Create(name)
		if err != nil {
			b.Fatal(err)
		}
		var w io.Writer = f
		var z *gzip.Writer
		if i > 2 {
			z, _ = gzip.NewWriterLevel(f, gzip.BestSpeed)
			w = z
		}
		if err := loggen.Write(w, lines/4, uint64(i), loggen.Traditional); err != nil {
			b.Fatal(err)
		}
		if z != nil {
			if err := z.Close(); err != nil {
				b.Fatal(err)
			}
		}
		if err := f.Close(); err != nil {
			b.Fatal(err)
		}
		names = append(names, name)
	}
	return names
}

// reportLoad: `report -j 2` over the archive, in a process of its own
// (this test binary, as the CLI runs it: noisyReportChild), again and
// again.
func reportLoad(archive func() []string) noisyLoad {
	return noisyLoad{name: "report",
		start: func(c *noisyCase) {
			names := archive()
			self, err := os.Executable()
			if err != nil {
				c.b.Fatal(err)
			}
			arg, _ := json.Marshal(names)
			started := make(chan struct{})
			c.run(func() {
				var runs, stopped int
				var rss int64
				var took time.Duration
				for runs < 100 && c.ctx.Err() == nil {
					cmd := exec.CommandContext(c.ctx, self)
					cmd.Env = append(os.Environ(), noisyChildEnv+"="+string(arg))
					cmd.Stderr = os.Stderr
					var out strings.Builder
					cmd.Stdout = &out
					t0 := time.Now()
					if err := cmd.Start(); err != nil {
						c.b.Error(err)
						return
					}
					if runs == 0 {
						close(started)
					}
					err := cmd.Wait()
					if c.ctx.Err() != nil {
						stopped++ // stopped halfway: the bans are measured
						break
					}
					if err != nil {
						c.b.Errorf("report: %v", err)
						return
					}
					kb, _ := strconv.ParseInt(strings.TrimSpace(out.String()), 10, 64)
					rss = max(rss, kb)
					runs++
					took += time.Since(t0)
				}
				each := "none finished"
				if runs > 0 {
					each = fmt.Sprint((took / time.Duration(runs)).Round(time.Millisecond), " each")
				}
				c.note("report: %d runs over %d lines (%s) and %d stopped, %d MB at most (its own process; the finished runs' peak)", runs, c.size.archiveLines, each, stopped, rss>>10)
			})
			select {
			case <-started:
			case <-c.ctx.Done():
			}
		}}
}

// noisyReportChild is the report process of reportLoad: `report -j 2`
// over the files of arg (JSON), its table thrown away.
func noisyReportChild(arg string) int {
	var names []string
	if err := json.Unmarshal([]byte(arg), &names); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	syscall.Setpriority(syscall.PRIO_PROCESS, 0, 10)
	if err := report.LowerPriority(report.DefaultNice); err != nil { // as the CLI does
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	in, err := report.Open(context.Background(), names, nil, 2, "", time.Time{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	col := report.NewCollector(report.Window{}, in.Jobs, len(in.Names))
	res := in.Scan(col.EmitFor, col.Done)
	w := bufio.NewWriter(io.Discard)
	report.WriteText(w, col.Sorted())
	w.Flush()
	if res.Failed > 0 {
		fmt.Fprintln(os.Stderr, res.Errors)
		return 1
	}
	fmt.Println(peakRSS()) // what the parent's wait cannot tell (below)
	return 0
}

// peakRSS is this process's peak resident size in KiB (VmHWM). A child's
// rusage cannot give it: Go starts a child sharing the parent's memory
// until exec (vfork), and Linux carries that memory's peak into the
// child's ru_maxrss, so a report started by a 1 GB daemon "peaked" at 1 GB.
func peakRSS() int64 {
	data, _ := os.ReadFile("/proc/self/status")
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

// backlogLoad: a month's logins (30 days of size.loginsPerDay, each with
// its session's lines: 5 lines) appended to the auth log at 2,000 logins
// (10,000 lines) a second, stamped in the past month: the daemon commits
// each login (and session) as it reads them.
func backlogLoad() noisyLoad {
	return noisyLoad{name: "backlog",
		start: func(c *noisyCase) {
			f := appendTo(c.b, filepath.Join(c.h.dir, "auth.log"))
			total := 30 * c.size.loginsPerDay
			start := time.Now().Add(-31 * 24 * time.Hour)
			step := 30 * 24 * time.Hour / time.Duration(total)
			const perTick = 20 // a 10 ms
			var n int
			chunk := func() {
				var sb strings.Builder
				for k := 0; k < perTick && n < total; k++ {
					at := start.Add(time.Duration(n) * step)
					user := []string{"alice", "bob", "carol", "dave"}[n%4]
					ip, port, pid := fmt.Sprintf("198.51.100.%d", 1+n%50), 40000+n%20000, 20000+n
					for i, text := range []string{
						fmt.Sprintf("Accepted publickey for %s from %s port %d ssh2: ED25519 SHA256:TZNeiCTCTlvIYUy8EeTnjSoapIo676aoheF7ElbBGdo", user, ip, port),
						fmt.Sprintf("pam_unix(sshd:session): session opened for user %s(uid=1000) by (uid=0)", user),
						fmt.Sprintf("Received disconnect from %s port %d:11: disconnected by user", ip, port),
						fmt.Sprintf("Disconnected from user %s %s port %d", user, ip, port),
						fmt.Sprintf("pam_unix(sshd:session): session closed for user %s", user),
					} {
						t := at.Add(time.Duration(i) * time.Minute)
						fmt.Fprintf(&sb, "%s web-01 sshd[%d]: %s\n", t.UTC().Format("2006-01-02T15:04:05.000000-07:00"), pid, text)
					}
					n++
				}
				if _, err := f.WriteString(sb.String()); err != nil {
					c.b.Error(err)
				}
			}
			before := c.h.d.Stats().Scan.Lines
			chunk()
			c.waitUntil(10*time.Second, "the backlog read", func() bool { return c.h.d.Stats().Scan.Lines > before })
			c.run(func() {
				defer f.Close()
				tick := time.NewTicker(10 * time.Millisecond)
				defer tick.Stop()
				for n < total {
					select {
					case <-c.ctx.Done():
						c.note("backlog: %d of %d logins", n, total)
						return
					case <-tick.C:
						chunk()
					}
				}
				c.note("backlog: all %d logins", total)
			})
		}}
}

// apiLoad: 200 requests a second (4 clients) on the daemon's API with its
// own token, round the private and the counting endpoints, from a process
// of its own (noisyAPIChild), as a browser or a script would be.
func apiLoad() noisyLoad {
	return noisyLoad{name: "api",
		config: func(*noisyCase) string { return "[api]\nlisten = \"127.0.0.1:0\"\n" },
		start: func(c *noisyCase) {
			tok, err := os.ReadFile(filepath.Join(c.h.dir, apiTokenName))
			if err != nil {
				c.b.Fatal(err)
			}
			arg, _ := json.Marshal(apiAsk{Base: "http://" + c.h.d.APIAddr(), Token: strings.TrimSpace(string(tok))})
			out := startChild(c, noisyAPIEnv, string(arg), func(out string) {
				lines := strings.Split(strings.TrimSpace(out), "\n")
				c.note("%s", lines[len(lines)-1])
			})
			c.waitUntil(20*time.Second, "the API's first answer", func() bool { return strings.Contains(out.String(), "up") })
		}}
}

// apiAsk is what noisyAPIChild is given.
type apiAsk struct{ Base, Token string }

// noisyAPIChild is the API clients of apiLoad; it prints "up" once the
// first request is answered, and what they did when SIGTERM comes.
func noisyAPIChild(arg string) int {
	var ask apiAsk
	if err := json.Unmarshal([]byte(arg), &ask); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	paths := []string{"/api/v1/summary", "/api/v1/bans?limit=100", "/api/v1/logins", "/api/v1/events", "/api/v1/sessions",
		"/api/v1/days/" + time.Now().Format("2006-01-02")}
	client := &http.Client{Timeout: 5 * time.Second}
	get := func(path string) int {
		req, _ := http.NewRequest("GET", ask.Base+path, nil)
		req.Header.Set("Authorization", "Bearer "+ask.Token)
		resp, err := client.Do(req)
		if err != nil {
			return 0
		}
		defer resp.Body.Close()
		io.Copy(io.Discard, resp.Body)
		return resp.StatusCode
	}
	if code := get(paths[0]); code != 200 {
		fmt.Fprintf(os.Stderr, "api: %d\n", code)
		return 1
	}
	fmt.Println("up")
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	var ok, failed, late atomic.Int64
	work := make(chan string, 4)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for p := range work {
				if get(p) == 200 {
					ok.Add(1)
				} else {
					failed.Add(1)
				}
			}
		})
	}
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for i := 0; i < 1_000_000; i++ {
		select {
		case <-term:
			close(work)
			wg.Wait()
			fmt.Printf("api: %d requests answered, %d failed, %d not sent (the clients busy; its own process)\n", ok.Load(), failed.Load(), late.Load())
			return 0
		case <-tick.C:
			select {
			case work <- paths[i%len(paths)]:
			default:
				late.Add(1)
			}
		}
	}
	return 0
}

// startChild starts this test binary with env=arg as a load's process,
// stopped (SIGTERM) when c's context ends, and calls done with what it
// printed once it has ended. The builder returned is what it has printed
// so far.
func startChild(c *noisyCase, env, arg string, done func(out string)) *syncBuilder {
	self, err := os.Executable()
	if err != nil {
		c.b.Fatal(err)
	}
	cmd := exec.CommandContext(c.ctx, self)
	cmd.Env = append(os.Environ(), env+"="+arg)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	cmd.Stderr = os.Stderr
	out := &syncBuilder{}
	cmd.Stdout = out
	if err := cmd.Start(); err != nil {
		c.b.Fatal(err)
	}
	c.run(func() {
		if err := cmd.Wait(); err != nil && c.ctx.Err() == nil {
			c.b.Errorf("%s: %v", env, err)
		}
		done(out.String())
	})
	return out
}

// syncBuilder is a strings.Builder written by one goroutine while
// another reads it.
type syncBuilder struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuilder) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuilder) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// fleetLoad: a peer ("noisy") sends 10,000 messages a second: 5,000 bans
// of new addresses (on its subject of the bans' stream, which the daemon
// applies) and 5,000 batches of fleet-wide attempts. The NATS server
// (Debian's nats-server) and the peer (noisyFleetChild) are processes of
// their own, as they are in a fleet: in this one their goroutines would
// share the daemon's scheduler.
func fleetLoad() noisyLoad {
	return noisyLoad{name: "fleet",
		config: func(c *noisyCase) string {
			if c.natsURL == "" {
				c.natsURL = startNATSProcess(c.b)
			}
			return fmt.Sprintf("[fleet]\nnats_url = %q\nname = \"h\"\ncount_fleetwide = true\n", c.natsURL)
		},
		start: func(c *noisyCase) {
			fleet := func() share.Status {
				if st := c.h.d.Stats().Fleet; st != nil {
					return *st
				}
				return share.Status{}
			}
			c.waitUntil(20*time.Second, "the daemon in the fleet", func() bool {
				st := fleet()
				return st.Server != "" && st.Fleetwide != nil && st.Fleetwide.Listening
			})
			startChild(c, noisyFleetEnv, c.natsURL, func(out string) {
				st := fleet()
				var received int64
				if st.Fleetwide != nil {
					received = st.Fleetwide.Received
				}
				c.note("fleet: %s messages sent (its own process, to nats-server), %d bans applied, %d attempts taken", strings.TrimSpace(out), st.Received["noisy"]["applied"], received)
			})
			c.waitUntil(20*time.Second, "the peer's bans applied", func() bool { return fleet().Received["noisy"]["applied"] > 0 })
		}}
}

// startNATSProcess starts Debian's nats-server with JetStream on a free
// loopback port, stopped at the end of b, and returns its URL.
func startNATSProcess(b *testing.B) string {
	roottest.Require(b, "nats-server")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command("nats-server", "-a", "127.0.0.1", "-p", strconv.Itoa(port), "-js", "-sd", b.TempDir())
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() })
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	testkit.Eventually(b, 20*time.Second, "nats-server up", func() (bool, string) {
		nc, err := nats.Connect(url)
		if err == nil {
			nc.Close()
		}
		return err == nil, fmt.Sprint(err)
	})
	return url
}

// noisyFleetChild is the peer of fleetLoad: once the bans' stream exists
// on the server at url, 100 messages every 10 ms (half bans, half
// attempts) until SIGTERM, then how many it sent on standard output.
func noisyFleetChild(url string) int {
	nc, err := nats.Connect(url)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer nc.Close()
	for {
		m, err := nc.Request("$JS.API.STREAM.INFO.SSHGUARD_BANS", nil, time.Second)
		if err == nil && !strings.Contains(string(m.Data), `"error"`) {
			break
		}
		time.Sleep(50 * time.Millisecond) // the daemon makes the stream: a poll, bounded by the parent's wait
	}
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	var sent, i int
	send := func(n int) bool {
		expires := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
		ms := time.Now().UnixMilli()
		for range n {
			a := netip.AddrFrom4([4]byte{100, 64 + byte(i>>16&63), byte(i >> 8), byte(i)})
			i++
			ban := fmt.Sprintf(`{"v":1,"kind":"ban","prefix":"%s/32","expires":"%s","reason":"noisy","origin":"detected"}`, a, expires)
			att := fmt.Sprintf(`[{"p":"%s/32","w":1,"t":%d}]`, a, ms)
			if nc.Publish("sshguard.bans.noisy", []byte(ban)) != nil || nc.Publish("sshguard.attempts.noisy", []byte(att)) != nil {
				return false
			}
			sent += 2
		}
		return true
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for sent < 10_000_000 {
		select {
		case <-term:
			nc.Flush()
			fmt.Println(sent)
			return 0
		case <-tick.C:
			if !send(50) {
				fmt.Println(sent)
				return 1
			}
		}
	}
	fmt.Println(sent)
	return 0
}
