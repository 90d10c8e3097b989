package config

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"sshguard-go/internal/testkit"
)

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"30s": 30 * time.Second, "10m": 10 * time.Minute, "1h": time.Hour, "7d": 7 * day, "2w": 2 * week,
		"1d12h": 36 * time.Hour, "2w3d": 17 * day, "1h30m": 90 * time.Minute, "1w1d1h1m1s": week + day + time.Hour + time.Minute + time.Second,
		"1.5h": 90 * time.Minute, "0.5m": 30 * time.Second, "0": 0, "0s": 0, "15250w": 15250 * week, "106751d": 106751 * day,
	} {
		got, err := ParseDuration(in)
		if err != nil || time.Duration(got) != want {
			t.Errorf("%q: %v, %v; want %v", in, time.Duration(got), err, want)
		}
	}
	for in, want := range map[string]string{
		"3600":                          `3600 has no unit: did you mean "3600s" or "1h"?`,
		"600":                           `600 has no unit: did you mean "600s" or "10m"?`,
		"86400":                         `86400 has no unit: did you mean "86400s" or "1d"?`,
		"1209600":                       `1209600 has no unit: did you mean "1209600s" or "2w"?`,
		"5400":                          `5400 has no unit: did you mean "5400s" or "90m"?`,
		"129600":                        `129600 has no unit: did you mean "129600s" or "36h"?`,
		"60":                            `60 has no unit: did you mean "60s" or "1m"?`,
		"90":                            `90 has no unit: did you mean "90s" or "1m30s"?`,
		"45":                            `45 has no unit: did you mean "45s"?`,
		"1.5":                           `1.5 has no unit: write e.g. 30s, 10m, 1h, 7d, 2w or 1d12h`,
		"500ms":                         `"500ms" is shorter than the shortest unit: durations are whole seconds (units s, m, h, d and w)`,
		"1ms":                           `"1ms" is shorter than the shortest unit: durations are whole seconds (units s, m, h, d and w)`,
		"1.5s":                          `"1.5s" is not whole seconds`,
		"-1h":                           `-1h is negative: a duration is 0 or more`,
		"-5":                            `-5 is negative: a duration is 0 or more`,
		"":                              `an empty duration: write e.g. 30s, 10m, 1h, 7d, 2w or 1d12h`,
		"   ":                           `an empty duration: write e.g. 30s, 10m, 1h, 7d, 2w or 1d12h`,
		" 1h":                           `" 1h" has spaces: write 1h`,
		"1d 12h":                        `"1d 12h" has spaces: write 1d12h`,
		"106752d":                       `"106752d" is too long: the most is 106751d (292 years)`,
		"99999999999w":                  `"99999999999w" is too long: the most is 106751d (292 years)`,
		"15251w":                        `"15251w" is too long: the most is 106751d (292 years)`,
		"99999999999999999999999999999": `99999999999999999999999999999 has no unit: write e.g. 30s, 10m, 1h, 7d, 2w or 1d12h`,
		"NaN":                           `"NaN" is not a duration: write e.g. 30s, 10m, 1h, 7d, 2w or 1d12h`,
		"inf":                           `"inf" is not a duration: write e.g. 30s, 10m, 1h, 7d, 2w or 1d12h`,
		"+1h":                           `"+1h" is not a duration: write e.g. 30s, 10m, 1h, 7d, 2w or 1d12h`,
		"h":                             `"h" is not a duration: write e.g. 30s, 10m, 1h, 7d, 2w or 1d12h`,
		"1e3s":                          `"1e3s": unknown unit "e": units are s, m, h, d and w`,
		"1H":                            `"1H": unknown unit "H": units are s, m, h, d and w`,
		"1y":                            `"1y": unknown unit "y": units are s, m, h, d and w`,
		"30m1h":                         `"30m1h": write the larger units first, each once (e.g. 1d12h, 1h30m)`,
		"1h1h":                          `"1h1h": write the larger units first, each once (e.g. 1d12h, 1h30m)`,
		"1h30":                          `"1h30": 30 at the end has no unit: write e.g. 30s, 10m, 1h, 7d, 2w or 1d12h`,
		"1..5h":                         `"1..5h" is not a duration: write e.g. 30s, 10m, 1h, 7d, 2w or 1d12h`,
		strings.Repeat("1", 100) + "s":  `"11111111111111111111"... is not a duration (101 characters)`,
	} {
		got, err := ParseDuration(in)
		if err == nil || err.Error() != want {
			t.Errorf("%q: %v, %v\nwant %s", in, time.Duration(got), err, want)
		}
	}
}

func TestDurationText(t *testing.T) {
	for d, want := range map[time.Duration]string{10 * time.Minute: "10m", time.Hour: "1h", 90 * time.Minute: "1h30m",
		7 * day: "7d", 3 * day: "3d", day: "1d", 14 * day: "14d", 10 * time.Second: "10s", 36 * time.Hour: "36h", 0: "0s", 3605 * time.Second: "1h0m5s"} {
		b, _ := Duration(d).MarshalText()
		var back, flag Duration
		if string(b) != want || back.UnmarshalText(b) != nil || time.Duration(back) != d {
			t.Errorf("%v: %q (back %v), want %q", d, b, time.Duration(back), want)
		}
		// As a command-line flag: the same forms.
		if err := flag.Set(want); err != nil || time.Duration(flag) != d || flag.String() != want {
			t.Errorf("flag %q: %v, %v", want, time.Duration(flag), err)
		}
	}
	var flag Duration
	if err := flag.Set("3x"); err == nil || flag.Type() != "duration" {
		t.Errorf("flag 3x: %v", err)
	}
}

// TestDurationFlag: a flag takes what the file takes, within its range.
func TestDurationFlag(t *testing.T) {
	var d time.Duration
	f := NewDurationFlag(&d, time.Hour, KeyRange("ban.ban_time"))
	if d != time.Hour || f.String() != "1h" || f.Type() != "duration" {
		t.Fatalf("default: %v %q", d, f)
	}
	for in, want := range map[string]string{
		"3600": `3600 has no unit: did you mean "3600s" or "1h"?`,
		"1ms":  `"1ms" is shorter than the shortest unit: durations are whole seconds (units s, m, h, d and w)`,
		"0s":   `must be at least 1s, is 0s`,
	} {
		if err := f.Set(in); err == nil || err.Error() != want {
			t.Errorf("%q: %v, want %s", in, err, want)
		}
	}
	if err := f.Set("7d"); err != nil || d != 7*day {
		t.Errorf("7d: %v, %v", d, err)
	}
	w := NewDurationFlag(&d, 0, KeyRange("detection.window"))
	if w.String() != "0" {
		t.Errorf("zero flag prints %q (help would show a default)", w)
	}
	if err := w.Set("31d"); err == nil || err.Error() != "must be 1s to 30d, is 31d" {
		t.Errorf("31d: %v", err)
	}
}

// TestDurationKeysInTheFile: a bare number, a sub-second value and an
// overflow are refused with the file, the line, the key and a hint.
func TestDurationKeysInTheFile(t *testing.T) {
	for text, want := range map[string]string{
		"[ban]\nban_time = 3600\n":                                    `:2: ban.ban_time: 3600 has no unit: did you mean "3600s" or "1h"?`,
		"# fail2ban's habit\n[ban]\n\nban_time = 600 # ten minutes\n": `:4: ban.ban_time: 600 has no unit: did you mean "600s" or "10m"?`,
		"ban.ban_time = 86400\n":                                      `:1: ban.ban_time: 86400 has no unit: did you mean "86400s" or "1d"?`,
		"[ban]\nban_time = \"500ms\"\n":                               `:2: ban.ban_time: "500ms" is shorter than the shortest unit: durations are whole seconds (units s, m, h, d and w)`,
		"[ban]\nban_time = \"0s\"\n":                                  `:2: ban.ban_time: must be at least 1s, is 0s`,
		"[ban]\nban_time = 1.5\n":                                     `:2: ban.ban_time: want a duration such as "10m", got the number 1.5`,
		"[ban]\nmax_ban_time = \"99999999999w\"\n":                    `:2: ban.max_ban_time: "99999999999w" is too long: the most is 106751d (292 years)`,
		"[ban]\nban_time = \"8d\"\n":                                  `:2: ban.ban_time: must be at most ban.max_ban_time (7d), is 8d`,
		"[ban]\nmax_ban_time = \"30m\"\n":                             `:2: ban.max_ban_time: must be at least ban.ban_time (1h), is 30m`,
		"[alerts]\nretry_max = \"5s\"\n":                              `:2: alerts.retry_max: must be at least alerts.retry_min (10s), is 5s`,
		"[state]\ncounts_detail = \"500d\"\n":                         `:2: state.counts_detail: must be at most state.counts (400d), is 500d`,
		"[alerts]\nsession_alert_after = \"30s\"\n":                   `:2: alerts.session_alert_after: must be 0 (off) or at least 1m, is 30s`,
	} {
		p := testkit.WriteConfig(t, text)
		_, err := Load(p, true)
		if err == nil || err.Error() != p+want {
			t.Errorf("%q:\n got %v\nwant %s%s", text, err, p, want)
		}
	}
	p := testkit.WriteConfig(t, "[ban]\nban_time = \"1d12h\"\n[alerts]\nsession_alert_after = 0\n")
	cfg, err := Load(p, true)
	if err != nil {
		t.Fatalf("1d12h: %v", err)
	}
	if time.Duration(cfg.Ban.BanTime) != 36*time.Hour || cfg.Alerts.SessionAlertAfter != 0 {
		t.Fatalf("1d12h: %+v", cfg.Ban)
	}
}

// TestDurationRanges: every duration key is accepted at the lowest value
// of its range (all at once, which keeps the keys compared in order) and
// refused a second below it; at its highest, and a second above.
func TestDurationRanges(t *testing.T) {
	keys := DurationKeys()
	if len(keys) < 17 {
		t.Fatalf("only %d duration keys", len(keys))
	}
	file := func(set map[string]Duration) string {
		tables := map[string][]string{}
		for k, d := range set {
			i := strings.LastIndex(k, ".")
			tables[k[:i]] = append(tables[k[:i]], fmt.Sprintf("%s = %q", k[i+1:], d))
		}
		var b strings.Builder
		for _, name := range sortedKeys(tables) {
			sort.Strings(tables[name])
			fmt.Fprintf(&b, "[%s]\n%s\n", name, strings.Join(tables[name], "\n"))
		}
		return b.String()
	}
	lowest := map[string]Duration{}
	for _, k := range keys {
		lowest[k.Key] = k.Range.Min
	}
	if _, err := parse("low.toml", []byte(file(lowest))); err != nil {
		t.Fatalf("every key at its lowest:\n%s\n%v", file(lowest), err)
	}
	for _, k := range keys {
		set := map[string]Duration{}
		for key, d := range lowest {
			set[key] = d
		}
		set[k.Key] = k.Range.Min - Duration(time.Second)
		text := file(set)
		_, err := parse("low.toml", []byte(text))
		if err == nil || !strings.Contains(err.Error(), k.Key+": must be ") {
			t.Errorf("%s a second below its range (%s): %v", k.Key, k.Range, err)
		}
		if k.Range.Max == 0 {
			continue
		}
		set[k.Key] = k.Range.Max
		if _, err := parse("high.toml", []byte(file(set))); err != nil {
			t.Errorf("%s at its highest: %v", k.Key, err)
		}
		set[k.Key] = k.Range.Max + Duration(time.Second)
		if _, err := parse("high.toml", []byte(file(set))); err == nil || !strings.Contains(err.Error(), k.Key+": must be ") {
			t.Errorf("%s a second above its range (%s): %v", k.Key, k.Range, err)
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestEveryDurationHasARange: no Duration field of Config is left without
// a stated range.
func TestEveryDurationHasARange(t *testing.T) {
	ranged := map[string]bool{}
	for _, k := range DurationKeys() {
		ranged[k.Key] = true
	}
	for _, k := range allKeys(reflect.TypeFor[Config](), "") {
		if typeAt(reflect.TypeFor[Config](), strings.Split(k, ".")) == reflect.TypeFor[Duration]() && !ranged[k] {
			t.Errorf("%s is a duration without a range", k)
		}
		delete(ranged, k)
	}
	for k := range ranged {
		t.Errorf("%s has a range and is not a key", k)
	}
}
