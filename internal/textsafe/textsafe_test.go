package textsafe

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestString(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", ""},
		{"alice", "alice"},
		{"josé 東京 \\x1b", "josé 東京 \\x1b"}, // printable non-ASCII and the backslash are kept
		{"\x1b]0;pwned\x07\x1b[2J", `\x1b]0;pwned\x07\x1b[2J`},
		{"a\tb\nc\rd\x00e\x7f", `a\x09b\x0ac\x0dd\x00e\x7f`},
		{"csi\u009b2J", `csi\u009b2J`},
		{"\u0085nel", `\u0085nel`},
		{"abc\u202edcba\u2066x\u2069", `abc\u202edcba\u2066x\u2069`},
		{"line\u2028sep", `line\u2028sep`},
		{"bad\x9b\xffutf8\xc3", `bad\x9b\xffutf8\xc3`},
	} {
		if got := String(c.in); got != c.want {
			t.Errorf("String(%q) = %q, want %q", c.in, got, c.want)
		}
		if Safe(c.in) != (c.in == c.want) {
			t.Errorf("Safe(%q) = %v", c.in, Safe(c.in))
		}
		if got := string(Append([]byte("x:"), c.in)); got != "x:"+c.want {
			t.Errorf("Append(%q) = %q", c.in, got)
		}
	}
}

// FuzzString: whatever goes in, what comes out is valid UTF-8 with no
// control character, and text that was safe is unchanged.
func FuzzString(f *testing.F) {
	f.Add("\x1b]0;pwned\x07\x1b[2J")
	f.Add("\xc2\x9b2J")
	f.Add("ok")
	f.Fuzz(func(t *testing.T, s string) {
		out := String(s)
		if !utf8.ValidString(out) {
			t.Fatalf("%q: not UTF-8: %q", s, out)
		}
		if strings.ContainsFunc(out, func(r rune) bool { return r < 0x20 || r >= 0x7f && r <= 0x9f || unsafeRune(r) }) {
			t.Fatalf("%q: control left in %q", s, out)
		}
		if Safe(s) && out != s {
			t.Fatalf("%q: safe, yet changed to %q", s, out)
		}
		if !Safe(out) {
			t.Fatalf("%q: output %q is not safe", s, out)
		}
	})
}

func TestBytes(t *testing.T) {
	for _, c := range []struct {
		n    int64
		unit string
		want string
	}{
		{0, "B", "0 B"},
		{1023, "bytes", "1023 bytes"},
		{1024, "B", "1.0 KiB"},
		{1536, "B", "1.5 KiB"},
		{1<<20 - 1, "B", "1024.0 KiB"},
		{1 << 20, "B", "1.0 MiB"},
		{5 << 30, "bytes", "5.0 GiB"},
	} {
		if got := Bytes(c.n, c.unit); got != c.want {
			t.Errorf("Bytes(%d, %q) = %q, want %q", c.n, c.unit, got, c.want)
		}
	}
}
