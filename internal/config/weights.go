package config

import "math"

// weightStep is the step a weight must be a multiple of for the counter
// to count it as written: twentieths in the windows, halves at the
// horizons (when attempts are counted at any).
func (d DetectionConfig) weightStep() float64 {
	nets := len(d.NetworkHorizons) > 0 && ((d.NetworkV4 != 0 && d.NetworkV4 < d.IPv4Prefix) || (d.NetworkV6 != 0 && d.NetworkV6 < d.IPv6Prefix))
	if len(d.Horizons) > 0 || nets {
		return 0.5
	}
	return 0.05
}

// onStep reports whether weight w (0: not counted) is a multiple of
// d's weight step, and says otherwise through bad, with the values
// allowed.
func (d DetectionConfig) onStep(bad func(key, format string, args ...any), key string, w float64) bool {
	step := d.weightStep()
	if n := w / step; math.Abs(n-math.Round(n)) < 1e-9 {
		return true
	}
	if step == 0.5 {
		bad(key, "%g cannot be counted at the horizons, which count attempts in halves: use a multiple of 0.5 (0.5, 1, 1.5, ..., 12.5), "+
			"or turn horizons and network_horizons off ([]) for a multiple of 0.05", w)
	} else {
		bad(key, "%g is not a multiple of 0.05, the step the counter keeps weights in: use 0.05, 0.1, 0.15, ..., 12.75", w)
	}
	return false
}

// beyond255 reports whether threshold needs more than 255 attempts of
// weight (as the counter counts them).
func beyond255(threshold, weight float64) bool { return math.Ceil(threshold/weight-1e-9) > 255 }
