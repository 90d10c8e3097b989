package detect

import (
	"strings"
	"testing"
	"time"
)

// scanEra scans lines (UTC, the year of year-less stamps from
// 2026-11-24) and returns every record, flushed.
func scanEra(t *testing.T, lines ...string) []Record {
	t.Helper()
	s := Scanner{Header: HeaderParser{Loc: time.UTC}}
	s.SetRef(time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC))
	var got []Record
	emit := func(r *Record) { got = append(got, *r) }
	for i, l := range lines {
		s.Line("f", int64(i+1), l, emit)
	}
	s.Flush(emit)
	return got
}

// TestErasHeaders: the headers of public corpora that were missed, each
// read with its time, host, program and pid.
func TestErasHeaders(t *testing.T) {
	const msg = "Failed password for root from 198.51.100.1 port 22 ssh2"
	tests := []struct {
		line, time, host string
		pid              int
	}{
		{"<35>1 2020-01-03T11:57:14-05:00 host sshd 86784 - - " + msg, "2020-01-03T11:57:14-05:00", "host", 86784},
		{"<35>1 2020-01-03T11:57:14 -05:00 host sshd 86784 - - " + msg, "2020-01-03T11:57:14-05:00", "host", 86784},
		{"<35>1 2020-01-03T11:57:14.123456Z - sshd - - - " + msg, "2020-01-03T11:57:14.123456Z", "", 0},
		{`<35>1 2020-01-03T11:57:14Z host sshd 7 ID47 [a b="]\"x"][c d="e"] ` + msg, "2020-01-03T11:57:14Z", "host", 7},
		{"<35>1 2020-01-03T11:57:14Z host /usr/sbin/sshd 7 - - \ufeff" + msg, "2020-01-03T11:57:14Z", "host", 7},
		{"Nov 20 11:57:20 host sshd[90001] " + msg, "2026-11-20T11:57:20Z", "host", 90001},
		{"Nov 20 11:57:20 host sshd-session[90001] " + msg, "2026-11-20T11:57:20Z", "host", 90001},
		{"2026-11-20T11:57:20.5+01:00 host sshd[90001] " + msg, "2026-11-20T11:57:20.5+01:00", "host", 90001},
		{"2026-11-20 11:57:22.123456789 " + msg, "2026-11-20T11:57:22.123456789Z", "", 0},
		{"2026-11-20 11:57:22.123456789 +0100 CET " + msg, "2026-11-20T11:57:22.123456789+01:00", "", 0},
		{"2026-11-20 11:57:22.123456789 -05:00 " + msg, "2026-11-20T11:57:22.123456789-05:00", "", 0},
	}
	for _, tt := range tests {
		got := scanEra(t, tt.line)
		if len(got) != 1 {
			t.Errorf("%q: %d records", tt.line, len(got))
			continue
		}
		r := got[0]
		if r.Time.Format(time.RFC3339Nano) != tt.time || r.Host != tt.host || r.PID != tt.pid ||
			r.Client() != "198.51.100.1" || r.Reason != "failed_password" || r.Counted != 1 {
			t.Errorf("%q: time %s host %q pid %d client %q %s counted %d", tt.line, r.Time.Format(time.RFC3339Nano), r.Host, r.PID, r.Client(), r.Reason, r.Counted)
		}
		if tt.host != "" && r.Program == "" {
			t.Errorf("%q: no program", tt.line)
		}
	}
}

// TestBareTagOnlySSHD: a tag without its colon is taken only for an sshd
// program with a pid; another program's line stays another program's.
func TestBareTagOnlySSHD(t *testing.T) {
	for _, line := range []string{
		"Nov 20 11:57:20 host cron[12] Failed password for root from 198.51.100.1 port 22 ssh2",
		"Nov 20 11:57:20 host sshd[x] Failed password for root from 198.51.100.1 port 22 ssh2",
	} {
		for _, r := range scanEra(t, line) {
			if r.PID != 0 || r.Program == "cron" {
				t.Errorf("%q: program %q pid %d", line, r.Program, r.PID)
			}
		}
	}
}

// TestErasCounts: the per-address counts of the sample of older and
// reduced logs are what the unreduced logs of one sshd would give, and
// no host name is a client.
func TestErasCounts(t *testing.T) {
	s := Scanner{Header: HeaderParser{Loc: time.UTC}}
	got := map[string]int{}
	emit := func(r *Record) {
		if r.Kind == KindFailure {
			c := r.Client()
			if r.ClientHost != "" {
				c = "host:" + c
			}
			got[c] += r.Counted
		}
	}
	scanFile(t, &s, "../../testdata/samples/openssh-eras.log", time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC), emit)
	s.Flush(emit)
	want := map[string]int{
		"198.51.100.101": 2, // RFC 5424
		"198.51.100.102": 1, // RFC 5424 with structured data: Invalid user, then its Failed line
		"198.51.100.103": 1, // RFC 5424 with the offset apart
		"198.51.100.104": 1, // sshd[PID] without the colon: the closing line joins its connection
		"198.51.100.105": 2, // headerless, nanosecond stamps
		"198.51.100.106": 1, // error: PAM: Authentication error, then its Failed line
		"198.51.100.107": 1, // error: PAM: User not known, then its Failed line
		"198.51.100.108": 1, // a lone Invalid user (no port)
		"198.51.100.109": 2, // Invalid user (no port) + its Failed line is one guess; a second Failed
		"198.51.100.110": 6, // one Failed line and "message repeated 5 times"; PAM's tally agrees
		"198.51.100.111": 2, // pam_unix with rhost=<name>: the connection's address
		"198.51.100.112": 4, // one Failed line seen, PAM's tally says 4
		"198.51.100.114": 1, // error: PAM: ... from <name>: the connection's address
		"198.51.100.115": 1, // Invalid user, pam_unix with rhost=<name>, its Failed line: one guess
		"198.51.100.116": 6, // a public server's connection: pam_unix, Failed, repeated 5 times, PAM 5 more (rhost=<name>)
	}
	for c, n := range got {
		if want[c] != n {
			t.Errorf("%s: %d attempts, want %d", c, n, want[c])
		}
	}
	for c, n := range want {
		if _, ok := got[c]; !ok {
			t.Errorf("%s: missing, want %d", c, n)
		}
	}
}

// TestPAMHostNameNeverClient: a host name in rhost= (UseDNS) is no
// client; with no line naming the connection's address, the record has
// none, and nothing counts for a name.
func TestPAMHostNameNeverClient(t *testing.T) {
	for _, lines := range [][]string{
		{"Nov 20 11:58:12 old sshd[4105]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=9.9.9.9.example.net  user=root"},
		{"Nov 20 11:58:12 old sshd[4105]: PAM 2 more authentication failures; logname= uid=0 euid=0 tty=ssh ruser= rhost=scan.example.net  user=root"},
		{"Nov 20 11:58:12 old sshd[4105]: error: PAM: Authentication failure for root from scan.example.net"},
		{"Nov 20 11:58:12 old sshd[4105]: error: PAM: Authentication failure for illegal user x from 9.9.9.9 from scan.example.net"},
	} {
		for _, r := range scanEra(t, lines...) {
			if r.Client() != "" {
				t.Errorf("%q: client %q", lines, r.Client())
			}
		}
	}
	// The connection's address, when a line names it, before or after.
	for _, tt := range []struct {
		lines []string
		want  int
	}{
		{[]string{"Nov 20 11:58:12 old sshd[4105]: Failed password for root from 198.51.100.111 port 1004 ssh2",
			"Nov 20 11:58:15 old sshd[4105]: PAM 1 more authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=scan.example.net  user=root"}, 2},
		{[]string{"Nov 20 11:58:12 old sshd[4105]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=scan.example.net  user=root",
			"Nov 20 11:58:12 old sshd[4105]: Failed password for root from 198.51.100.111 port 1004 ssh2"}, 1},
	} {
		n := 0
		for _, r := range scanEra(t, tt.lines...) {
			if r.Client() != "198.51.100.111" {
				t.Errorf("%q: client %q", tt.lines, r.Client())
			}
			n += r.Counted
		}
		if n != tt.want {
			t.Errorf("%q: %d attempts, want %d", tt.lines, n, tt.want)
		}
	}
}

// TestPAMTally: "PAM n more authentication failures" counts what its
// connection's lines did not, bounded.
func TestPAMTally(t *testing.T) {
	const failed = "Nov 20 11:58:20 old sshd[4106]: Failed password for root from 198.51.100.112 port 1005 ssh2"
	tally := func(n string) string {
		return "Nov 20 11:58:30 old sshd[4106]: PAM " + n + " more authentication failures; logname= uid=0 euid=0 tty=ssh ruser= rhost=198.51.100.112  user=root"
	}
	for _, tt := range []struct {
		lines []string
		want  int
	}{
		{[]string{failed, failed, failed, tally("2")}, 3},
		{[]string{failed, tally("2")}, 3},
		{[]string{tally("2")}, 3},
		{[]string{failed, failed, failed, failed, tally("2")}, 4}, // never takes back
		{[]string{failed, tally("99999999")}, MaxRepeat + 1},
		{[]string{strings.Replace(tally("5"), "[4106]", "", 1)}, 1}, // no pid: no connection to compare with
	} {
		n := 0
		for _, r := range scanEra(t, tt.lines...) {
			n += r.Counted
		}
		if n != tt.want {
			t.Errorf("%q: %d attempts, want %d", tt.lines, n, tt.want)
		}
	}
}

// TestInvalidFlag: Event.Invalid is set for the lines where sshd says the
// user does not exist, and only those.
func TestInvalidFlag(t *testing.T) {
	for _, tt := range []struct {
		msg     string
		invalid bool
	}{
		{"Invalid user bob from 198.51.100.1 port 22", true},
		{"Invalid user bob from 198.51.100.1", true},
		{"Illegal user bob from 198.51.100.1", true},
		{"Failed password for invalid user bob from 198.51.100.1 port 22 ssh2", true},
		{"Failed password for illegal user bob from 198.51.100.1 port 22 ssh2", true},
		{"Failed password for bob from 198.51.100.1 port 22 ssh2", false},
		{"Failed password for invalid from 198.51.100.1 port 22 ssh2", false},
		{"error: PAM: Authentication error for illegal user bob from 198.51.100.1", true},
		{"error: PAM: Authentication error for bob from 198.51.100.1", false},
		{"error: PAM: User not known to the underlying authentication module for illegal user bob from 198.51.100.1", true},
		{"Connection closed by invalid user bob 198.51.100.1 port 22 [preauth]", true},
		{"Connection closed by authenticating user bob 198.51.100.1 port 22 [preauth]", false},
		{"Disconnected from invalid user bob 198.51.100.1 port 22 [preauth]", true},
		{"error: maximum authentication attempts exceeded for invalid user bob from 198.51.100.1 port 22 ssh2 [preauth]", true},
		{"Disconnecting invalid user bob 198.51.100.1 port 22: Too many authentication failures [preauth]", true},
		{"ssh_dispatch_run_fatal: Connection from invalid user bob 198.51.100.1 port 22: Broken pipe [preauth]", true},
		{"message repeated 2 times: [ Failed password for invalid user bob from 198.51.100.1 port 22 ssh2]", true},
		{"pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=198.51.100.1  user=bob", false},
	} {
		e, ok := parseOne(t, "Nov 20 11:58:12 h sshd[1]: "+tt.msg)
		if !ok || e.Invalid != tt.invalid {
			t.Errorf("%q: ok %v invalid %v", tt.msg, ok, e.Invalid)
		}
	}
}

// TestRepeatedMessage: rsyslog's reduction counts N more of the line,
// bounded, only behind sshd's tag; what a client writes cannot make one.
func TestRepeatedMessage(t *testing.T) {
	const head = "Nov 20 11:58:04 old sshd[4104]: "
	const failed = "Failed password for root from 198.51.100.110 port 1003 ssh2"
	long := strings.Repeat("a", 800-len(" Failed password for  from 9.9.9.9 port 22 ssh2"))
	for _, tt := range []struct {
		name   string
		lines  []string
		client string // of every record with an address
		want   int    // attempts counted
	}{
		{"five more", []string{head + failed, head + "message repeated 5 times: [ " + failed + "]"}, "198.51.100.110", 6},
		{"alone", []string{head + "message repeated 5 times: [ " + failed + "]"}, "198.51.100.110", 5},
		{"bounded", []string{head + "message repeated 999999999 times: [ " + failed + "]"}, "198.51.100.110", MaxRepeat},
		{"too many digits", []string{head + "message repeated 9999999999 times: [ " + failed + "]"}, "", 0},
		{"zero", []string{head + "message repeated 0 times: [ " + failed + "]"}, "", 0},
		{"negative", []string{head + "message repeated -5 times: [ " + failed + "]"}, "", 0},
		{"after Invalid user", []string{head + "Invalid user bob from 198.51.100.110 port 1003",
			head + "Failed password for invalid user bob from 198.51.100.110 port 1003 ssh2",
			head + "message repeated 2 times: [ Failed password for invalid user bob from 198.51.100.110 port 1003 ssh2]"}, "198.51.100.110", 3},
		{"summary repeated", []string{head + failed,
			head + "message repeated 3 times: [ Connection closed by authenticating user root 198.51.100.110 port 1003 [preauth]]"}, "198.51.100.110", 1},
		{"another program's tag", []string{"Nov 20 11:58:04 old cron[4104]: message repeated 5 times: [ " + failed + "]"}, "", 0},
		{"no tag", []string{"Nov 20 11:58:04 old message repeated 5 times: [ " + failed + "]"}, "", 0},
		{"bare", []string{"message repeated 5 times: [ " + failed + "]"}, "", 0},
		{"in a user name", []string{head + "Invalid user message repeated 999 times: [ Failed password for root from 9.9.9.9 port 22 ssh2] from 198.51.100.110 port 1003"}, "198.51.100.110", 1},
		{"user name with an address", []string{head + "message repeated 3 times: [ Failed password for x from 9.9.9.9 port 1 ssh2 from 198.51.100.110 port 1003 ssh2]"}, "198.51.100.110", 3},
		{"cut by rsyslog", []string{head + "message repeated 3 times: [ Failed password for " + long + " from 9.9.9.9 port 22 ssh2]"}, "", 0},
		{"nested", []string{head + "message repeated 3 times: [ message repeated 3 times: [ " + failed + "]]"}, "", 0},
	} {
		n := 0
		for _, r := range scanEra(t, tt.lines...) {
			if c := r.Client(); c != "" && c != tt.client {
				t.Errorf("%s: client %q, want %q", tt.name, c, tt.client)
			}
			n += r.Counted
		}
		if n != tt.want {
			t.Errorf("%s: %d attempts, want %d", tt.name, n, tt.want)
		}
	}
}
