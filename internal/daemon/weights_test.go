package daemon

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"sshguard-go/internal/config"
	"sshguard-go/internal/detect"
	"sshguard-go/internal/engine"
	"sshguard-go/internal/testkit"
)

// TestAcceptedWeightsBanAtTheirCount: every failure_weight from 0.01 to
// 12.75 the configuration accepts bans at the failure an administrator
// computes, threshold / weight rounded up: in the window (horizons off,
// threshold 5, a failure a second) and at the horizon (the defaults, a
// failure every 20 minutes: the day's 6). A weight the daemon would count
// as another is refused instead.
func TestAcceptedWeightsBanAtTheirCount(t *testing.T) {
	db, _ := testkit.OpenDB(t)
	start := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	// bannedAt feeds failures of ip every step until cfg's engine bans it
	// (0: not within max).
	bannedAt := func(cfg *config.Config, ip string, step time.Duration, max int) int {
		clock := testkit.NewClock(start)
		g := engine.New(engineConfig(cfg, nil, nil), db, nopFW{}, nil, clock.Now, nil)
		for i := 1; i <= max; i++ {
			clock.Add(step)
			r := &detect.Record{Text: "Failed password for root from " + ip}
			r.Kind, r.Reason, r.Addr, r.User, r.Time, r.Counted = detect.KindFailure, "failed_password", netip.MustParseAddr(ip), "root", clock.Now(), 1
			if b, err := g.Handle(context.Background(), r); err != nil {
				t.Fatal(err)
			} else if b != nil {
				return i
			}
		}
		return 0
	}
	accepted := [2]int{}
	for c := 1; c <= 1275; c++ { // the weight in hundredths
		for h, horizons := range []bool{false, true} {
			cfg := config.Default()
			cfg.Detection.FailureWeight, cfg.Detection.ProbeWeight, cfg.Detection.WideV6 = float64(c)/100, 0, 0
			if !horizons {
				cfg.Detection.Horizons, cfg.Detection.NetworkHorizons = nil, nil
			}
			if cfg.Validate() != nil {
				continue
			}
			accepted[h]++
			ip := fmt.Sprintf("10.%d.%d.%d", c/256, c%256, 1+h)
			want := (500 + c - 1) / c // threshold 5
			step, max := time.Second, 300
			if horizons {
				want, step, max = (600+c-1)/c, 20*time.Minute, 72 // the day's 6, the window's 5 at once
				if c >= 500 {
					want = 1
				}
			}
			if got := bannedAt(cfg, ip, step, max); got != want {
				t.Errorf("failure_weight %g (horizons %v) accepted, banned at failure %d, want %d", float64(c)/100, horizons, got, want)
			}
		}
	}
	// Whole twentieths, and with horizons whole halves.
	if accepted != [2]int{255, 25} {
		t.Errorf("%d weights accepted without horizons, %d with, want 255 and 25", accepted[0], accepted[1])
	}
}
