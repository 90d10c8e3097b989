package share

import (
	"strings"
	"testing"
)

// TestWriteStatus: fleet status in words, off and on.
func TestWriteStatus(t *testing.T) {
	var b strings.Builder
	WriteStatus(&b, nil)
	if !strings.Contains(b.String(), "fleet: off") {
		t.Errorf("%q", b.String())
	}
	b.Reset()
	WriteStatus(&b, &Status{Name: "web-02", Stream: "SSHGUARD_BANS", Lag: 4, Counts: Counts{Published: 12,
		Received: map[string]map[string]int64{"web-01": {"applied": 41, "refused_allowlist": 1}}}})
	for _, want := range []string{"name web-02, server (not connected)", "published 12", "not yet applied 4", "from web-01: applied 41, refused_allowlist 1"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("no %q in %q", want, b.String())
		}
	}
}
