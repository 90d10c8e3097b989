package control

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"sshguard-go/internal/httpserve"
	"sshguard-go/internal/testkit"
)

// bigBackend answers list with as many bans as a wave leaves, status and
// BanMany; what a test does not ask of it is nil (it panics).
type bigBackend struct {
	Backend
	bans []BanInfo
}

func newBigBackend(n int) bigBackend {
	b := bigBackend{bans: make([]BanInfo, n)}
	now := time.Now()
	for i := range b.bans {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		b.bans[i] = BanInfo{Prefix: netip.PrefixFrom(a, 32), Since: now, Expires: now.Add(time.Hour), Count: 1,
			Reason: "failed passwords", LastUser: "root", Origin: "detected"}
	}
	return b
}

func (b bigBackend) Bans(context.Context) (BanList, error)  { return BanList{Bans: b.bans}, nil }
func (b bigBackend) Status(context.Context) (Status, error) { return Status{Started: time.Now()}, nil }
func (b bigBackend) BanMany(_ context.Context, reqs []BanRequest) ([]BanResult, error) {
	out := make([]BanResult, len(reqs))
	for i, r := range reqs {
		out[i].Ban = &BanInfo{Prefix: r.Prefix, Since: time.Now(), Reason: r.Reason, Origin: "archive"}
	}
	return out, nil
}

// serveControl serves b on a socket in a temporary directory with lim
// until the test ends.
func serveControl(t *testing.T, b Backend, lim httpserve.Limits) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ctl.sock")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, path, b, lim) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Error(err)
			}
		case <-time.After(lim.Grace + 5*time.Second):
			t.Error("Serve did not return")
		}
	})
	testkit.Eventually(t, 5*time.Second, "the control socket", func() (bool, string) {
		_, err := Dial(path)
		return err == nil, fmt.Sprint(err)
	})
	return path
}

// TestSlowClientsHoldNoControlSocket: a root process trickling headers,
// one never reading a list of 10,000 bans (1.5 MB), more connections than
// the cap: the CLI is answered beside them and each is closed after its
// timeout.
func TestSlowClientsHoldNoControlSocket(t *testing.T) {
	lim := Limits()
	lim.ReadHeader, lim.Read, lim.Write, lim.Idle, lim.Grace = 2*time.Second, 2*time.Second, 2*time.Second, 2*time.Second, time.Second
	lim.MaxConns, lim.MaxRequests = 16, 4
	path := serveControl(t, newBigBackend(10000), lim)
	testkit.HoldsNoServer(t, testkit.SlowTarget{Network: "unix", Addr: path, Limits: lim,
		Request: "GET /v1/status HTTP/1.1\r\nHost: sshguard-go\r\n\r\n",
		Big:     "GET /v1/bans HTTP/1.1\r\nHost: sshguard-go\r\n\r\n",
		Normal: func() error {
			c, err := Dial(path)
			if err == nil {
				_, err = c.Status(context.Background())
			}
			return err
		}})
}

// TestControlLimitsAllowTheLargestAnswers: under the socket's own limits
// the server writes a list of 100,000 bans and makes a batch of MaxBatch
// within half the write timeout, under the race detector on a loaded
// machine too.
func TestControlLimitsAllowTheLargestAnswers(t *testing.T) {
	lim := Limits()
	path := serveControl(t, newBigBackend(100000), lim)
	c, err := Dial(path)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	// The answer as the server writes it (the CLI's decoding comes after
	// the write timeout's end).
	resp, err := c.hc.Get("http://sshguard-go/v1/bans")
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || n < 100000*100 {
		t.Fatalf("list of 100,000 bans: %s, %d bytes, %v", resp.Status, n, err)
	}
	reqs := make([]BanRequest, MaxBatch)
	for i := range reqs {
		reqs[i] = BanRequest{Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 0, byte(i >> 8), byte(i)}), 32), Reason: "an archive's offender", Origin: "archive"}
	}
	res, err := c.BanMany(context.Background(), reqs)
	if err != nil || len(res) != MaxBatch {
		t.Fatalf("a batch of %d bans: %d results, %v", MaxBatch, len(res), err)
	}
	d := time.Since(start)
	t.Logf("list of 100,000 bans (%d MB) and a batch of %d: %v", n>>20, MaxBatch, d)
	if d > lim.Write/2 {
		t.Errorf("the two took %v: not within half the write timeout (%v)", d, lim.Write)
	}
}

func TestSessionAddr(t *testing.T) {
	for in, want := range map[string]string{
		"203.0.113.7 51234 22": "203.0.113.7", "::ffff:203.0.113.8 1 22": "203.0.113.8",
		"fe80::1%eth0 1 22": "fe80::1", "": "invalid IP", "junk 1 22": "invalid IP",
	} {
		if got := SessionAddr(in).String(); got != want {
			t.Errorf("SessionAddr(%q) = %s, want %s", in, got, want)
		}
	}
}
