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
		if msg := f.readable(); msg != "" {
			warn(f.Key, "%s", msg)
		}
	}
	c.Ban.warn(warn)
	return out
}

// SecretFile is a file that holds a secret: Key is the setting that
// names it (a key of the configuration, a command's flag, a host of
// hosts.toml), Gives what whoever reads the file can do.
type SecretFile struct {
	Key, Path, Gives string
}

// readable is what to say of f when every user may read it, else "".
func (f SecretFile) readable() string {
	st, err := os.Stat(f.Path)
	if err != nil || st.Mode().Perm()&0o004 == 0 {
		return ""
	}
	return fmt.Sprintf("%s is readable by every user (mode %04o): anyone on this machine can %s; chmod o-r it", f.Path, st.Mode().Perm(), f.Gives)
}

// SecretWarnings are the warnings, each naming its Key, of the files
// (those set) that every user may read: what Warnings says of the
// configuration's own, for the files a command is given (fleet serve).
func SecretWarnings(files []SecretFile) []string {
	var out []string
	for _, f := range files {
		if f.Path == "" {
			continue
		}
		if msg := f.readable(); msg != "" {
			out = append(out, KeyErrorf(f.Key, "%s", msg).Error())
		}
	}
	return out
}

// secretFiles are c's files that hold a secret, those set.
func (c *Config) secretFiles() []SecretFile {
	fleet := "ban and unban on every host of the fleet"
	var out []SecretFile
	for _, f := range []SecretFile{
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
		if f.Path != "" {
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
