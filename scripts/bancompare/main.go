// Command bancompare measures, for sshguard-go, SSHGuard and fail2ban side
// by side, the time from the moment an attacker's failed logins are
// appended to an auth log to the moment the attacker's address is in the
// kernel's nftables ruleset. Each tool runs as it would on a server (its
// own log follower, its own nftables backend) in a fresh network namespace
// of its own; `nft monitor` in that namespace reports the element as the
// kernel commits it. Root only; not part of the test suite.
//
//	make build && sudo go run ./scripts/bancompare [-n 50] [-preload 100000] [-tools sshguard-go,sshguard,fail2ban]
//
// -preload N puts N other addresses into each tool's set (with nft, after
// the warm-up ban) before measuring: a server during a large campaign.
//
// -wave N measures a botnet wave instead: N new addresses, 5 failed
// passwords each, appended to the log at once; it reports the time until
// all N are in the kernel set, the daemon's CPU and anonymous memory
// (RssAnon) during the wave and in the 10 s after it, and the size of its
// state file.
//
//	sudo go run ./scripts/bancompare -tools sshguard-go -wave 100000
//
// Needs: apt-get install sshguard fail2ban (python3-pyinotify lets
// fail2ban follow the file with inotify instead of polling each second).
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

func main() {
	n := flag.Int("n", 50, "attackers per tool (after one warm-up attacker)")
	which := flag.String("tools", "sshguard-go,sshguard,fail2ban", "tools to measure, comma-separated")
	bin := flag.String("sshguard-go", "./sshguard-go", "the sshguard-go binary")
	preload := flag.Int("preload", 0, "addresses put into each tool's set before measuring")
	waveN := flag.Int("wave", 0, "measure a wave of this many new addresses appended at once instead")
	extra := flag.String("config", "", "TOML appended to sshguard-go's configuration (e.g. alert channels)")
	flag.BoolVar(&waveWebhook, "webhook", false, "with -wave: sshguard-go sends ban alerts to a webhook receiver in its namespace")
	flag.Parse()
	goConfig = *extra
	if os.Geteuid() != 0 {
		fatal(errors.New("needs root (network namespaces, nftables)"))
	}
	if *n < 1 || *n > 10000 || *preload < 0 || *preload > 1<<24 {
		fatal(errors.New("-n must be 1..10000 and -preload 0..16777216"))
	}
	if *waveN > 0 {
		if *waveN > 1<<20 {
			fatal(errors.New("-wave must be at most 1048576"))
		}
		for _, name := range strings.Split(*which, ",") {
			t, ok := tools[name]
			if !ok {
				fatal(fmt.Errorf("unknown tool %q", name))
			}
			if err := wave(name, t, *waveN, *bin); err != nil {
				fatal(fmt.Errorf("%s: %w", name, err))
			}
		}
		return
	}
	if *preload > 0 {
		fmt.Printf("with %d other addresses in each tool's set\n", *preload)
	}
	fmt.Printf("%-44s %5s %9s %9s %9s\n", "tool (log line appended -> kernel element)", "bans", "p50 ms", "p90 ms", "max ms")
	for _, name := range strings.Split(*which, ",") {
		t, ok := tools[name]
		if !ok {
			fatal(fmt.Errorf("unknown tool %q", name))
		}
		lat, label, err := measure(name, t, *n, *preload, *bin)
		if err != nil {
			fatal(fmt.Errorf("%s: %w", name, err))
		}
		slices.Sort(lat)
		q := func(f float64) float64 { return ms(lat[min(len(lat)-1, int(f*float64(len(lat))))]) }
		fmt.Printf("%-44s %5d %9.1f %9.1f %9.1f\n", label, len(lat), q(0.5), q(0.9), ms(lat[len(lat)-1]))
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "bancompare:", err)
	os.Exit(1)
}

// tool starts one daemon in namespace ns following log, with files in
// dir; set is where it puts IPv4 bans ("family table set").
type tool func(ns, dir, log, bin string) (cmd *exec.Cmd, label, set string, err error)

// goConfig is appended to sshguard-go's configuration (-config).
var goConfig string

var tools = map[string]tool{
	"sshguard-go": func(ns, dir, log, bin string) (*exec.Cmd, string, string, error) {
		cfg := filepath.Join(dir, "sshguard-go.toml")
		if err := os.WriteFile(cfg, []byte("[ban]\nban_time = \"1h\"\n"+goConfig), 0o600); err != nil {
			return nil, "", "", err
		}
		version := "?"
		if out, err := exec.Command(bin, "--version").Output(); err == nil && len(strings.Fields(string(out))) > 2 {
			version = strings.Fields(string(out))[2] // "sshguard-go version V (commit ...)"
		}
		cmd := exec.Command("ip", "netns", "exec", ns, bin, "run", "--config", cfg, "--log", log,
			"--db", filepath.Join(dir, "state.db"), "--socket", filepath.Join(dir, "ctl.sock"))
		return cmd, "sshguard-go " + version + " (nftables)", "inet sshguard-go ip4_32", nil
	},
	// SSHGuard's own pipeline, as /usr/sbin/sshguard runs it, with the
	// nftables backend and the default threshold (30: three failed
	// passwords).
	"sshguard": func(ns, dir, log, bin string) (*exec.Cmd, string, string, error) {
		const lib = "/usr/libexec/sshguard"
		if _, err := os.Stat(lib + "/sshg-blocker"); err != nil {
			return nil, "", "", errors.New("not installed (apt-get install sshguard)")
		}
		pipe := fmt.Sprintf("%[1]s/sshg-logtail %[2]s | %[1]s/sshg-parser | %[1]s/sshg-blocker -a 30 -p 3600 -s 1800 | %[1]s/sshg-fw-nft-sets", lib, log)
		return exec.Command("ip", "netns", "exec", ns, "sh", "-c", pipe), "sshguard " + pkgVersion("sshguard") + " (sshg-fw-nft-sets)", "ip sshguard attackers", nil
	},
	// fail2ban-server with Debian's configuration, its sshd jail on the
	// file, and the nftables ban action.
	"fail2ban": func(ns, dir, log, bin string) (*exec.Cmd, string, string, error) {
		if _, err := os.Stat("/etc/fail2ban/jail.conf"); err != nil {
			return nil, "", "", errors.New("not installed (apt-get install fail2ban)")
		}
		conf := filepath.Join(dir, "fail2ban")
		if out, err := exec.Command("cp", "-r", "/etc/fail2ban", conf).CombinedOutput(); err != nil {
			return nil, "", "", fmt.Errorf("cp: %v: %s", err, out)
		}
		os.RemoveAll(filepath.Join(conf, "jail.d"))
		backend := "polling"
		if exec.Command("/usr/bin/python3", "-c", "import pyinotify").Run() == nil {
			backend = "pyinotify"
		}
		jail := fmt.Sprintf("[DEFAULT]\nbanaction = nftables-allports\nbanaction_allports = nftables-allports\n"+
			"[sshd]\nenabled = true\nbackend = %s\nlogpath = %s\nmaxretry = 5\nfindtime = 10m\nbantime = 1h\n", backend, log)
		local := fmt.Sprintf("[Definition]\ndbfile = :memory:\nlogtarget = %s\n", filepath.Join(dir, "fail2ban.log"))
		if err := os.WriteFile(filepath.Join(conf, "jail.local"), []byte(jail), 0o644); err != nil {
			return nil, "", "", err
		}
		if err := os.WriteFile(filepath.Join(conf, "fail2ban.local"), []byte(local), 0o644); err != nil {
			return nil, "", "", err
		}
		cmd := exec.Command("ip", "netns", "exec", ns, "fail2ban-server", "-f", "-x", "-c", conf,
			"-s", filepath.Join(dir, "f2b.sock"), "-p", filepath.Join(dir, "f2b.pid"))
		return cmd, "fail2ban " + pkgVersion("fail2ban") + " (nftables, " + backend + ")", "inet f2b-table addr-set-sshd", nil
	},
}

func pkgVersion(pkg string) string {
	out, _ := exec.Command("dpkg-query", "-W", "-f=${Version}", pkg).Output()
	return string(out)
}

// measure runs tool t in a fresh namespace and returns the latency of n
// bans (a first, warm-up ban is left out: fail2ban creates its table then).
func measure(name string, t tool, n, preload int, bin string) ([]time.Duration, string, error) {
	ns := fmt.Sprintf("sgcmp-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		return nil, "", fmt.Errorf("ip netns add: %v: %s", err, out)
	}
	defer exec.Command("ip", "netns", "del", ns).Run()
	exec.Command("ip", "-n", ns, "link", "set", "lo", "up").Run()
	dir, err := os.MkdirTemp("", "bancompare-"+name+"-")
	if err != nil {
		return nil, "", err
	}
	defer os.RemoveAll(dir)
	log := filepath.Join(dir, "auth.log")
	f, err := os.OpenFile(log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return nil, "", err
	}
	defer f.Close()
	fmt.Fprintf(f, "%s bench sshd[100]: Server listening on 0.0.0.0 port 22.\n", time.Now().Format(time.Stamp))

	seen, stopMon, err := monitor(ns)
	if err != nil {
		return nil, "", err
	}
	defer stopMon()
	cmd, label, set, err := t(ns, dir, log, bin)
	if err != nil {
		return nil, "", err
	}
	stop, err := startGroup(cmd, filepath.Join(dir, "daemon.out"))
	if err != nil {
		return nil, "", err
	}
	defer stop(10 * time.Second)

	time.Sleep(3 * time.Second) // every tool is up and following the file

	attack := func(i int) (time.Duration, error) {
		addr := fmt.Sprintf("10.77.%d.%d", i/250, i%250+1)
		var b strings.Builder
		for k := range 5 {
			fmt.Fprintf(&b, "%s bench sshd[%d]: Failed password for root from %s port %d ssh2\n",
				time.Now().Format(time.Stamp), 2000+i, addr, 40000+k)
		}
		t0 := time.Now()
		if _, err := f.WriteString(b.String()); err != nil {
			return 0, err
		}
		at, ok := seen.wait(addr, 30*time.Second)
		if !ok {
			d, _ := os.ReadFile(filepath.Join(dir, "daemon.out"))
			return 0, fmt.Errorf("%s not in the kernel set within 30 s; the daemon said:\n%s", addr, d)
		}
		return at.Sub(t0), nil
	}
	if _, err := attack(0); err != nil {
		return nil, "", err
	}
	if preload > 0 {
		var b strings.Builder
		fmt.Fprintf(&b, "add element %s {\n", set)
		for i := range preload {
			fmt.Fprintf(&b, "11.%d.%d.%d,\n", i>>16, i>>8&255, i&255)
		}
		b.WriteString("}\n")
		file := filepath.Join(dir, "preload.nft")
		if err := os.WriteFile(file, []byte(b.String()), 0o600); err != nil {
			return nil, "", err
		}
		if out, err := exec.Command("ip", "netns", "exec", ns, "nft", "-f", file).CombinedOutput(); err != nil {
			return nil, "", fmt.Errorf("preload: %v: %s", err, out)
		}
		// The monitor reports the preload too: wait until it is through,
		// so that its backlog does not delay the measured events.
		last := preload - 1
		if _, ok := seen.wait(fmt.Sprintf("11.%d.%d.%d", last>>16, last>>8&255, last&255), time.Minute); !ok {
			return nil, "", errors.New("preload not seen by the monitor within a minute")
		}
		time.Sleep(time.Second)
	}
	var lat []time.Duration
	for i := 1; i <= n; i++ {
		time.Sleep(100 * time.Millisecond)
		d, err := attack(i)
		if err != nil {
			return nil, "", err
		}
		lat = append(lat, d)
	}
	return lat, label, nil
}

// events records when `nft monitor` first reported each address.
type events struct {
	mu   sync.Mutex
	at   map[string]time.Time
	cond *sync.Cond
}

func (e *events) wait(addr string, limit time.Duration) (time.Time, bool) {
	deadline := time.Now().Add(limit)
	timer := time.AfterFunc(limit, func() { e.mu.Lock(); e.cond.Broadcast(); e.mu.Unlock() })
	defer timer.Stop()
	e.mu.Lock()
	defer e.mu.Unlock()
	for {
		if t, ok := e.at[addr]; ok {
			return t, true
		}
		if time.Now().After(deadline) {
			return time.Time{}, false
		}
		e.cond.Wait()
	}
}

var elemAddr = regexp.MustCompile(`\b1[01]\.\d+\.\d+\.\d+\b`)

// monitor runs `nft monitor` in ns and stamps every address an "add
// element" event names.
func monitor(ns string) (*events, func(), error) {
	e := &events{at: map[string]time.Time{}}
	e.cond = sync.NewCond(&e.mu)
	cmd := exec.Command("ip", "netns", "exec", ns, "nft", "monitor", "new", "elements")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, err
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			now := time.Now()
			line := sc.Text()
			if !strings.HasPrefix(line, "add element") {
				continue
			}
			e.mu.Lock()
			for _, a := range elemAddr.FindAllString(line, -1) {
				if _, ok := e.at[a]; !ok {
					e.at[a] = now
				}
			}
			e.cond.Broadcast()
			e.mu.Unlock()
		}
	}()
	time.Sleep(200 * time.Millisecond) // the monitor is listening
	return e, func() { cmd.Process.Kill(); cmd.Wait() }, nil
}

// startGroup starts cmd in a process group of its own with its output in
// file, and returns what stops the group: SIGTERM, and SIGKILL after
// timeout.
func startGroup(cmd *exec.Cmd, file string) (stop func(timeout time.Duration), err error) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := os.Create(file)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		out.Close()
		return nil, err
	}
	return func(timeout time.Duration) {
		defer out.Close()
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(timeout):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	}, nil
}
