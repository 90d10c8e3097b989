package daemon

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sshguard-go/internal/testkit"
)

// TestRestartKeepsTheCounts: attempts counted before a stop still count
// after the start that follows (a slow attacker's guesses are not
// forgotten at an upgrade or a reboot): 3 failures, a restart, 2 more ban
// at a threshold of 5. The file they were kept in is taken once; one kept
// by other detection settings is named and counting starts afresh.
func TestRestartKeepsTheCounts(t *testing.T) {
	h := newHarness(t)
	writeConfig(t, h.dir, "[detection]\nthreshold = 5\n[audit]\nlog = \"\"\n")
	kept := windowsFile(filepath.Join(h.dir, "state.db"))
	tracked := func(n int) {
		t.Helper()
		testkit.Eventually(t, 10*time.Second, fmt.Sprintf("%d clients counted", n), func() (bool, string) {
			st, err := h.client().Status(context.Background())
			return err == nil && st.Tracked == n, fmt.Sprintf("%+v %v", st.Tracked, err)
		})
	}
	fail := func(ip string, n int) {
		for i := range n {
			h.logf("Failed password for root from %s port %d ssh2", ip, 41000+i)
		}
	}
	h.start()
	fail("203.0.113.50", 3)
	tracked(1)
	h.halt()
	if st, err := os.Stat(kept); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("the counts kept: %v %v", st, err)
	}

	h.start()
	if _, err := os.Stat(kept); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the file kept is still there after the start took it: %v", err)
	}
	if !strings.Contains(h.log.String(), "took the attempts counted before the stop") {
		t.Errorf("the start did not say it took them:\n%s", h.log.String())
	}
	fail("203.0.113.50", 2)
	h.waitBan("203.0.113.50/32", true)

	// Other settings at the next start: not taken, said so.
	fail("203.0.113.51", 3)
	tracked(1)
	h.halt()
	writeConfig(t, h.dir, "[detection]\nthreshold = 9\n[audit]\nlog = \"\"\n")
	h.start()
	if !strings.Contains(h.log.String(), "not taken: counting starts afresh") || !strings.Contains(h.log.String(), "another shape") {
		t.Errorf("a snapshot of other settings:\n%s", h.log.String())
	}
	tracked(0)
}
