// Package textsafe makes text from logs, peers and remote hosts safe to
// print on a terminal: an attacker chooses the user names, methods and
// commands that sshd logs, and a host of the fleet its name and errors,
// and a control sequence among them (ESC, OSC, BEL, CSI as C1) would
// retitle, clear or rewrite the administrator's terminal.
//
// Every text (non-JSON) output that prints such text passes it through
// String or Append. Each of these is replaced by a visible escape:
//
//   - C0 control characters, tab and newline included (a tab would break
//     a table's columns, a newline its rows), and DEL: \xNN (\x1b, \x07,
//     \x09, \x7f);
//   - the C1 controls U+0080..U+009F (which some terminals obey, U+009B
//     being CSI), the bidirectional overrides and isolates, and the line
//     and paragraph separators: \uNNNN;
//   - bytes that are not UTF-8: \xNN (always 0x80 or above, so never
//     confused with a C0 escape).
//
// Everything else, printable non-ASCII included, is left as it is; so is
// the backslash, so that ordinary text prints unchanged. JSON output
// needs none of this: encoding/json escapes control characters itself.
package textsafe

import (
	"unicode/utf8"
)

const hex = "0123456789abcdef"

// String returns s with its unsafe characters escaped; s itself when it
// has none.
func String(s string) string {
	if Safe(s) {
		return s
	}
	return string(Append(make([]byte, 0, len(s)+16), s))
}

// Safe reports whether s prints as it is.
func Safe(s string) bool {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c < 0x20 || c == 0x7f {
				return false
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 || unsafeRune(r) {
			return false
		}
		i += n
	}
	return true
}

// Append appends s to b with its unsafe characters escaped.
func Append(b []byte, s string) []byte {
	start := 0 // the first byte not yet appended
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c < 0x20 || c == 0x7f {
				b = append(b, s[start:i]...)
				b = append(b, '\\', 'x', hex[c>>4], hex[c&0xf])
				start = i + 1
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'x', hex[c>>4], hex[c&0xf])
			start = i + 1
		case unsafeRune(r):
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', hex[r>>12&0xf], hex[r>>8&0xf], hex[r>>4&0xf], hex[r&0xf])
			start = i + n
		}
		i += n
	}
	return append(b, s[start:]...)
}

// unsafeRune reports whether r, not ASCII, is escaped: a C1 control, a
// bidirectional control (which reorders what follows it on the screen),
// or a line or paragraph separator.
func unsafeRune(r rune) bool {
	switch {
	case r >= 0x80 && r <= 0x9f:
		return true
	case r == 0x061c, r == 0x200e, r == 0x200f: // ALM, LRM, RLM
		return true
	case r >= 0x202a && r <= 0x202e: // LRE, RLE, PDF, LRO, RLO
		return true
	case r >= 0x2066 && r <= 0x2069: // LRI, RLI, FSI, PDI
		return true
	case r == 0x2028, r == 0x2029:
		return true
	}
	return false
}
