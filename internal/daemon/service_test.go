package daemon

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"sshguard-go/internal/control"
)

// service opens a Service as the CLI does with no daemon, on a
// configuration with no firewall.
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
	if _, err := s.Ban(control.BanRequest{Prefix: netip.MustParsePrefix("198.51.100.0/24"), For: time.Hour}); err != nil {
		t.Fatal(err)
	}
	lifted, err := s.Unban(netip.MustParsePrefix("198.51.100.7/32"))
	if err != nil || len(lifted) != 1 || lifted[0].String() != "198.51.100.0/24" {
		t.Fatalf("unban 198.51.100.7: %v, %v", lifted, err)
	}
	if _, err := s.Unban(netip.MustParsePrefix("198.51.100.7/32")); !errors.Is(err, control.ErrNotFound) {
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
		_, err := s.Ban(control.BanRequest{Prefix: netip.MustParsePrefix(tc.prefix), For: tc.d, Force: tc.force})
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
		_, err := s.Ban(control.BanRequest{Prefix: netip.MustParsePrefix(p), For: time.Hour})
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
