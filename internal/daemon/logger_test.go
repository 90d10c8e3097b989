package daemon

import (
	"bytes"
	"strings"
	"testing"
)

func TestJournaldLogHasNoTime(t *testing.T) {
	var plain, journal bytes.Buffer
	NewLogger(&plain, false).Info("banned", "prefix", "192.0.2.1/32")
	NewLogger(&journal, true).Info("banned", "prefix", "192.0.2.1/32")
	if !strings.HasPrefix(plain.String(), "time=") {
		t.Errorf("terminal log without time: %q", plain.String())
	}
	if journal.String() != "level=INFO msg=banned prefix=192.0.2.1/32\n" {
		t.Errorf("journald log: %q", journal.String())
	}
}
