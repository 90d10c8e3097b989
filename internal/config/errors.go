package config

import (
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/pelletier/go-toml/v2"
)

// configError turns go-toml's errors into "file:line: key: problem", the
// problem in the file's terms: "want a number, got the string \"five\"",
// "unknown key \"ban.ban_tme\": did you mean ban_time?". v is what data
// was decoded into.
func configError(path string, data []byte, v any, err error) error {
	t := reflect.TypeOf(v)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var strict *toml.StrictMissingError
	if errors.As(err, &strict) {
		var msgs []string
		for _, e := range strict.Errors {
			row, _ := e.Position()
			msgs = append(msgs, fmt.Sprintf("%s:%d: %s", path, row, unknownKey(t, e.Key(), isHeader(data, row))))
		}
		return errors.New(strings.Join(msgs, "\n"))
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		row, _ := de.Position()
		msg := strings.TrimPrefix(de.Error(), "toml: ")
		key := strings.Join(de.Key(), ".")
		if strings.HasPrefix(msg, "cannot decode TOML ") && key != "" {
			msg = typeMismatch(t, data, de.Key(), msg)
		}
		if key != "" {
			return fmt.Errorf("%s:%d: %s: %s", path, row, key, msg)
		}
		return fmt.Errorf("%s:%d: %s", path, row, msg)
	}
	return fmt.Errorf("%s: %w", path, err)
}

// isHeader reports whether line row (from 1) of data is a table header.
func isHeader(data []byte, row int) bool {
	lines := strings.Split(string(data), "\n")
	return row >= 1 && row <= len(lines) && strings.HasPrefix(strings.TrimSpace(lines[row-1]), "[")
}

// unknownKey says that key (a table when header) is not one of t's, with
// the closest name when one is close, or the table a key of that name
// belongs to.
func unknownKey(t reflect.Type, key []string, header bool) string {
	name := key[len(key)-1]
	parent := strings.Join(key[:len(key)-1], ".")
	dotted := strings.Join(key, ".")
	msg := fmt.Sprintf("unknown key %q", dotted)
	if header {
		msg = fmt.Sprintf("unknown table [%s]", dotted)
	}
	in := typeAt(t, key[:len(key)-1])
	if in == nil || in.Kind() != reflect.Struct {
		return msg
	}
	qualify := func(n string) string {
		if parent == "" {
			return n
		}
		return parent + "." + n
	}
	if best := closest(name, keysOf(in)); best != "" {
		if header {
			return fmt.Sprintf("%s: did you mean [%s]?", msg, qualify(best))
		}
		return fmt.Sprintf("%s: did you mean %s?", msg, best)
	}
	if header {
		return msg
	}
	var elsewhere []string
	for _, k := range allKeys(t, "") {
		if strings.HasSuffix(k, "."+name) && k != dotted {
			elsewhere = append(elsewhere, k)
		}
	}
	if len(elsewhere) == 1 {
		i := strings.LastIndex(elsewhere[0], ".")
		return fmt.Sprintf("%s: %s is a key of [%s]", msg, name, elsewhere[0][:i])
	}
	return msg
}

// typeMismatch words go-toml's "cannot decode TOML string into struct
// field ... of type float64" as "want a number, got the string \"five\"".
func typeMismatch(t reflect.Type, data []byte, key []string, msg string) string {
	want := typeAt(t, key)
	if want == nil {
		return msg
	}
	got := "a " + strings.Fields(strings.TrimPrefix(msg, "cannot decode TOML "))[0]
	var doc map[string]any
	if toml.Unmarshal(data, &doc) == nil {
		var v any = doc
		for _, k := range key {
			m, ok := v.(map[string]any)
			if !ok {
				v = nil
				break
			}
			v = m[k]
		}
		if v != nil {
			got = describe(v)
		}
	}
	return fmt.Sprintf("want %s, got %s", wanted(want), got)
}

// wanted says what a value of type t is written as.
func wanted(t reflect.Type) string {
	if t == reflect.TypeFor[Duration]() {
		return `a duration such as "10m"`
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		if e := wanted(t.Elem()); strings.HasPrefix(e, "a ") {
			return "a list of " + strings.TrimPrefix(e, "a ") + "s"
		}
		return "a list"
	case reflect.Map:
		return "a table of " + strings.TrimPrefix(wanted(t.Elem()), "a ") + "s"
	case reflect.Struct:
		return "a table"
	}
	return t.String()
}

// typeAt is the type of the field of struct type t that the key names by
// its toml tags (t itself for no key), or nil.
func typeAt(t reflect.Type, key []string) reflect.Type {
	for _, name := range key {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
			t = t.Elem() // [[host]]: the element's keys
		}
		if t.Kind() != reflect.Struct {
			return nil
		}
		f, ok := fieldNamed(t, name)
		if !ok {
			return nil
		}
		t = f.Type
	}
	return t
}

func fieldNamed(t reflect.Type, name string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		if n := tomlName(t.Field(i)); n != "" && n == name {
			return t.Field(i), true
		}
	}
	return reflect.StructField{}, false
}

// keysOf are the keys of struct type t, in order.
func keysOf(t reflect.Type) []string {
	var out []string
	for i := range t.NumField() {
		if n := tomlName(t.Field(i)); n != "" {
			out = append(out, n)
		}
	}
	return out
}

// allKeys are the dotted keys of struct type t and of its tables, below
// prefix.
func allKeys(t reflect.Type, prefix string) []string {
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		n := tomlName(f)
		if n == "" {
			continue
		}
		if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeFor[Duration]() {
			out = append(out, allKeys(f.Type, prefix+n+".")...)
			continue
		}
		out = append(out, prefix+n)
	}
	return out
}

// closest is the candidate nearest to name by edit distance, when near
// enough to be a slip (a letter or two, at most a third of the name), or "".
func closest(name string, candidates []string) string {
	best, bestD := "", max(1, min(2, len(name)/3))+1
	for _, c := range candidates {
		if d := editDistance(name, c); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// editDistance counts the insertions, deletions, substitutions and swaps
// of two neighbours that turn a into b (optimal string alignment).
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}
