package config

// The documentation of every key of the file: its comment, and for a
// duration its range. It is the one source of the commented default file
// (deploy/sshguard-go.toml, DefaultFile), of the manual page
// sshguard-go.toml(5) (ManPage) and of the ranges Validate checks; the
// values shown are Default()'s. Comments are written as they appear in the
// file, one line each; an empty line starts a paragraph, `code` is set
// in bold in the manual.

import (
	"fmt"
	"reflect"
	"strings"
	"time"
)

// docSection is one table of the file.
type docSection struct {
	Table string   // "detection", "alerts.email"
	Doc   string   // the comment under the table's header
	Keys  []docKey // in the file's order
	End   string   // a comment after the keys
}

// docKey is one key.
type docKey struct {
	Name  string
	Doc   string // the comment above the key ("": the one above covers it)
	Gap   bool   // a blank line before the comment
	Note  string // the comment at the end of the key's line
	Range *Range // a duration's range
}

// fileHead is the comment at the top of the default file.
const fileHead = `sshguard-go configuration. Every key is shown at its default; delete or
change what you need. Unknown keys are errors. Durations are written 30s,
10m, 1h, 7d, 2w, or combined (1d12h, 1h30m); a bare number is refused.
Each duration's range is at the end of its line; sshguard-go.toml(5)
describes every key.
Install as /etc/sshguard-go/sshguard-go.toml (mode 0600 if it holds secrets).`

// manDescription is the manual's DESCRIPTION, after which come the keys.
const manDescription = `sshguard-go reads one TOML file, /etc/sshguard-go/sshguard-go.toml (run's
--config names another). Every key is optional: a missing key, or a missing
file, is the default shown below. The file is strict: an unknown key, a
value of the wrong type or out of its range stops the start with the file,
the line and the key, and a close name is suggested.
` + "`sshguard-go check-config`" + ` checks a file, and that its log source can be
read here, and prints the effective configuration, secrets masked; the
unit runs it before every start and reload.

SIGHUP (systemctl reload) reads the file again: [detection], [ban] and
[alerts] change at once; [log], [firewall], [state], [metrics], [api],
[audit] and [fleet] at the next start.

Durations are written with the units s, m, h, d (24h) and w (7d), alone or
combined with the larger units first: 30s, 10m, 1h, 7d, 2w, 1d12h, 1h30m.
A bare number is refused (ban_time = 3600 asks whether 3600s or 1h was
meant); nothing is shorter than a second. Each duration key has a range,
given with it below.`

// kindsDoc is the comment of each channel's kinds and min_severity.
const kindsDoc = `The kinds of alerts this channel takes, at or above min_severity (see
[alerts]).`

// docs is the file, table by table.
var docs = []docSection{
	{Table: "log", Keys: []docKey{
		{Name: "file", Doc: `Log file to follow. "" picks /var/log/auth.log or /var/log/secure, and
journald when neither exists.`},
		{Name: "journal", Doc: `Read journald even when a log file exists.`},
		{Name: "from_start", Doc: `On the very first start, read the file from its beginning instead of its end.
A backlog is read as live traffic would have been: windows, bans in force
and escalation by the lines' own times.`},
		{Name: "wait", Doc: `A file that does not exist stops the start, naming it (a typo in file or
--log). With wait = true the daemon waits for it to appear instead, with a
warning every minute.`},
	}},
	{Table: "detection", Keys: []docKey{
		{Name: "threshold", Doc: "Ban when the weighted attempts of one client within `window` reach this."},
		{Name: "window", Range: &Range{Min: Duration(time.Second), Max: Duration(30 * day)}},
		{Name: "failure_weight", Doc: `Weight of a failed authentication and of a probe (scan, protocol error,
pre-auth disconnect). A probe weight of 0 ignores probes. Weights are
counted exactly in steps of 0.05 (0.05 to 12.75), and of 0.5 while horizons
or network_horizons count (0.5 to 12.5); other values are refused.`},
		{Name: "probe_weight"},
		{Name: "ipv4_prefix", Doc: `Clients are counted and banned per address (IPv4 /32) and per /64 (IPv6).`},
		{Name: "ipv6_prefix"},
		{Name: "wide_prefix_v6", Doc: "An IPv6 attacker holds far more than one /64 (a /48 or /56 is what a\n" +
			"provider hands out) and can rotate through them: attempts are also\n" +
			"counted per wide_prefix_v6, and that prefix is banned when they reach\n" +
			"wide_threshold within `window`. 0 turns it off; wide_prefix_v4 (off by\n" +
			"default) does the same for IPv4."},
		{Name: "wide_prefix_v4"},
		{Name: "wide_threshold"},
		{Name: "horizons", Gap: true, Doc: `Slow attackers: besides window, longer horizons, each with its own
threshold (at most 4, each 1h to 90d; [] is none). The defaults
catch one guess an hour (6 in a day), bursts of 3 every 9 hours (the
second burst) and one guess every 8 hours for 3 days (the 8th in a week),
which neither fail2ban nor SSHGuard catch on their defaults. Failures at an
account that exists are forgiven by a later login from the address (typos:
the colleague who mistypes twice every morning, an office NAT); failures at
accounts that do not exist never are, and count once per name (a script
retrying one missing account is not an enumeration); failures after a login
count again. Each horizon keeps 12 buckets a key: true to a twelfth of it.`},
		{Name: "network_prefix_v4", Gap: true, Doc: `Networks: many addresses of one network, each guessing a couple of times a
day. Attempts are also counted per /24 (IPv4) and /48 (IPv6) at
network_horizons, from networks no user has logged in from within the
longest of them; a network ban names the addresses that made it. 0 is off,
and so is a network no wider than ipv4_prefix or ipv6_prefix.`},
		{Name: "network_prefix_v6"},
		{Name: "network_horizons"},
		{Name: "max_tracked", Doc: `At most this many clients are tracked; the least recently seen go first.`},
	}},
	{Table: "ban", Keys: []docKey{
		{Name: "ban_time", Doc: "The first ban lasts ban_time; each later ban within `remember` multiplies\n" +
			"it by `factor`, up to max_ban_time.",
			Range: &Range{Min: Duration(time.Second), AtMost: "ban.max_ban_time"}},
		{Name: "factor"},
		{Name: "max_ban_time", Range: &Range{Min: Duration(time.Second), AtLeast: "ban.ban_time"}},
		{Name: "remember", Range: &Range{Min: Duration(time.Second)}},
		{Name: "permanent_after", Doc: `Ban permanently at the nth ban (0: never).`},
		{Name: "allow", Doc: `Never banned: addresses, prefixes or host names (resolved at start and on
SIGHUP). Loopback is always allowed. Every address (0.0.0.0/0, ::/0) is
refused, and so is a mistyped address (10.0.0.256, 192.168.1); a prefix
wider than a ban by hand may be without --force (/16, IPv6 /32) is taken
with a warning (check-config, and the log at start and reload).`},
	}},
	{Table: "firewall", Keys: []docKey{
		{Name: "backend", Doc: `"nftables", or "none" to only log what would be banned.`},
		{Name: "table", Doc: `The nftables table (family inet) that holds the bans, and the priority of
its input hook, -400 to 400 (the span of nftables' named priorities: raw
-300, mangle -150, filter 0): -10 drops before the chains at filter.`},
		{Name: "priority"},
		{Name: "forward", Doc: `Also drop banned sources in the forward hook (containers, VMs).`},
		{Name: "cut_connections", Doc: `End the established connections of a newly banned source at once (deletes
its conntrack entries). Without it they stall: every packet of a banned
source is dropped before any "ct state established accept" rule.`},
	}},
	{Table: "state", Keys: []docKey{
		{Name: "db", Doc: `The state database, and the control socket of the commands.`},
		{Name: "socket"},
		{Name: "history", Doc: "How long the database keeps what protection no longer needs, pruned\n" +
			"hourly in small transactions (offenders are forgotten after\n" +
			"ban.remember; bans in force are always kept). `sshguard-go db compact`\n" +
			"gives the space back to the file system.",
			Note: "ban history, with each ban's evidence", Range: &Range{Min: Duration(day)}},
		{Name: "logins", Note: "login records", Range: &Range{Min: Duration(day)}},
		{Name: "counts", Note: "hourly counts (reports, and the dashboard's charts)",
			Range: &Range{Min: Duration(day), AtLeast: "state.counts_detail"}},
		{Name: "counts_detail", Note: "hours keep every address and user this long, then the top 20",
			Range: &Range{Min: Duration(day), AtMost: "state.counts"}},
		{Name: "sessions", Note: "the audit trail: session records, by their start", Range: &Range{Min: Duration(day)}},
	}},
	{Table: "alerts", Doc: "An email, a text message or a webhook call on every ban and every\n" +
		"successful login. Each channel below is on when its address is set\n" +
		"(email.host, sms.account_sid, webhook.url). Alerts are kept in the state\n" +
		"database until delivered: an outage of the mail server delays them, loses\n" +
		"none. `sshguard-go alert test` tries every channel now.",
		Keys: []docKey{
			{Name: "hostname", Doc: `The name in subjects and messages ("" = this machine's host name).`, Gap: true},
			{Name: "dedupe_logins", Doc: `One alert for the same user logging in from the same address within this.`,
				Range: &Range{Min: Duration(time.Second)}},
			{Name: "working_hours", Doc: `Logins outside working hours are raised a severity level ("" = no rule),
e.g. "08:00-18:00" on working_days in timezone ("Local" = the system's,
or an IANA name such as "Europe/Berlin").`},
			{Name: "working_days"},
			{Name: "timezone"},
			{Name: "flood_rate", Doc: `Flood control: more than flood_rate ban alerts within flood_window switch a
channel to one digest of all bans every digest_interval, until the flood
ends. Login alerts are never held back.`},
			{Name: "flood_window", Range: &Range{Min: Duration(time.Second)}},
			{Name: "digest_interval", Range: &Range{Min: Duration(time.Second)}},
			{Name: "retry_min", Doc: `Failed deliveries are retried with exponential backoff (with jitter)
from retry_min up to retry_max apart, until the alert is max_age old.
Logins older than max_age when read (a backlog) are recorded, not alerted.`,
				Range: &Range{Min: Duration(time.Second), AtMost: "alerts.retry_max"}},
			{Name: "retry_max", Range: &Range{Min: Duration(time.Second), AtLeast: "alerts.retry_min"}},
			{Name: "max_age", Range: &Range{Min: Duration(time.Second)}},
			{Name: "history", Doc: "Delivered alerts kept for `sshguard-go alerts`."},
			{Name: "daily_report", Doc: `A daily report (failed attempts, probes, bans, top addresses and users,
every login) to the channels whose kinds include "report", at report_hour
in timezone.`},
			{Name: "report_hour"},
			{Name: "targeted_failures", Gap: true, Doc: `The audit trail's alerts (kind "session"), each off by default: a failed
attempt at an existing local account (uid at least local_min_uid: a
targeted guess, not a dictionary name; once per user and address per
dedupe_logins), a session moving more than transfer_alert_bytes by sftp or
scp (0 = off), a session open longer than session_alert_after (0 = off).`},
			{Name: "local_min_uid"},
			{Name: "transfer_alert_bytes"},
			{Name: "session_alert_after", Range: &Range{Min: Duration(time.Minute), Off: true}},
		},
		End: `Severity: a ban is "warning" (a permanent ban "high"); a login is "info",
raised one level each when it is outside working hours or from a network
(/24, /64) the user never logged in from, and "high" after failed attempts
of the same client in the current window (a brute force that may have
succeeded). Each channel takes the kinds ("ban", "login", "report",
"session") it lists at or above its min_severity ("info", "warning",
"high").`},
	{Table: "alerts.email", Keys: []docKey{
		{Name: "host", Doc: `The mail server ("" = no email).`},
		{Name: "port", Doc: `1 to 65535; 0 = 587 for starttls, 465 for tls, 25 for none.`},
		{Name: "tls", Doc: `"starttls" (required, not opportunistic), "tls" (implicit TLS), or "none".`},
		{Name: "auth", Doc: `"plain" or "login"; "" = plain when a username is set.`},
		{Name: "username"},
		{Name: "password", Doc: `The password, or a file holding it (e.g. "/run/credentials/sshguard-go.service/smtp"
with LoadCredential=smtp:/etc/sshguard-go/smtp-password in the unit).`},
		{Name: "password_file"},
		{Name: "from", Doc: `The sender, and the recipients.`},
		{Name: "to"},
		{Name: "ca_file", Doc: `PEM certificates to trust besides the system's (a private mail server).`},
		{Name: "subject_prefix", Doc: `Replaces the subject's "[host]" prefix ("" keeps it).`},
		{Name: "kinds", Doc: kindsDoc},
		{Name: "min_severity"},
	}},
	{Table: "alerts.sms", Doc: `Twilio: the account SID and auth token (or a file holding it), and either
a sending number (from) or a messaging service. One message per number in to.`,
		Keys: []docKey{
			{Name: "account_sid"},
			{Name: "auth_token"},
			{Name: "auth_token_file"},
			{Name: "from"},
			{Name: "messaging_service_sid"},
			{Name: "to"},
			{Name: "base_url", Doc: `Twilio's API (another address: a proxy).`},
			{Name: "kinds", Doc: kindsDoc},
			{Name: "min_severity"},
		}},
	{Table: "alerts.webhook", Doc: `A JSON POST with a Slack-compatible "text" field (Slack and Mattermost
incoming webhooks work as they are), plus subject, kind, severity and the
structured alert. The URL is often a secret: url_file reads it from a file.`,
		Keys: []docKey{
			{Name: "url"},
			{Name: "url_file"},
			{Name: "headers", Doc: `HTTP headers sent with every call, e.g. { "Authorization" = "Bearer ..." }.`},
			{Name: "kinds", Doc: kindsDoc},
			{Name: "min_severity"},
		}},
	{Table: "metrics", Doc: `Prometheus metrics at http://LISTEN/metrics ("" = off). Keep it on
localhost, e.g. "127.0.0.1:9611": lines read, events per kind, counted
attempts, tracked clients, active and total bans, alert deliveries per
channel and result, unparsed sshd lines.`,
		Keys: []docKey{{Name: "listen"}}},
	{Table: "audit", Doc: `The commands of each session, from auditd's log: "auto" reads
/var/log/audit/audit.log when it exists, "" never, else the path given.
Needs auditd with the execve rule of the README ("Audit trail"). Sessions
themselves come from sshd's log and need nothing more.`,
		Keys: []docKey{{Name: "log"}}},
	{Table: "api", Doc: "The read-only HTTP API and the host's dashboard (GET /), \"\" = off, e.g.\n" +
		"\"127.0.0.1:9612\". On localhost the counts and pages need no credentials;\n" +
		"the sessions, logins, events and bans always need the token (or a client\n" +
		"certificate). On any other address the daemon refuses to start unless\n" +
		"token_file or client certificates are set, and everything but the pages\n" +
		"needs them. Read the API at /api/docs; put many hosts on one page with\n" +
		"`sshguard-go fleet`.",
		Keys: []docKey{
			{Name: "listen"},
			{Name: "token_file", Doc: "A file holding the bearer token clients send (Authorization: Bearer ...),\n" +
				"at least 16 characters, e.g. from `openssl rand -hex 32`. \"\" (and no\n" +
				"client_ca): the daemon makes one once, api.token next to state.db\n" +
				"(/var/lib/sshguard-go/api.token, mode 0600): `sudo cat` it."},
			{Name: "tls_cert", Doc: `HTTPS: the server's certificate and key; with client_ca, clients must show
a certificate signed by that CA (mutual TLS).`},
			{Name: "tls_key"},
			{Name: "client_ca"},
			{Name: "events", Doc: `How many recent events GET /api/v1/events keeps in memory.`},
		}},
	{Table: "fleet", Doc: `Bans shared across a fleet through NATS JetStream ("" = off): a ban on
one host is enforced on every other within a second; see the README's
"Fleet: shared bans". One URL or several, comma-separated.`,
		Keys: []docKey{
			{Name: "nats_url"},
			{Name: "name", Doc: `This host in the fleet ("" = its host name); a NATS subject token.`},
			{Name: "creds_file", Doc: `Credentials, as the NATS server's users take them (one of them).`},
			{Name: "nkey_file"},
			{Name: "token_file"},
			{Name: "user"},
			{Name: "password_file"},
			{Name: "ca_file", Doc: `TLS: the CA of the server's certificate, and a client certificate.`},
			{Name: "cert_file"},
			{Name: "key_file"},
			{Name: "stream", Doc: `The JetStream stream of the bans.`},
			{Name: "replicas", Doc: `How many servers of the NATS cluster keep the stream of bans and the
bucket of summaries (1 to 5): 1 for a single server, 3 for a cluster of
three (a ban survives the loss of one; an odd count keeps a majority).
A stream or bucket made with another count is changed to this one where
a host may change it (not with fleet nats-config's users: the NATS
administrator does); a server that cannot (a single server asked for 3)
is reported by fleet status and the log.`},
			{Name: "share", Doc: `Publish this host's bans and unbans; enforce the others'.`},
			{Name: "apply"},
			{Name: "min_prefix_v4", Doc: `Bans from other hosts wider than these are refused (and counted).`},
			{Name: "min_prefix_v6"},
			{Name: "max_peer_bans", Doc: `How many bans one other host may have in force here at once; its next
are refused (and counted) until some end: a compromised member cannot
grow this host's kernel set and database without end.`},
			{Name: "count_fleetwide", Doc: `Fleet-wide counting: attempts on every host add up per address, and the
host whose fleet count reaches fleet_threshold within fleet_window bans
and shares (a slow attacker spreading guesses over many hosts). An
address needs attempts seen by fleet_quorum hosts (1 to 4; this one
counts), each host's counting for at most detection.threshold: one
member, even a compromised one, never decides alone.`},
			{Name: "fleet_threshold"},
			{Name: "fleet_window", Range: &Range{Min: Duration(time.Second)}},
			{Name: "fleet_quorum"},
			{Name: "fleet_horizons", Doc: `Longer fleet windows (at most 2), for a slow attacker spread over hosts and
days: each host's attempts count there for at most its own horizon's
threshold (detection.horizons), and the quorum applies.`},
			{Name: "fleet_partitions", Doc: `With servers that pin a client to a consumer (NATS 2.11 or later),
fleet-wide counting is partitioned: each address is hashed to one of
fleet_partitions parts (1 to 256), each part counted on one host at a
time among its 4 to 8 standbys, chosen and replaced by the servers, which
shares the bans it decides. What a host receives then no longer grows with the fleet. With
older servers, or 0 here (every host of the fleet alike), every host
hears every other's attempts (all-to-all); fleet status says which.`},
		}},
}

// DurationKey is a duration key and its range.
type DurationKey struct {
	Key   string // dotted: "ban.ban_time"
	Range Range
}

// DurationKeys are the duration keys, in the file's order.
func DurationKeys() []DurationKey {
	var out []DurationKey
	for _, s := range docs {
		for _, k := range s.Keys {
			if k.Range != nil {
				out = append(out, DurationKey{s.Table + "." + k.Name, *k.Range})
			}
		}
	}
	return out
}

// KeyRange is the range of the duration key ("ban.ban_time"), for the
// flags that set it; it panics on a key that is not a duration's.
func KeyRange(key string) Range {
	for _, k := range DurationKeys() {
		if k.Key == key {
			return k.Range
		}
	}
	panic("config: no duration key " + key)
}

// checkRanges reports every duration of c outside its range. Two keys
// compared that are out of order are reported once, on the one the file
// sets (the first in the file's order when it sets both or neither).
func (c *Config) checkRanges() []error {
	v := reflect.ValueOf(c).Elem()
	get := func(key string) Duration { return Duration(fieldOf(v, key).Int()) }
	var errs []error
	compared := map[[2]string]bool{}
	for _, k := range DurationKeys() {
		d := get(k.Key)
		if err := k.Range.Check(d); err != nil {
			errs = append(errs, &keyError{key: k.Key, msg: err.Error()})
			continue
		}
		for _, o := range []struct{ key, word string }{{k.Range.AtLeast, "at least"}, {k.Range.AtMost, "at most"}} {
			if o.key == "" || compared[[2]string{o.key, k.Key}] {
				continue
			}
			if od := get(o.key); o.word == "at least" && d >= od || o.word == "at most" && d <= od {
				continue
			}
			compared[[2]string{k.Key, o.key}] = true
			back := map[string]string{"at least": "at most", "at most": "at least"}[o.word]
			errs = append(errs, &keyError{key: k.Key, msg: fmt.Sprintf("must be %s %s (%s), is %s", o.word, o.key, get(o.key), d),
				other: o.key, otherMsg: fmt.Sprintf("must be %s %s (%s), is %s", back, k.Key, d, get(o.key))})
		}
	}
	return errs
}

// fieldOf is the field of the struct v that the dotted key names by its
// toml tags, or the zero Value.
func fieldOf(v reflect.Value, key string) reflect.Value {
	for _, name := range strings.Split(key, ".") {
		if v.Kind() != reflect.Struct || name == "" {
			return reflect.Value{}
		}
		t := v.Type()
		found := false
		for i := range t.NumField() {
			if tomlName(t.Field(i)) == name {
				v, found = v.Field(i), true
				break
			}
		}
		if !found {
			return reflect.Value{}
		}
	}
	return v
}

// tomlName is the key of a struct field ("" for none).
func tomlName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
	if name == "-" || !f.IsExported() {
		return ""
	}
	if name == "" {
		return f.Name
	}
	return name
}
