package report

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"sshguard-go/internal/detect"
)

func rec(kind detect.Kind, ip, user string, counted int, at time.Time) *detect.Record {
	r := &detect.Record{}
	r.Kind, r.Addr, r.User, r.Counted, r.Time = kind, netip.MustParseAddr(ip), user, counted, at
	return r
}

func TestSummary(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	s := Summary{Window: Window{Since: now.Add(-time.Hour)}}
	s.Add(rec(detect.KindFailure, "192.0.2.1", "root", 1, now))
	s.Add(rec(detect.KindFailure, "192.0.2.1", "root", 0, now)) // a second line of the same guess
	s.Add(rec(detect.KindProbe, "192.0.2.2", "", 1, now))
	s.Add(rec(detect.KindProbe, "192.0.2.2", "", 1, now))
	s.Add(rec(detect.KindFailure, "192.0.2.3", "admin", 1, now.Add(-2*time.Hour))) // before Since
	s.Add(rec(detect.KindSuccess, "192.0.2.1", "alice", 0, now))
	list := s.Sorted()
	if len(list) != 2 || list[0].Client != "192.0.2.1" || list[0].Failed != 1 || list[0].Successes != 1 ||
		strings.Join(list[0].Users, ",") != "root,alice" || list[1].Probes != 2 {
		t.Fatalf("summary %+v %+v", list[0], list[1])
	}
	var b strings.Builder
	WriteJSON(&b, list)
	if !strings.Contains(b.String(), `"192.0.2.1": {"failed": 1, "probes": 0, "successes": 1, "users": ["root", "alice"]`) {
		t.Fatalf("JSON %s", b.String())
	}
}

func TestSummaryUntil(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	s := Summary{Window: Window{Since: now.Add(-2 * time.Hour), Until: now.Add(-time.Hour)}}
	s.Add(rec(detect.KindFailure, "192.0.2.1", "root", 1, now.Add(-90*time.Minute)))
	s.Add(rec(detect.KindFailure, "192.0.2.2", "root", 1, now.Add(-30*time.Minute))) // after Until
	s.Add(rec(detect.KindFailure, "192.0.2.3", "root", 1, now.Add(-3*time.Hour)))    // before Since
	if list := s.Sorted(); len(list) != 1 || list[0].Client != "192.0.2.1" {
		t.Fatalf("%+v", list)
	}
}

func TestWindow(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	open := Back(now, 0, 0)
	if !open.Holds(time.Time{}) || !open.Holds(now) {
		t.Fatal("an open window leaves out an event")
	}
	w := Back(now, 2*time.Hour, time.Hour)
	for at, want := range map[time.Duration]bool{-3 * time.Hour: false, -2 * time.Hour: true, -90 * time.Minute: true, -time.Hour: false, 0: false} {
		if got := w.Holds(now.Add(at)); got != want {
			t.Errorf("Holds(now%v) = %v", at, got)
		}
	}
	if w.Holds(time.Time{}) || Back(now, 0, time.Hour).Holds(time.Time{}) {
		t.Error("a bounded window holds an event without a time")
	}
}
