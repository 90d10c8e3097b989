package daemon

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"sshguard-go/internal/api"
	"sshguard-go/internal/control"
	"sshguard-go/internal/httpserve"
	"sshguard-go/internal/testkit"
)

// short is lim with timeouts a test can see pass and a cap it can reach.
func short(lim httpserve.Limits) httpserve.Limits {
	lim.ReadHeader, lim.Read, lim.Write, lim.Idle, lim.Grace = 2*time.Second, 2*time.Second, 2*time.Second, 2*time.Second, time.Second
	lim.MaxConns, lim.MaxRequests = 16, 4
	return lim
}

// TestSlowClientsHoldNoServer sets slow clients on the API, the metrics
// and the control socket in turn (headers a byte at a time, an answer of
// 10,000 bans never read, more connections than the cap): a normal client
// of each is answered beside them and every slow connection is closed
// after its timeout. Then, with slow connections held open on all three,
// a detected ban reaches the firewall as fast as without them: nothing a
// server waits on is on the ban's path.
func TestSlowClientsHoldNoServer(t *testing.T) {
	h := newHarness(t)
	tok := "0123456789abcdef0123456789abcdef"
	os.WriteFile(filepath.Join(h.dir, "token"), []byte(tok+"\n"), 0o600)
	metrics := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	writeConfig(t, h.dir, fmt.Sprintf("[detection]\nthreshold = 3\n[audit]\nlog = \"\"\n[api]\nlisten = \"127.0.0.1:0\"\ntoken_file = %q\n[metrics]\nlisten = %q\n",
		filepath.Join(h.dir, "token"), metrics))
	h.start()
	reqs := make([]control.BanRequest, 10000)
	for i := range reqs {
		reqs[i] = control.BanRequest{Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}), 32), Reason: "a wave"}
	}
	if _, errs := control.BanAll(context.Background(), h.client(), reqs); len(errs) > 0 {
		t.Fatal(errs[0])
	}
	// Those were made under the socket's own limits (a batch of 2,048 may
	// take longer than a short write timeout under the race detector);
	// the slow clients meet the short ones.
	h.halt()
	lim := serverLimits{api: short(api.Limits()), metrics: short(metricsLimits()), control: short(control.Limits())}
	h.opts = append(h.opts, func(d *Daemon) { d.limits = lim })
	h.start()
	fresh := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	ok := func(url, token string) error {
		if code := getJSON(t, fresh, url, token, nil); code != 200 {
			return fmt.Errorf("GET %s: %d", url, code)
		}
		return nil
	}
	apiAddr, sock := h.d.APIAddr(), filepath.Join(h.dir, "ctl.sock")
	targets := []struct {
		name string
		tg   testkit.SlowTarget
	}{
		{"api", testkit.SlowTarget{Network: "tcp", Addr: apiAddr, Limits: lim.api,
			Request: "GET /api/v1/summary HTTP/1.1\r\nHost: x\r\n\r\n",
			Big:     "GET /api/v1/bans?limit=10000 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + tok + "\r\n\r\n",
			Normal:  func() error { return ok("http://"+apiAddr+"/api/v1/summary", tok) }}},
		{"metrics", testkit.SlowTarget{Network: "tcp", Addr: metrics, Limits: lim.metrics,
			Request: "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
			Normal:  func() error { return ok("http://"+metrics+"/metrics", "") }}},
		{"control", testkit.SlowTarget{Network: "unix", Addr: sock, Limits: lim.control,
			Request: "GET /v1/status HTTP/1.1\r\nHost: x\r\n\r\n",
			Big:     "GET /v1/bans HTTP/1.1\r\nHost: x\r\n\r\n",
			Normal: func() error {
				c, err := control.Dial(sock)
				if err == nil {
					_, err = c.Status(context.Background())
				}
				return err
			}}},
	}
	for _, s := range targets {
		t.Run(s.name, func(t *testing.T) { testkit.HoldsNoServer(t, s.tg) })
	}
	if t.Failed() {
		return
	}

	before := banTime(t, h, "203.0.113.10")
	for _, s := range targets {
		testkit.Hold(t, s.tg)
	}
	during := banTime(t, h, "203.0.113.11")
	t.Logf("a ban's latency: %v alone, %v beside slow clients on every server", before, during)
	if during > before+time.Second {
		t.Fatalf("a ban beside slow clients took %v, %v without them", during, before)
	}
}

// banTime is how long a ban of ip takes from the log to the firewall.
func banTime(t *testing.T, h *harness, ip string) time.Duration {
	t.Helper()
	start := time.Now()
	h.attack(ip)
	testkit.Eventually(t, 10*time.Second, "the ban of "+ip+" in the firewall", func() (bool, string) {
		return h.fw.has(ip + "/32"), "not banned"
	})
	return time.Since(start)
}
