package config

import (
	"os"
	"strings"
)

// ValidName reports whether s is 1 to max characters, each an ASCII letter,
// a digit, '-' or one of extra: the one check of the names the
// configuration, hosts.toml and the fleet's URLs carry.
func ValidName(s string, max int, extra string) bool {
	if s == "" || len(s) > max {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || strings.ContainsRune(extra, r)) {
			return false
		}
	}
	return true
}

// ValidFleetName reports whether s can be a NATS subject token and a
// consumer name.
func ValidFleetName(s string) bool { return ValidName(s, 64, "_") }

// validHostname reports whether s is a host name (RFC 1123 2.1): labels
// of letters, digits and '-', 1 to 63 characters each and neither starting
// nor ending with '-', 253 characters at most, a final '.' allowed.
// numericName's names are not.
func validHostname(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if !ValidName(s, 253, ".") || numericName(s) {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
	}
	return true
}

// numericName reports whether the last label of s is all digits: no top
// level domain is (RFC 3696 2), so s is a mistyped address (1.2.3.4.5,
// 10.0.0.256, 192.168.1), not a host name.
func numericName(s string) bool {
	s = strings.TrimSuffix(s, ".")
	last := s[strings.LastIndex(s, ".")+1:]
	return last != "" && strings.Trim(last, "0123456789") == ""
}

// systemHostname is the kernel's host name, or "localhost" when it cannot
// be read.
func systemHostname() string {
	h, err := os.Hostname()
	if err != nil {
		return "localhost"
	}
	return h
}

// ShortHostname is the first label of the kernel's host name, as syslog
// writes it and as this host is named in the fleet by default;
// "localhost" when it cannot be read.
func ShortHostname() string {
	h, _, _ := strings.Cut(systemHostname(), ".")
	return h
}
