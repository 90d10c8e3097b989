package main

import (
	"strings"
	"testing"
)

// TestNATSConfigHostNames: nats-config takes a host's name only when it
// can be a subject token, the same rule as fleet.name.
func TestNATSConfigHostNames(t *testing.T) {
	out, _, err := run(t, "", "fleet", "nats-config", "--host", "web-01", "--host", "db_2")
	if err != nil || !strings.Contains(out, "web-01") || !strings.Contains(out, "db_2") {
		t.Fatalf("good names: %v\n%s", err, out)
	}
	for _, bad := range []string{"web.example", "a b", "x*", strings.Repeat("a", 65)} {
		if _, _, err := run(t, "", "fleet", "nats-config", "--host", bad); err == nil || !strings.Contains(err.Error(), "subject token") {
			t.Errorf("--host %q: %v, want a refusal", bad, err)
		}
	}
}
