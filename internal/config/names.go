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

// validHostname reports whether s is made of a host name's characters.
func validHostname(s string) bool { return ValidName(s, 253, ".") }

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
