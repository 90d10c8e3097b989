package daemon

import (
	"fmt"
	"testing"
	"time"

	"sshguard-go/internal/testkit"
)

// TestHistorySeesUnflushedCounts: history through the daemon counts the
// failed attempts at an account that the engine has not flushed to the
// database yet (it flushes every minute): the API's numbers, not a
// minute behind them.
func TestHistorySeesUnflushedCounts(t *testing.T) {
	h := newHarness(t)
	writeConfig(t, h.dir, "[firewall]\nbackend = \"none\"\n")
	h.start()
	for range 2 {
		h.logf("Failed password for alice from 203.0.113.7 port 40000 ssh2")
	}
	c := h.client()
	testkit.Eventually(t, 10*time.Second, "alice's two failed attempts in her history", func() (bool, string) {
		hist, err := c.History(t.Context(), "alice")
		days := int64(0)
		for _, n := range hist.FailedDays {
			days += n
		}
		return err == nil && hist.Failed == 2 && days == 2,
			fmt.Sprintf("%+v %v\n%s", hist, err, h.log.String())
	})
}
