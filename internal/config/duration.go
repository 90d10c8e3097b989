package config

import (
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"
)

// Duration is a time.Duration as the configuration file and every flag
// write it: whole seconds or more, in the units s, m, h, d (24h) and w
// (7d), alone or combined ("1h30m", "1d12h", "2w3d").
type Duration time.Duration

const (
	day  = 24 * time.Hour
	week = 7 * day
)

// durationUnits are the units a duration is written in, largest first.
var durationUnits = []struct {
	name string
	d    time.Duration
}{{"w", week}, {"d", day}, {"h", time.Hour}, {"m", time.Minute}, {"s", time.Second}}

// maxDurationText bounds what is parsed (a pasted novel is not a duration).
const maxDurationText = 64

// examples is the hint of the errors.
const examples = "write e.g. 30s, 10m, 1h, 7d, 2w or 1d12h"

// ParseDuration parses s, a duration as the configuration and the flags
// take it: "30s", "10m", "1h", "7d", "2w", or several units combined,
// largest first ("1d12h", "1h30m"); a unit's number may have a fraction
// ("1.5h") as long as the whole is seconds. "0" needs no unit; any other
// bare number is refused with what it probably meant.
func ParseDuration(s string) (Duration, error) {
	bad := func(format string, args ...any) (Duration, error) {
		return 0, fmt.Errorf(format, args...)
	}
	switch {
	case strings.TrimSpace(s) == "":
		return bad("an empty duration: %s", examples)
	case len(s) > maxDurationText:
		return bad("%.20q... is not a duration (%d characters)", s, len(s))
	case strings.IndexFunc(s, unicode.IsSpace) >= 0:
		compact := strings.Join(strings.Fields(s), "")
		if _, err := ParseDuration(compact); err == nil {
			return bad("%q has spaces: write %s", s, compact)
		}
		return bad("%q is not a duration: %s", s, examples)
	case s[0] == '-':
		return bad("%s is negative: a duration is 0 or more", s)
	}
	if isNumber(s) {
		return bareNumber(s)
	}
	total := new(big.Rat)
	last := -1 // the index in durationUnits of the previous unit
	for rest := s; rest != ""; {
		n := numberPrefix(rest)
		if n == 0 {
			return bad("%q is not a duration: %s", s, examples)
		}
		num := rest[:n]
		rest = rest[n:]
		u := len(rest) - len(strings.TrimLeftFunc(rest, unicode.IsLetter))
		unit := rest[:u]
		rest = rest[u:]
		i := unitIndex(unit)
		switch {
		case unit == "" && rest == "":
			return bad("%q: %s at the end has no unit: %s", s, num, examples)
		case unit == "":
			return bad("%q is not a duration: %s", s, examples)
		case i < 0 && (unit == "ms" || unit == "us" || unit == "µs" || unit == "ns"):
			return bad("%q is shorter than the shortest unit: durations are whole seconds (units s, m, h, d and w)", s)
		case i < 0:
			return bad("%q: unknown unit %q: units are s, m, h, d and w", s, unit)
		case i <= last:
			return bad("%q: write the larger units first, each once (e.g. 1d12h, 1h30m)", s)
		}
		last = i
		r, ok := new(big.Rat).SetString(num)
		if !ok {
			return bad("%q is not a duration: %s", s, examples)
		}
		total.Add(total, r.Mul(r, new(big.Rat).SetInt64(int64(durationUnits[i].d))))
	}
	if total.Cmp(new(big.Rat).SetInt64(math.MaxInt64)) > 0 {
		return bad("%q is too long: the most is %dd (292 years)", s, int64(math.MaxInt64)/int64(day))
	}
	if !total.IsInt() || total.Num().Int64()%int64(time.Second) != 0 {
		return bad("%q is not whole seconds", s)
	}
	return Duration(total.Num().Int64()), nil
}

// isNumber reports whether s is digits with at most one '.'.
func isNumber(s string) bool {
	return numberPrefix(s) == len(s)
}

// numberPrefix is the length of the number (digits, at most one '.' among
// them) at the start of s.
func numberPrefix(s string) int {
	n, dot, digits := 0, false, 0
	for ; n < len(s); n++ {
		switch c := s[n]; {
		case c >= '0' && c <= '9':
			digits++
		case c == '.' && !dot:
			dot = true
		default:
			if digits == 0 {
				return 0
			}
			return n
		}
	}
	if digits == 0 {
		return 0
	}
	return n
}

func unitIndex(name string) int {
	for i, u := range durationUnits {
		if u.name == name {
			return i
		}
	}
	return -1
}

// bareNumber is the error of a number without a unit (0 is 0): for a whole
// number of seconds it suggests the seconds and the roundest unit that
// writes the same time ("3600" → "3600s" or "1h").
func bareNumber(s string) (Duration, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err == nil && n == 0 {
		return 0, nil
	}
	if err != nil || n > int64(math.MaxInt64/time.Second) {
		return 0, fmt.Errorf("%s has no unit: %s", s, examples)
	}
	secs, round := fmt.Sprintf("%ds", n), Duration(time.Duration(n)*time.Second).String()
	for _, u := range durationUnits[:4] { // the largest unit of w, d, h, m that it is a whole number of
		if d := time.Duration(n) * time.Second; d%u.d == 0 {
			round = fmt.Sprintf("%d%s", d/u.d, u.name)
			break
		}
	}
	if round == secs {
		return 0, fmt.Errorf("%s has no unit: did you mean %q?", s, secs)
	}
	return 0, fmt.Errorf("%s has no unit: did you mean %q or %q?", s, secs, round)
}

// UnmarshalText parses d as ParseDuration does.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// UnmarshalTOML reads a duration from the configuration file, where it
// is a string ("10m"): a bare integer (fail2ban's seconds, which would
// otherwise be read as nanoseconds) is refused with what it probably
// meant; 0 is 0. Errors point at the value, so that they name the file's
// line and the key.
func (d *Duration) UnmarshalTOML(data []byte) error {
	var v struct {
		V any `toml:"v"`
	}
	err := toml.Unmarshal(append([]byte("v = "), data...), &v)
	switch x := v.V.(type) {
	case string:
		err = d.UnmarshalText([]byte(x))
	case int64:
		var p Duration
		if p, err = bareNumber(strconv.FormatInt(x, 10)); err == nil {
			*d = p
		}
	default:
		if err == nil {
			err = fmt.Errorf("want a duration such as \"10m\", got %s", describe(x))
		}
	}
	if err != nil {
		return &unstable.ParserError{Highlight: data, Message: err.Error()}
	}
	return nil
}

// MarshalText writes d back in a form it accepts: whole days as days
// ("7d", "30d"), else hours, minutes and seconds ("36h", "1h30m", "10s";
// "0s" for 0).
func (d Duration) MarshalText() ([]byte, error) {
	v := time.Duration(d)
	switch {
	case v == 0:
		return []byte("0s"), nil
	case v%day == 0:
		return fmt.Appendf(nil, "%dd", v/day), nil
	}
	s := v.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return []byte(s), nil
}

// String is d as MarshalText writes it.
func (d Duration) String() string {
	b, _ := d.MarshalText()
	return string(b)
}

// Set and Type make *Duration a command-line flag value (pflag's Value)
// that takes what the configuration takes.
func (d *Duration) Set(s string) error { return d.UnmarshalText([]byte(s)) }

// Type names the flag's kind in help text.
func (d *Duration) Type() string { return "duration" }

// Range is the values a duration may take: at least Min and at most Max
// (0: no bound); Off allows 0 besides, meaning off. AtLeast and AtMost
// name other keys it is compared with (in the same file).
type Range struct {
	Min, Max        Duration
	Off             bool
	AtLeast, AtMost string
}

// Check reports d outside r's bounds (the keys compared with are not).
func (r Range) Check(d Duration) error {
	if r.Off && d == 0 || d >= r.Min && (r.Max == 0 || d <= r.Max) {
		return nil
	}
	return fmt.Errorf("must be %s, is %s", Range{Min: r.Min, Max: r.Max, Off: r.Off}, d)
}

// String says r as the documentation does: "1s to 30d", "at least 1d",
// "0 (off) or at least 1m", "1s to ban.max_ban_time".
func (r Range) String() string {
	lo, hi := r.Min.String(), ""
	if r.AtLeast != "" {
		lo = r.AtLeast
	}
	switch {
	case r.AtMost != "":
		hi = r.AtMost
	case r.Max > 0:
		hi = r.Max.String()
	}
	s := "at least " + lo
	if hi != "" {
		s = lo + " to " + hi
	}
	if r.Off {
		s = "0 (off) or " + s
	}
	return s
}

// DurationFlag is a command-line flag value (pflag's Value) that takes
// what the configuration takes and sets a time.Duration, refusing values
// outside its range.
type DurationFlag struct {
	p *time.Duration
	r Range
}

// NewDurationFlag returns a flag value for *p, set to def, that refuses
// values outside r (a key's range from KeyRange, or one of its own).
func NewDurationFlag(p *time.Duration, def time.Duration, r Range) *DurationFlag {
	*p = def
	return &DurationFlag{p, r}
}

// Set parses s and checks its range.
func (f *DurationFlag) Set(s string) error {
	d, err := ParseDuration(s)
	if err == nil {
		err = f.r.Check(d)
	}
	if err != nil {
		return err
	}
	*f.p = time.Duration(d)
	return nil
}

// String is the value as it would be given; "0" (which help leaves out)
// for 0.
func (f *DurationFlag) String() string {
	if *f.p == 0 {
		return "0"
	}
	return Duration(*f.p).String()
}

// Type names the flag's kind in help text.
func (f *DurationFlag) Type() string { return "duration" }

// describe says what a TOML value is: "the string \"five\"", "the number
// 1.5", "true", "a list of numbers", "a table".
func describe(v any) string {
	switch x := v.(type) {
	case string:
		return "the string " + strconv.Quote(x)
	case int64:
		return fmt.Sprintf("the number %d", x)
	case float64:
		return "the number " + strconv.FormatFloat(x, 'g', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	case []any:
		if len(x) == 0 {
			return "an empty list"
		}
		kinds := map[string]bool{}
		for _, e := range x {
			kinds[kindOf(e)] = true
		}
		if len(kinds) == 1 {
			return "a list of " + kindOf(x[0]) + "s"
		}
		return "a list of mixed values"
	case map[string]any:
		return "a table"
	case nil:
		return "nothing"
	}
	return "a date or time"
}

func kindOf(v any) string {
	switch v.(type) {
	case string:
		return "string"
	case int64, float64:
		return "number"
	case bool:
		return "boolean"
	case []any:
		return "list"
	case map[string]any:
		return "table"
	}
	return "date"
}
