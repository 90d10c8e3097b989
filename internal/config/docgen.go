package config

import (
	"bytes"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"
)

// DefaultFile is the commented default configuration, every key at its
// default with its comment and range: deploy/sshguard-go.toml, made from
// the documentation of the keys (keys.go) and Default().
func DefaultFile() []byte {
	var b bytes.Buffer
	comment := func(text string) {
		for _, l := range strings.Split(text, "\n") {
			b.WriteString(strings.TrimRight("# "+l, " ") + "\n")
		}
	}
	comment(fileHead)
	for _, s := range docs {
		fmt.Fprintf(&b, "\n[%s]\n", s.Table)
		if s.Doc != "" {
			comment(s.Doc)
		}
		for _, g := range groups(s.Keys) {
			if g[0].Gap {
				b.WriteString("\n")
			}
			if g[0].Doc != "" {
				comment(g[0].Doc)
			}
			lines, width := make([]string, len(g)), 0
			for i, k := range g {
				lines[i] = k.Name + " = " + defaultValue(s.Table+"."+k.Name)
				if trailing(k) != "" {
					width = max(width, len(lines[i]))
				}
			}
			for i, k := range g {
				if t := trailing(k); t != "" {
					fmt.Fprintf(&b, "%-*s  # %s\n", width, lines[i], t)
				} else {
					b.WriteString(lines[i] + "\n")
				}
			}
		}
		if s.End != "" {
			b.WriteString("\n")
			comment(s.End)
		}
	}
	return b.Bytes()
}

// groups splits keys into runs that one comment covers: a key with a
// comment (or a blank line) and the keys after it without.
func groups(keys []docKey) [][]docKey {
	var out [][]docKey
	for _, k := range keys {
		if len(out) == 0 || k.Doc != "" || k.Gap {
			out = append(out, nil)
		}
		out[len(out)-1] = append(out[len(out)-1], k)
	}
	return out
}

// trailing is the comment at the end of k's line: its note and its range.
func trailing(k docKey) string {
	switch {
	case k.Range != nil && k.Note != "":
		return k.Note + "; " + k.Range.String()
	case k.Range != nil:
		return k.Range.String()
	}
	return k.Note
}

// defaultValue is the default of the dotted key, written as TOML.
func defaultValue(key string) string {
	v := fieldOf(reflect.ValueOf(Default()).Elem(), key)
	if !v.IsValid() {
		panic("config: documented key " + key + " is not a field")
	}
	return tomlValue(v)
}

func tomlValue(v reflect.Value) string {
	if d, ok := v.Interface().(Duration); ok {
		return strconv.Quote(d.String())
	}
	switch v.Kind() {
	case reflect.String:
		return strconv.Quote(v.String())
	case reflect.Bool:
		return strconv.FormatBool(v.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(v.Int(), 10)
	case reflect.Float32, reflect.Float64:
		return strconv.FormatFloat(v.Float(), 'f', -1, 64)
	case reflect.Slice:
		var items []string
		for i := range v.Len() {
			items = append(items, tomlValue(v.Index(i)))
		}
		return "[" + strings.Join(items, ", ") + "]"
	case reflect.Struct: // an inline table, fields in order
		var items []string
		for i := range v.NumField() {
			if tag := strings.Split(v.Type().Field(i).Tag.Get("toml"), ",")[0]; tag != "" {
				items = append(items, tag+" = "+tomlValue(v.Field(i)))
			}
		}
		return "{ " + strings.Join(items, ", ") + " }"
	case reflect.Map:
		var items []string
		for _, k := range v.MapKeys() {
			items = append(items, strconv.Quote(k.String())+" = "+tomlValue(v.MapIndex(k)))
		}
		sort.Strings(items)
		if len(items) == 0 {
			return "{}"
		}
		return "{ " + strings.Join(items, ", ") + " }"
	}
	panic(fmt.Sprintf("config: no TOML form for %s", v.Type()))
}

// ManPage writes the manual page sshguard-go.toml(5) in roff, from the
// same documentation as DefaultFile; source is the footer's "sshguard-go
// VERSION", date the page's.
func ManPage(w io.Writer, source string, date time.Time) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, ".TH \"SSHGUARD-GO.TOML\" \"5\" %q %q \"sshguard-go manual\"\n.nh\n.ad l\n", date.Format("Jan 2006"), source)
	b.WriteString(".SH NAME\nsshguard-go.toml \\- the configuration file of sshguard-go\n")
	b.WriteString(".SH SYNOPSIS\n\\fB" + roff(DefaultPath) + "\\fR\n")
	b.WriteString(".SH DESCRIPTION\n")
	paragraphs(&b, manDescription)
	b.WriteString(".SH KEYS\n")
	for _, s := range docs {
		fmt.Fprintf(&b, ".SS [%s]\n", s.Table)
		if s.Doc != "" {
			paragraphs(&b, s.Doc)
		}
		for _, g := range groups(s.Keys) {
			b.WriteString(".PP\n")
			for i, k := range g {
				if i > 0 {
					b.WriteString(".br\n")
				}
				fmt.Fprintf(&b, "\\fB%s\\fR = %s", roff(k.Name), roff(defaultValue(s.Table+"."+k.Name)))
				if t := trailing(k); t != "" {
					fmt.Fprintf(&b, " \\(em %s", roff(t))
				}
				b.WriteString("\n")
			}
			if g[0].Doc != "" {
				b.WriteString(".RS 4\n")
				paragraphs(&b, g[0].Doc)
				b.WriteString(".RE\n")
			}
		}
		if s.End != "" {
			b.WriteString(".PP\n")
			paragraphs(&b, s.End)
		}
	}
	b.WriteString(".SH FILES\n.TP\n" + roff(DefaultPath) + "\nThe configuration file; without it the defaults apply.\n")
	b.WriteString(".SH SEE ALSO\n\\fBsshguard-go\\fR(1), \\fBsshguard-go-run\\fR(1), \\fBsshguard-go-check-config\\fR(1)\n")
	_, err := w.Write(b.Bytes())
	return err
}

// paragraphs writes text (lines; an empty line between paragraphs) as
// roff paragraphs, `code` in bold.
func paragraphs(b *bytes.Buffer, text string) {
	for i, p := range strings.Split(text, "\n\n") {
		if i > 0 {
			b.WriteString(".PP\n")
		}
		for _, l := range strings.Split(p, "\n") {
			b.WriteString(code(roff(l)) + "\n")
		}
	}
}

// roff escapes text for a roff line: backslashes, minus signs, and a
// leading dot or quote that would make it a request.
func roff(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	s = strings.ReplaceAll(s, "-", `\-`)
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = `\&` + s
	}
	return s
}

// code sets the `spans` of s in bold.
func code(s string) string {
	parts := strings.Split(s, "`")
	if len(parts)%2 == 0 { // an unpaired backquote: left as it is
		return s
	}
	for i := 1; i < len(parts); i += 2 {
		parts[i] = `\fB` + parts[i] + `\fR`
	}
	return strings.Join(parts, "")
}
