package engine

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"sshguard-go/internal/ban"
	"sshguard-go/internal/detect"
)

// scanInto feeds log lines through the detector to the guard, the clock
// following the lines.
func scanInto(t *testing.T, e *Guard, lines ...string) {
	t.Helper()
	s := detect.Scanner{Header: detect.HeaderParser{Loc: time.UTC}}
	s.SetRef(time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC))
	emit := func(r *detect.Record) {
		if _, err := e.Handle(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	for i, l := range lines {
		s.Line("auth.log", int64(i+1), l, emit)
	}
	s.Flush(emit)
}

// TestRepeatedMessageReachesWindow: rsyslog's "message repeated 4 times"
// after one Failed line is five attempts in the window: banned at the
// default threshold of 5, as the unreduced log would have it.
func TestRepeatedMessageReachesWindow(t *testing.T) {
	e, fw, _, _ := setup(t, base(), nil)
	scanInto(t, e,
		"Nov 24 11:58:04 old sshd[4104]: Failed password for root from 198.51.100.110 port 1003 ssh2",
		"Nov 24 11:58:10 old sshd[4104]: message repeated 4 times: [ Failed password for root from 198.51.100.110 port 1003 ssh2]",
	)
	if _, ok := fw.set[netip.MustParsePrefix("198.51.100.110/32")]; !ok || len(fw.set) != 1 {
		t.Fatalf("kernel set %v, want 198.51.100.110 banned", fw.set)
	}
}

// TestRepeatedMessageOneLess: one attempt fewer is no ban (the count is
// exact, not rounded up).
func TestRepeatedMessageOneLess(t *testing.T) {
	e, fw, _, _ := setup(t, base(), nil)
	scanInto(t, e,
		"Nov 24 11:58:04 old sshd[4104]: Failed password for root from 198.51.100.110 port 1003 ssh2",
		"Nov 24 11:58:10 old sshd[4104]: message repeated 3 times: [ Failed password for root from 198.51.100.110 port 1003 ssh2]",
	)
	if len(fw.set) != 0 {
		t.Fatalf("kernel set %v after 4 attempts", fw.set)
	}
}

// TestWeightBounded: whatever a record claims, its weight stays bounded.
func TestWeightBounded(t *testing.T) {
	cfg := base()
	r := failure("198.51.100.1", "root", time.Now())
	r.Counted = 1 << 40
	if w := cfg.weight(r); w != float64(detect.MaxRepeat+1) {
		t.Fatalf("weight %g", w)
	}
}

// TestInvalidUserFailuresNotForgiven: a Failed line for an invalid user
// (the second guess of a connection, which no "Invalid user" line
// announces) is an attempt at an account that does not exist: a login
// from the address does not take it back at the long horizons.
func TestInvalidUserFailuresNotForgiven(t *testing.T) {
	cfg := base()
	cfg.Window = ban.WindowConfig{Horizons: []ban.Horizon{{Window: 24 * time.Hour, Threshold: 6}}}
	e, fw, _, c := setup(t, cfg, nil)
	at := c.Now().Add(-6 * time.Hour) // hourly, ending now (later stamps count as now)
	for i := 0; i < 5; i++ {
		r := failure("198.51.100.9", fmt.Sprintf("guest%d", i), at.Add(time.Duration(i)*time.Hour))
		r.Invalid = true
		if _, err := e.Handle(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.Handle(ctx, success("198.51.100.9", "alice", at.Add(5*time.Hour))); err != nil {
		t.Fatal(err)
	}
	r := failure("198.51.100.9", "guest9", at.Add(6*time.Hour))
	r.Invalid = true
	if _, err := e.Handle(ctx, r); err != nil {
		t.Fatal(err)
	}
	if _, ok := fw.set[netip.MustParsePrefix("198.51.100.9/32")]; !ok {
		t.Fatalf("kernel set %v: six guesses at missing accounts forgiven by a login", fw.set)
	}
}

// TestValidUserFailuresForgiven: the same with real accounts is typos,
// forgiven by the login (the flag, not the reason's name, decides).
func TestValidUserFailuresForgiven(t *testing.T) {
	cfg := base()
	cfg.Window = ban.WindowConfig{Horizons: []ban.Horizon{{Window: 24 * time.Hour, Threshold: 6}}}
	e, fw, _, c := setup(t, cfg, nil)
	at := c.Now().Add(-6 * time.Hour) // hourly, ending now (later stamps count as now)
	for i := 0; i < 5; i++ {
		if _, err := e.Handle(ctx, failure("198.51.100.9", "alice", at.Add(time.Duration(i)*time.Hour))); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.Handle(ctx, success("198.51.100.9", "alice", at.Add(5*time.Hour))); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Handle(ctx, failure("198.51.100.9", "alice", at.Add(6*time.Hour))); err != nil {
		t.Fatal(err)
	}
	if len(fw.set) != 0 {
		t.Fatalf("kernel set %v: typos before a login banned", fw.set)
	}
}
