package daemon

import (
	"context"
	"strings"
	"testing"
	"time"

	"sshguard-go/internal/testkit"
)

// TestReloadWeightsAtNextStart: a reload whose weights need more
// remembered attempts per address than the start made room for (a
// lighter failure_weight, probes turned on) says that they take effect at
// the next start, and the daemon bans as before; it said nothing and
// stopped banning (the count stopped short of the threshold).
func TestReloadWeightsAtNextStart(t *testing.T) {
	for _, c := range []struct {
		name, start, reload string
		failures            int // that ban, with the start's weights in force
	}{
		{"lighter failure weight", "failure_weight = 5\nprobe_weight = 0\n", "failure_weight = 1\nprobe_weight = 0\n", 1},
		{"probes turned on", "failure_weight = 1\nprobe_weight = 0\n", "failure_weight = 1\nprobe_weight = 0.5\n", 5},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			writeConfig(t, h.dir, "[detection]\n"+c.start)
			h.start()
			started := h.d.cfg.Load().Detection
			writeConfig(t, h.dir, "[detection]\n"+c.reload)
			if err := h.d.Reload(context.Background(), h.config()); err != nil {
				t.Fatal(err)
			}
			if log := h.log.String(); !strings.Contains(log, "failure_weight and probe_weight take effect at the next start") {
				t.Errorf("no word that the weights change at the next start:\n%s", log)
			}
			if got := h.d.cfg.Load().Detection; got.FailureWeight != started.FailureWeight || got.ProbeWeight != started.ProbeWeight {
				t.Errorf("after the reload the configuration says weights %g and %g, the daemon counts %g and %g",
					got.FailureWeight, got.ProbeWeight, started.FailureWeight, started.ProbeWeight)
			}
			for i := range c.failures {
				h.logf("Failed password for root from 203.0.113.61 port %d ssh2", 41000+i)
			}
			testkit.Eventually(t, 10*time.Second, "the ban, with the start's weights", func() (bool, string) {
				return h.fw.has("203.0.113.61/32"), h.log.String()
			})
		})
	}
}
