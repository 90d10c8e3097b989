package engine

import (
	"os"
	"strings"
	"testing"
	"time"

	"sshguard-go/internal/detect"
	"sshguard-go/internal/store"
)

// keyRefused is OpenSSH 9.2's log of four connections that offered a
// refused key, then closed while authenticating: each a probe line
// ("Received disconnect"), then the failure that takes it back.
func keyRefused(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile("../../testdata/samples/openssh-9.2-key-refused.log")
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(data)), "\n")
}

// handleLines passes lines through a Scanner (its year from ref) to g,
// calling after (when set) after each record.
func handleLines(t *testing.T, g *Guard, ref time.Time, lines []string, after func(*detect.Record)) {
	t.Helper()
	var sc detect.Scanner
	sc.SetRef(ref)
	emit := func(r *detect.Record) {
		if _, err := g.Handle(ctx, r); err != nil {
			t.Fatal(err)
		}
		if after != nil {
			after(r)
		}
	}
	for i, l := range lines {
		sc.Line("auth.log", int64(i+1), l, emit)
	}
	sc.Flush(emit)
}

// hours is g's hourly counts (the store's and those not yet flushed)
// over the day of at, by hour.
func hours(t *testing.T, g *Guard, at time.Time) map[time.Time]store.Counts {
	t.Helper()
	out := map[time.Time]store.Counts{}
	day := at.Truncate(24 * time.Hour)
	if err := g.Hours(day, day.Add(24*time.Hour), func(h time.Time, c store.Counts) { out[h] = c }); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestCountsProbeTakenBack: a connection that probed, then failed,
// counts in the hourly counts as detection counts it: one failure, no
// probe (for its address too); they counted a probe and a failure. Real
// OpenSSH 9.2 lines; the probe taken back from its own hour whether it
// is still in memory or stored already (a flush between the two lines),
// and when the failure is in the next hour.
func TestCountsProbeTakenBack(t *testing.T) {
	const ip = "10.77.0.6"
	ref := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	check := func(t *testing.T, got store.Counts, failed, probes int64) {
		t.Helper()
		if got.Failed != failed || got.Probes != probes || got.Addrs[ip] != (store.Tries{Failed: failed, Probes: probes}) {
			t.Errorf("counts %+v: want %d failed and %d probes, of %s too", got, failed, probes, ip)
		}
	}
	t.Run("in memory", func(t *testing.T) {
		g, _, _, _ := setup(t, base(), nil)
		handleLines(t, g, ref, keyRefused(t), nil)
		hs := hours(t, g, time.Date(2026, 12, 5, 11, 0, 0, 0, time.UTC))
		check(t, hs[time.Date(2026, 12, 5, 11, 0, 0, 0, time.UTC)], 4, 0)
	})
	t.Run("flushed between", func(t *testing.T) {
		g, _, db, _ := setup(t, base(), nil)
		handleLines(t, g, ref, keyRefused(t), func(*detect.Record) {
			if err := g.FlushCounts(); err != nil {
				t.Fatal(err)
			}
		})
		stored, err := db.CountsBetween(time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC), ref)
		if err != nil {
			t.Fatal(err)
		}
		check(t, stored, 4, 0)
	})
	t.Run("across the hour", func(t *testing.T) {
		g, _, _, _ := setup(t, base(), nil)
		lines := keyRefused(t)[:2]
		lines[0] = strings.Replace(lines[0], "11:16:04", "11:59:59", 1)
		lines[1] = strings.Replace(lines[1], "11:16:04", "12:00:00", 1)
		handleLines(t, g, ref, lines, nil)
		hs := hours(t, g, time.Date(2026, 12, 5, 11, 0, 0, 0, time.UTC))
		check(t, hs[time.Date(2026, 12, 5, 11, 0, 0, 0, time.UTC)], 0, 0)
		check(t, hs[time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)], 1, 0)
	})
	t.Run("a probe alone", func(t *testing.T) {
		g, _, _, _ := setup(t, base(), nil)
		handleLines(t, g, ref, []string{
			"Dec  5 11:16:04 vm sshd[1900]: Received disconnect from 10.77.0.6 port 60999:11: Bye Bye [preauth]",
			"Dec  5 11:16:04 vm sshd[1900]: Disconnected from 10.77.0.6 port 60999 [preauth]",
		}, nil)
		hs := hours(t, g, time.Date(2026, 12, 5, 11, 0, 0, 0, time.UTC))
		check(t, hs[time.Date(2026, 12, 5, 11, 0, 0, 0, time.UTC)], 0, 1)
	})
}
