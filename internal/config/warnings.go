package config

import (
	"fmt"

	"sshguard-go/internal/ban"
)

// Warnings are what c allows but is most likely not meant, each naming
// its key, and the file and the line that set it as Locate does: the
// file holding secrets that others may read (SecretWarning), an
// allowlist entry wider than a ban by hand may be without --force.
// check-config prints them; the daemon logs them at its start and on
// reload.
func (c *Config) Warnings() []string {
	var out []string
	if w := c.SecretWarning(); w != "" {
		out = append(out, w)
	}
	warn := func(key, format string, args ...any) {
		var e error = &keyError{key: key, msg: fmt.Sprintf(format, args...)}
		if c.data != nil {
			e = withLine(c.Path, c.data, e)
		}
		out = append(out, e.Error())
	}
	c.Ban.warn(warn)
	return out
}

// warn says of each allowlist entry wider than a ban by hand may be
// without --force (ban.MinManual) that it lets every address in it in:
// right for one's own network (10.0.0.0/8), a disaster for a typo
// (100.0.0.0/1). /0 is refused (validate).
func (b BanConfig) warn(warn func(key, format string, args ...any)) {
	for _, a := range b.Allow {
		p, err := ParsePrefix(a)
		if min := ban.MinManual(p); err == nil && p.Bits() > 0 && p.Bits() < min {
			warn("ban.allow", "%q is wider than /%d (the widest ban that needs no --force): no address in it is ever banned; narrow it unless it is all yours", a, min)
		}
	}
}
