package ban

import (
	"net/netip"
	"testing"
	"time"
)

func TestPolicyEscalation(t *testing.T) {
	p := Policy{}
	tests := []struct {
		name    string
		prev    int
		ago     time.Duration
		want    time.Duration
		wantNth int
	}{
		{"first ban", 0, 0, time.Hour, 1},
		{"second within remember", 1, 2 * time.Hour, 2 * time.Hour, 2},
		{"fourth", 3, time.Hour, 8 * time.Hour, 4},
		{"capped at a week", 20, time.Hour, 7 * 24 * time.Hour, 21},
		{"forgotten after 30 days", 5, 31 * 24 * time.Hour, time.Hour, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, nth := p.Duration(tt.prev, t0.Add(-tt.ago), t0)
			if d != tt.want || nth != tt.wantNth {
				t.Fatalf("Duration = %v, %d; want %v, %d", d, nth, tt.want, tt.wantNth)
			}
		})
	}
	perm := Policy{PermanentAfter: 3}
	if d, nth := perm.Duration(2, t0.Add(-time.Hour), t0); d != 0 || nth != 3 {
		t.Fatalf("third ban with PermanentAfter 3: %v, %d", d, nth)
	}
	if d, _ := perm.Duration(1, t0.Add(-time.Hour), t0); d != 2*time.Hour {
		t.Fatalf("second ban with PermanentAfter 3: %v", d)
	}
}

func TestAllowlist(t *testing.T) {
	a := NewAllowlist(netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("2001:db8::5/128"))
	for _, tt := range []struct {
		key  string
		want bool
	}{
		{"127.0.0.1/32", true},
		{"::1/128", true},
		{"198.51.100.77/32", true},
		{"198.51.101.1/32", false},
		{"2001:db8::/64", true}, // the /64 ban key would cover an allowlisted address
		{"2001:db8:1::/64", false},
		{"203.0.113.7/32", false},
	} {
		if got := a.Covers(netip.MustParsePrefix(tt.key)); got != tt.want {
			t.Errorf("Covers(%s) = %v, want %v", tt.key, got, tt.want)
		}
	}
}

func TestAllowlistBuiltinAndMapped(t *testing.T) {
	a := NewAllowlist(netip.MustParsePrefix("::ffff:192.0.2.0/120"))
	for _, p := range []string{"192.0.2.5/32", "::ffff:192.0.2.7/128", "fe80::/64", "169.254.10.1/32", "ff02::1/128", "224.0.0.251/32", "::/128", "127.0.0.1/32"} {
		if !a.Covers(netip.MustParsePrefix(p)) {
			t.Errorf("%s not covered", p)
		}
	}
	for _, p := range []string{"192.0.3.5/32", "2001:db8::/64", "203.0.113.1/32"} {
		if a.Covers(netip.MustParsePrefix(p)) {
			t.Errorf("%s covered", p)
		}
	}
	if got := Unmap(netip.MustParsePrefix("::ffff:192.0.2.0/120")); got.String() != "192.0.2.0/24" {
		t.Errorf("Unmap: %v", got)
	}
}

// TestPolicyBoundaries: each limit at its edge.
func TestPolicyBoundaries(t *testing.T) {
	p := Policy{BanTime: time.Hour, Factor: 2, MaxBanTime: 4 * time.Hour, Remember: 24 * time.Hour}
	for _, tt := range []struct {
		name string
		pol  Policy
		prev int
		ago  time.Duration
		want time.Duration
		nth  int
	}{
		{"remembered at exactly Remember", p, 1, 24 * time.Hour, 2 * time.Hour, 2},
		{"forgotten just after Remember", p, 1, 24*time.Hour + time.Nanosecond, time.Hour, 1},
		{"exactly MaxBanTime", p, 2, time.Hour, 4 * time.Hour, 3},
		{"over MaxBanTime", p, 3, time.Hour, 4 * time.Hour, 4},
		{"just under MaxBanTime", Policy{BanTime: time.Hour, Factor: 2, MaxBanTime: 4*time.Hour + 1}, 2, time.Hour, 4 * time.Hour, 3},
		{"factor 1 never grows", Policy{BanTime: time.Hour, Factor: 1}, 9, time.Hour, time.Hour, 10},
		{"factor under 1 is the default 2", Policy{BanTime: time.Hour, Factor: 0.5}, 1, time.Hour, 2 * time.Hour, 2},
		{"permanent from the first", Policy{PermanentAfter: 1}, 0, 0, 0, 1},
		{"defaults", Policy{BanTime: -1, MaxBanTime: -1, Remember: -1}, 1, 29 * 24 * time.Hour, 2 * time.Hour, 2},
		{"default Remember forgets after 30 days", Policy{}, 1, 30*24*time.Hour + 1, time.Hour, 1},
		{"huge escalation is MaxBanTime", Policy{Factor: 100}, 1000, time.Hour, 7 * 24 * time.Hour, 1001},
	} {
		d, nth := tt.pol.Duration(tt.prev, t0.Add(-tt.ago), t0)
		if d != tt.want || nth != tt.nth {
			t.Errorf("%s: Duration = %v, %d; want %v, %d", tt.name, d, nth, tt.want, tt.nth)
		}
	}
	if got := (Policy{}).MaxBan(); got != 7*24*time.Hour {
		t.Errorf("default MaxBan %v", got)
	}
	if got := p.MaxBan(); got != 4*time.Hour {
		t.Errorf("MaxBan %v", got)
	}
}
