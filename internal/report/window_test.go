package report

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"sshguard-go/internal/detect"
)

// TestWindowLines: an event inside the window is written as its line (or
// JSON) and a newline; one outside it, or without a time in a window with
// a bound, writes nothing.
func TestWindowLines(t *testing.T) {
	now := time.Date(2026, 12, 5, 7, 0, 0, 0, time.UTC)
	w := Back(now, time.Hour, 0)
	r := &detect.Record{Event: detect.Event{Time: now.Add(-time.Minute), Kind: detect.KindFailure, Addr: netip.MustParseAddr("198.51.100.7"), User: "root"}, Source: "auth.log", Line: 3}
	var enc detect.Encoder
	for _, asJSON := range []bool{false, true} {
		out := string(w.Lines(asJSON)(nil, &enc, r))
		if !strings.HasSuffix(out, "\n") || strings.Count(out, "\n") != 1 || !strings.Contains(out, "198.51.100.7") {
			t.Fatalf("json %v: %q, want the event's line", asJSON, out)
		}
	}
	for _, at := range []time.Time{now.Add(-2 * time.Hour), {}} {
		r.Time = at
		if out := w.Lines(false)([]byte("kept"), &enc, r); string(out) != "kept" {
			t.Fatalf("an event at %v outside the window wrote %q", at, out)
		}
	}
}
