package daemon

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"sshguard-go/internal/alerttest"
	"sshguard-go/internal/ban"
	"sshguard-go/internal/config"
	"sshguard-go/internal/control"
	"sshguard-go/internal/engine"
	"sshguard-go/internal/testkit"
)

func writeConfig(t testing.TB, dir, text string) string {
	t.Helper()
	p := filepath.Join(dir, "sshguard-go.toml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// syncBuffer is a bytes.Buffer safe for the daemon's log.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// harness runs a Daemon in the test's process on a log file in dir, with
// the configuration dir/sshguard-go.toml, and a firewall in memory (fw)
// in place of nftables: no root needed. A test sets fw to nil for the
// real one (with WithNetNS), or backend "none" for a dry run.
type harness struct {
	t     testing.TB
	dir   string
	log   syncBuffer
	d     *Daemon
	stop  context.CancelFunc
	done  chan error
	opts  []Option // more options for New
	fw    *memFirewall
	netns int // the fd of the test's network namespace, with fw nil
}

// useNetNS gives h the real nftables in the network namespace open as fd,
// instead of the firewall in memory.
func (h *harness) useNetNS(fd int) {
	h.fw, h.netns = nil, fd
	h.opts = append(h.opts, WithNetNS(fd))
}

// memFirewall is a kernel set in memory: what is banned, for how long.
type memFirewall struct {
	mu  sync.Mutex
	set map[netip.Prefix]time.Duration
}

func (f *memFirewall) Ban(_ context.Context, els []ban.Element) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, e := range els {
		f.set[e.Prefix] = e.Timeout
	}
	return nil
}

func (f *memFirewall) Unban(_ context.Context, ps []netip.Prefix) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range ps {
		delete(f.set, p)
	}
	return nil
}

// has reports whether p is in the set.
func (f *memFirewall) has(p string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.set[netip.MustParsePrefix(p)]
	return ok
}

func newHarness(t testing.TB) *harness {
	h := &harness{t: t, dir: t.TempDir(), fw: &memFirewall{set: map[netip.Prefix]time.Duration{}}}
	t.Cleanup(h.halt)
	return h
}

// config loads dir/sshguard-go.toml with the test's paths.
func (h *harness) config() *config.Config {
	h.t.Helper()
	cfg, err := config.Load(filepath.Join(h.dir, "sshguard-go.toml"), true)
	if err != nil {
		h.t.Fatal(err)
	}
	cfg.Log.File = filepath.Join(h.dir, "auth.log")
	cfg.State.DB = filepath.Join(h.dir, "state.db")
	cfg.State.Socket = filepath.Join(h.dir, "ctl.sock")
	return cfg
}

// start starts the daemon and waits up to 15 s for its READY=1, which it
// sends once the log source has fixed where it reads from (so the test's
// next line counts).
func (h *harness) start() {
	h.t.Helper()
	ready := make(chan struct{})
	var once sync.Once
	notify := func(state string) {
		if state == "READY=1" {
			once.Do(func() { close(ready) })
		}
	}
	if f, err := os.OpenFile(filepath.Join(h.dir, "auth.log"), os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
		f.Close() // a machine's auth log exists (a missing one stops the start)
	}
	opts := append([]Option{WithLogger(slog.New(slog.NewTextHandler(&h.log, nil))), WithNotify(notify)}, h.opts...)
	switch {
	case h.fw != nil:
		opts = append(opts, WithFirewall(h.fw))
	case h.netns == 0 && h.config().Firewall.Backend == "nftables":
		h.t.Fatal("a harness without its firewall in memory needs its namespace (useNetNS): tests never touch the host's nftables")
	}
	d, err := New(context.Background(), h.config(), opts...)
	if err != nil {
		h.t.Fatalf("start: %v\n%s", err, h.log.String())
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.d, h.stop, h.done = d, cancel, make(chan error, 1)
	go func() { h.done <- d.Run(ctx) }()
	select {
	case <-ready:
	case err := <-h.done:
		h.t.Fatalf("daemon stopped at start: %v\n%s", err, h.log.String())
	case <-time.After(15 * time.Second):
		h.t.Fatalf("no READY=1 from the daemon:\n%s", h.log.String())
	}
	testkit.Eventually(h.t, 5*time.Second, "control socket", func() (bool, string) {
		_, err := control.Dial(filepath.Join(h.dir, "ctl.sock"))
		return err == nil, fmt.Sprint(err)
	})
}

// halt stops the daemon, waiting at most 10 s, and fails the test if Run
// returned an error.
func (h *harness) halt() {
	if h.d == nil {
		return
	}
	h.stop()
	select {
	case err := <-h.done:
		if err != nil {
			h.t.Errorf("daemon: %v\n%s", err, h.log.String())
		}
	case <-time.After(10 * time.Second):
		h.t.Errorf("daemon did not stop within 10 s:\n%s", h.log.String())
	}
	h.d = nil
}

// logf appends an sshd line stamped now to the log.
func (h *harness) logf(format string, args ...any) {
	f, err := os.OpenFile(filepath.Join(h.dir, "auth.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		h.t.Fatal(err)
	}
	defer f.Close()
	fmt.Fprintf(f, "%s web-01 sshd[%d]: %s\n", time.Now().Format(time.Stamp), 1000+time.Now().Nanosecond()%50000, fmt.Sprintf(format, args...))
}

// client is the control API: the daemon's socket while it runs, else a
// Service on the database (as the CLI does).
func (h *harness) client() control.Backend {
	h.t.Helper()
	if h.d != nil {
		c, err := control.Dial(filepath.Join(h.dir, "ctl.sock"))
		if err != nil {
			h.t.Fatal(err)
		}
		return c
	}
	var fw engine.Firewall // nil: nftables, in the test's namespace
	if h.fw != nil {
		fw = h.fw
	} else if h.netns == 0 {
		h.t.Fatal("a harness without its firewall in memory needs its namespace (useNetNS): tests never touch the host's nftables")
	}
	s, err := openService(context.Background(), h.config(), func(string) {}, fw, h.netns)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { s.Close() })
	return s
}

func (h *harness) alerts(pending bool) []control.AlertInfo {
	h.t.Helper()
	c := h.client()
	list, err := c.Alerts(context.Background(), pending, 50)
	if err != nil {
		h.t.Fatal(err)
	}
	if s, ok := c.(*Service); ok {
		s.Close()
	}
	return list
}

// waitAlerts waits up to 10 s for n alerts (pending ones if pending).
func (h *harness) waitAlerts(n int, pending bool) []control.AlertInfo {
	h.t.Helper()
	var list []control.AlertInfo
	testkit.Eventually(h.t, 10*time.Second, fmt.Sprintf("%d alerts (pending %v)", n, pending), func() (bool, string) {
		list = h.alerts(pending)
		return len(list) == n, fmt.Sprintf("%d: %+v\n%s", len(list), list, h.log.String())
	})
	return list
}

// startAlertDaemon starts an SMTP server and the daemon, configured by
// alertConfig (plus extra) to send every alert there.
func startAlertDaemon(tb testing.TB, extra string) (*harness, *alerttest.SMTP) {
	tb.Helper()
	s := alerttest.StartSMTP(tb, alerttest.Options{})
	h := newHarness(tb)
	alerttest.WriteConfig(tb, h.dir, s, extra)
	h.logf("Server listening on 0.0.0.0 port 22.")
	h.start()
	return h, s
}

// logCount counts the daemon log's lines that contain s.
func (h *harness) logCount(s string) int { return strings.Count(h.log.String(), s) }
