package report

import (
	"fmt"
	"math"
	"time"

	"sshguard-go/internal/config"
	"sshguard-go/internal/detect"
)

// Window holds the times from Since (when set) up to, not including, Until
// (when set). A window with either bound holds no zero time: an event whose
// time is unknown is not known to fall inside it.
type Window struct{ Since, Until time.Time }

// Back is the window from since before now up to until before now; a zero
// duration leaves its bound open.
func Back(now time.Time, since, until time.Duration) (w Window) {
	if since > 0 {
		w.Since = now.Add(-since)
	}
	if until > 0 {
		w.Until = now.Add(-until)
	}
	return w
}

// CheckFlags refuses the values of scan's and report's flags that would
// make a report quietly empty or whole: a threshold that is not a finite
// count (NaN passes every "> 0" test), a negative or empty window, no jobs.
func CheckFlags(threshold float64, since, until time.Duration, jobs, top int) error {
	switch {
	case math.IsNaN(threshold) || math.IsInf(threshold, 0) || threshold < 0:
		return fmt.Errorf("--threshold %v: give a number of attempts, 0 or more", threshold)
	case since < 0:
		return fmt.Errorf("--since %s: give how long ago, a positive duration (e.g. 24h)", short(since))
	case until < 0:
		return fmt.Errorf("--until %s: give how long ago, a positive duration (e.g. 1h)", short(until))
	case since > 0 && until >= since:
		return fmt.Errorf("--since %s --until %s: the window is empty, it ends before it starts (--since 24h --until 1h is from a day ago to an hour ago)", short(since), short(until))
	case jobs < 1:
		return fmt.Errorf("-j %d: read at least 1 input at a time", jobs)
	case top < 0:
		return fmt.Errorf("--top %d: give 0 (all) or more", top)
	}
	return nil
}

// short is d as the flags take it: 2h, 2d, not 2h0m0s or 48h0m0s.
func short(d time.Duration) string { return config.Duration(d).String() }

// Holds reports whether t falls inside w.
func (w Window) Holds(t time.Time) bool {
	if w.Since.IsZero() && w.Until.IsZero() {
		return true
	}
	return !t.IsZero() && !t.Before(w.Since) && (w.Until.IsZero() || t.Before(w.Until))
}

// WindowText names the window of --since d for a message: "the last
// 24h", or "all" when d is 0.
func WindowText(d time.Duration) string {
	if d <= 0 {
		return "all"
	}
	text, _ := config.Duration(d).MarshalText() // as the configuration writes it: 30d, 1h
	return "the last " + string(text)
}

// Lines is how scan writes the events in w: each record's line (text, or
// JSON with the encoder) and a newline appended to buf, nothing for one
// outside w.
func (w Window) Lines(asJSON bool) func(buf []byte, enc *detect.Encoder, r *detect.Record) []byte {
	return func(buf []byte, enc *detect.Encoder, r *detect.Record) []byte {
		if !w.Holds(r.Time) {
			return buf
		}
		if asJSON {
			buf = enc.AppendJSON(buf, &r.Event, r.Source, r.Line)
		} else {
			buf = r.AppendText(buf)
		}
		return append(buf, '\n')
	}
}
