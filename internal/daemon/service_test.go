package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"sshguard-go/internal/control"
	"sshguard-go/internal/testkit"
)

// service opens a Service as the CLI does with no daemon, on a
// configuration with no firewall (a dry run: the gate's rules are the
// same, its bans are kept apart).
func service(t *testing.T, extra string) *Service {
	t.Helper()
	h := newHarness(t)
	writeConfig(t, h.dir, "[firewall]\nbackend = \"none\"\n"+extra)
	s, err := OpenService(context.Background(), h.config(), func(string) {})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestUnbanAddressOfPrefixBan: with ipv4_prefix = 24, unbanning an
// address lifts the /24 it was banned by (was: "not banned").
func TestUnbanAddressOfPrefixBan(t *testing.T) {
	s := service(t, "[detection]\nipv4_prefix = 24\n")
	if _, err := s.Ban(context.Background(), control.BanRequest{Prefix: netip.MustParsePrefix("198.51.100.0/24"), For: time.Hour}); err != nil {
		t.Fatal(err)
	}
	lifted, err := s.Unban(context.Background(), netip.MustParsePrefix("198.51.100.7/32"))
	if err != nil || len(lifted) != 1 || lifted[0].String() != "198.51.100.0/24" {
		t.Fatalf("unban 198.51.100.7: %v, %v", lifted, err)
	}
	if _, err := s.Unban(context.Background(), netip.MustParsePrefix("198.51.100.7/32")); !errors.Is(err, control.ErrNotFound) {
		t.Fatalf("second unban: %v", err)
	}
}

// TestManualBanLimits: /0 never; wider than /16 or /32 only with force; a
// length under 1s (a kernel element without expiry) never.
func TestManualBanLimits(t *testing.T) {
	s := service(t, "")
	for _, tc := range []struct {
		prefix string
		force  bool
		d      time.Duration
		want   string
	}{
		{"0.0.0.0/0", true, time.Hour, "every address"},
		{"::/0", true, time.Hour, "every address"},
		{"128.0.0.0/1", false, time.Hour, "wider than /16"},
		{"2000::/3", false, time.Hour, "wider than /32"},
		{"203.0.113.7/32", false, time.Nanosecond, "at least 1s"},
		{"203.0.113.7/32", false, 999 * time.Millisecond, "at least 1s"},
		{"203.0.113.8/32", false, time.Second, ""},
		{"10.0.0.0/8", true, time.Hour, ""},
	} {
		_, err := s.Ban(context.Background(), control.BanRequest{Prefix: netip.MustParsePrefix(tc.prefix), For: tc.d, Force: tc.force})
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("ban %s force %v for %v: %v, want %q", tc.prefix, tc.force, tc.d, err, tc.want)
		}
	}
}

// TestOverlappingBansExplained: a ban inside or around one in force is
// refused with the ban it meets (the kernel said only "file exists"); the
// same prefix again renews it. With backend "none" no firewall is opened.
func TestOverlappingBansExplained(t *testing.T) {
	s := service(t, "")
	if s.closeFW != nil {
		t.Fatal("the CLI's Service opened a firewall with backend \"none\"")
	}
	ban := func(p string) error {
		_, err := s.Ban(context.Background(), control.BanRequest{Prefix: netip.MustParsePrefix(p), For: time.Hour})
		return err
	}
	if err := ban("198.51.100.0/24"); err != nil {
		t.Fatal(err)
	}
	if err := ban("198.51.100.0/25"); err == nil || !strings.Contains(err.Error(), "inside the ban of 198.51.100.0/24") {
		t.Errorf("narrower: %v", err)
	}
	if err := ban("198.51.0.0/16"); err == nil || !strings.Contains(err.Error(), "holds bans in force (198.51.100.0/24)") {
		t.Errorf("wider: %v", err)
	}
	if err := ban("198.51.100.0/24"); err != nil {
		t.Errorf("renewal: %v", err)
	}
}

// TestBanMany: many bans by hand at once (report --ban) through the
// control socket, in batches: each made or refused as Ban would, in
// order, the allowlist, overlaps, duplicates and limits applying.
func TestBanMany(t *testing.T) {
	s := service(t, "[ban]\nallow = [\"192.0.2.0/24\"]\n")
	if _, err := s.Ban(context.Background(), control.BanRequest{Prefix: netip.MustParsePrefix("198.51.100.0/24"), For: time.Hour}); err != nil {
		t.Fatal(err)
	}
	// An address inside a prefix banned: found without looking at every ban.
	if _, err := s.Ban(context.Background(), control.BanRequest{Prefix: netip.MustParsePrefix("198.51.100.9/32"), For: time.Hour}); err == nil || !strings.Contains(err.Error(), "inside the ban of 198.51.100.0/24") {
		t.Fatalf("address inside a banned prefix: %v", err)
	}
	path := t.TempDir() + "/ctl.sock"
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- control.Serve(ctx, path, s, control.Limits()) }()
	defer func() { cancel(); <-done }()
	var c *control.Client
	testkit.Eventually(t, 5*time.Second, "the control socket", func() (bool, string) {
		var err error
		c, err = control.Dial(path)
		return err == nil, fmt.Sprint(err)
	})

	const n = 5000 // more than two batches of control.MaxBatch
	var reqs []control.BanRequest
	for i := range n {
		reqs = append(reqs, control.BanRequest{Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 7}), 32), For: 2 * time.Hour, Reason: "archive: 12 failed attempts in 1h"})
	}
	refused := map[string]string{
		"192.0.2.5/32":    "allowlist",
		"198.51.100.9/32": "inside the ban of 198.51.100.0/24",
		"0.0.0.0/0":       "every address",
		"10.0.0.0/8":      "--force",
	}
	for p := range refused {
		reqs = append(reqs, control.BanRequest{Prefix: netip.MustParsePrefix(p), For: time.Hour})
	}
	banned, errs := control.BanAll(context.Background(), c, reqs)
	if len(banned) != n || len(errs) != len(refused) {
		t.Fatalf("%d banned, errors %v", len(banned), errs)
	}
	for i, b := range banned {
		if b.Prefix != reqs[i].Prefix || b.Reason != reqs[i].Reason || b.Expires.Sub(b.Since) != 2*time.Hour {
			t.Fatalf("ban %d: %+v for %+v", i, b, reqs[i])
		}
	}
	for _, err := range errs {
		p, _, _ := strings.Cut(strings.TrimPrefix(err.Error(), "ban "), ":")
		if want, ok := refused[strings.Fields(p)[0]]; !ok || !strings.Contains(err.Error(), want) {
			t.Errorf("%v: want %q", err, want)
		}
	}
	if list, _ := c.Bans(context.Background()); len(list.Bans) != n+1 {
		t.Fatalf("%d bans in force, want %d", len(list.Bans), n+1)
	}
	// In one call, results in order; the same prefix twice made once.
	twice := []control.BanRequest{{Prefix: netip.MustParsePrefix("203.0.113.1/32")}, {Prefix: netip.MustParsePrefix("192.0.2.9/32")}, {Prefix: netip.MustParsePrefix("203.0.113.1/32")}}
	res, err := s.BanMany(context.Background(), twice)
	if err != nil || len(res) != 3 || res[0].Ban == nil || res[0].Ban.Prefix != twice[0].Prefix || !strings.Contains(res[1].Error, "allowlist") || !strings.Contains(res[2].Error, "asked for twice") {
		t.Fatalf("BanMany: %v %+v", err, res)
	}
	// Asked again: renewals.
	if banned, errs := control.BanAll(context.Background(), c, reqs[:n]); len(banned) != n || len(errs) != 0 {
		t.Fatalf("renewals: %d banned, errors %v", len(banned), errs)
	}
}

// BenchmarkBanMany: report --ban's path for 10,000 addresses, through the
// control socket into a real state file (no firewall), in bans/s.
//
//	go test ./internal/daemon -run XXX -bench BanMany -benchtime 1x
func BenchmarkBanMany(b *testing.B) {
	for b.Loop() {
		b.StopTimer()
		h := newHarness(b)
		writeConfig(b, h.dir, "[firewall]\nbackend = \"none\"\n") // no firewall: a dry run's bans
		s, err := OpenService(context.Background(), h.config(), func(string) {})
		if err != nil {
			b.Fatal(err)
		}
		path := h.dir + "/bench.sock"
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- control.Serve(ctx, path, s, control.Limits()) }()
		var c *control.Client
		testkit.Eventually(b, 5*time.Second, "the control socket", func() (bool, string) {
			c, err = control.Dial(path)
			return err == nil, fmt.Sprint(err)
		})
		const n = 10000
		reqs := make([]control.BanRequest, n)
		for i := range reqs {
			reqs[i] = control.BanRequest{Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 32), For: time.Hour}
		}
		b.StartTimer()
		start := time.Now()
		banned, errs := control.BanAll(context.Background(), c, reqs)
		b.ReportMetric(n/time.Since(start).Seconds(), "bans/s")
		b.StopTimer()
		if len(banned) != n || len(errs) != 0 {
			b.Fatalf("%d banned, %d errors", len(banned), len(errs))
		}
		cancel()
		<-done
		s.Close()
		b.StartTimer()
	}
}
