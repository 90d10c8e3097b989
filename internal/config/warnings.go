package config

import (
	"fmt"
	"os"

	"sshguard-go/internal/ban"
)

// Warnings are what c allows but is most likely not meant, each naming
// its key, and the file and the line that set it as Locate does: the
// file holding secrets that others may read (SecretWarning), a secret
// file that every user may read (secretFiles), an allowlist entry wider
// than a ban by hand may be without --force. check-config and run -t
// print them; the daemon logs them at its start and on reload.
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
	for _, f := range c.secretFiles() {
		if st, err := os.Stat(f.path); err == nil && st.Mode().Perm()&0o004 != 0 {
			warn(f.key, "%s is readable by every user (mode %04o): anyone on this machine can %s; chmod o-r it", f.path, st.Mode().Perm(), f.gives)
		}
	}
	c.Ban.warn(warn)
	return out
}

// secretFile is a file of the configuration that holds a secret.
type secretFile struct {
	key, path string
	gives     string // what whoever reads it can do
}

// secretFiles are c's files that hold a secret, those set.
func (c *Config) secretFiles() []secretFile {
	fleet := "ban and unban on every host of the fleet"
	var out []secretFile
	for _, f := range []secretFile{
		{"api.token_file", c.API.TokenFile, "read the sessions, logins, events and bans"},
		{"api.tls_key", c.API.TLSKey, "pose as the API's server"},
		{"alerts.email.password_file", c.Alerts.Email.PasswordFile, "send mail as the alerts' account"},
		{"alerts.sms.auth_token_file", c.Alerts.SMS.AuthTokenFile, "use the Twilio account"},
		{"alerts.webhook.url_file", c.Alerts.Webhook.URLFile, "post to the webhook"},
		{"fleet.creds_file", c.Fleet.CredsFile, fleet},
		{"fleet.nkey_file", c.Fleet.NKeyFile, fleet},
		{"fleet.token_file", c.Fleet.TokenFile, fleet},
		{"fleet.password_file", c.Fleet.PasswordFile, fleet},
		{"fleet.key_file", c.Fleet.KeyFile, "pose as this host to the NATS servers"},
	} {
		if f.path != "" {
			out = append(out, f)
		}
	}
	return out
}

// warn says of each allowlist entry wider than a ban by hand may be
// without --force (ban.MinManual) that it lets every address in it in:
// right for one's own network (10.0.0.0/8), a disaster for a typo
// (128.0.0.0/1). /0 is refused (validate).
func (b BanConfig) warn(warn func(key, format string, args ...any)) {
	for _, a := range b.Allow {
		p, err := ParsePrefix(a)
		if min := ban.MinManual(p); err == nil && p.Bits() > 0 && p.Bits() < min {
			warn("ban.allow", "%q is wider than /%d (the widest ban that needs no --force): no address in it is ever banned; narrow it unless it is all yours", a, min)
		}
	}
}
