package config

import (
	"strings"
	"testing"
)

// TestWeightSteps: a weight the counter would count as another (it keeps
// weights in twentieths, and at the horizons in halves) is refused with
// its key, its line and the values allowed; the weights it counts as
// written are taken.
func TestWeightSteps(t *testing.T) {
	const short = "[detection]\nhorizons = []\nnetwork_horizons = []\nwide_prefix_v6 = 0\n" // no horizons: twentieths
	cases := []struct {
		text string
		want []string // nil: accepted
	}{
		{short + "failure_weight = 0.02\n", []string{":5:", "detection.failure_weight", "0.02 is not a multiple of 0.05", "0.05, 0.1, 0.15, ..., 12.75"}},
		{short + "failure_weight = 0.07\n", []string{":5:", "detection.failure_weight", "multiple of 0.05"}},
		{short + "failure_weight = 0.12\n", []string{":5:", "detection.failure_weight", "multiple of 0.05"}},
		{short + "failure_weight = 0.33\n", []string{":5:", "detection.failure_weight", "multiple of 0.05"}},
		{short + "probe_weight = 0.12\n", []string{":5:", "detection.probe_weight", "multiple of 0.05"}},
		{short + "failure_weight = 0.05\nprobe_weight = 0\nthreshold = 12.75\n", nil}, // 255 attempts
		{short + "failure_weight = 0.05\nprobe_weight = 0\nthreshold = 12.76\n", []string{"detection.threshold", "more than 255 attempts"}},
		{short + "failure_weight = 0.1\nprobe_weight = 0.15\n", nil},
		{short + "failure_weight = 0.35\nprobe_weight = 12.75\n", nil},
		// The horizons (on by default) count in halves.
		{"[detection]\nfailure_weight = 0.2\n", []string{":2:", "detection.failure_weight", "0.2 cannot be counted at the horizons", "multiple of 0.5 (0.5, 1, 1.5, ..., 12.5)", "0.05"}},
		{"[detection]\nprobe_weight = 0.25\n", []string{":2:", "detection.probe_weight", "halves"}},
		{"[detection]\nhorizons = []\nfailure_weight = 0.25\n", []string{"detection.failure_weight", "halves"}}, // network_horizons still on
		{"[detection]\nfailure_weight = 1.5\nprobe_weight = 0.5\n", nil},
		{"[detection]\nfailure_weight = 12.5\nprobe_weight = 0\n", nil},
		// Network horizons without a network count nothing.
		{"[detection]\nhorizons = []\nnetwork_prefix_v4 = 0\nnetwork_prefix_v6 = 0\nfailure_weight = 0.25\n", nil},
	}
	for _, c := range cases {
		_, err := parse("w.toml", []byte(c.text))
		switch {
		case c.want == nil && err != nil:
			t.Errorf("%q refused: %v", c.text, err)
		case c.want != nil && err == nil:
			t.Errorf("%q accepted, want %q", c.text, c.want)
		case c.want != nil:
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q: %v, want %q in it", c.text, err, w)
				}
			}
		}
	}
}
