package detect

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// scanLines runs a Scanner over lines and returns the records.
func scanLines(t testing.TB, s *Scanner, lines string) []Record {
	t.Helper()
	var out []Record
	emit := func(r *Record) { out = append(out, *r) }
	for i, l := range strings.Split(strings.TrimSpace(lines), "\n") {
		s.Line("t", int64(i+1), strings.TrimSpace(l), emit)
	}
	s.Flush(emit)
	return out
}

// counted is what recs count of kind k for ip: probes less those a
// failure took back.
func counted(recs []Record, k Kind, ip string) int {
	n := 0
	for _, r := range recs {
		if r.Kind == k && r.Client() == ip {
			n += r.Counted
		}
		if k == KindProbe && r.TakesBackProbe && r.Client() == ip {
			n--
		}
	}
	return n
}

func TestAttemptsNotLines(t *testing.T) {
	tests := []struct {
		name             string
		log              string
		ip               string
		failures, probes int
	}{
		{"three guesses, valid user, nine lines", `
			h sshd[10]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=192.0.2.1  user=root
			h sshd[10]: Failed password for root from 192.0.2.1 port 5 ssh2
			h sshd[10]: Failed password for root from 192.0.2.1 port 5 ssh2
			h sshd[10]: Failed password for root from 192.0.2.1 port 5 ssh2
			h sshd[10]: error: maximum authentication attempts exceeded for root from 192.0.2.1 port 5 ssh2 [preauth]
			h sshd[10]: Disconnecting authenticating user root 192.0.2.1 port 5: Too many authentication failures [preauth]
			h sshd[10]: PAM 2 more authentication failures; logname= uid=0 euid=0 tty=ssh ruser= rhost=192.0.2.1  user=root
			h sshd[10]: PAM service(sshd) ignoring max retries; 3 > 3`, "192.0.2.1", 3, 0},
		{"one guess, invalid user, five lines", `
			h sshd[11]: Invalid user admin from 192.0.2.2 port 6
			h sshd[11]: pam_unix(sshd:auth): check pass; user unknown
			h sshd[11]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=192.0.2.2
			h sshd[11]: Failed password for invalid user admin from 192.0.2.2 port 6 ssh2
			h sshd[11]: Connection closed by invalid user admin 192.0.2.2 port 6 [preauth]`, "192.0.2.2", 1, 0},
		{"pam logs every guess", `
			h sshd[12]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=192.0.2.3  user=root
			h sshd[12]: Failed password for root from 192.0.2.3 port 7 ssh2
			h sshd[12]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=192.0.2.3  user=root
			h sshd[12]: Failed password for root from 192.0.2.3 port 7 ssh2`, "192.0.2.3", 2, 0},
		{"user enumeration: invalid user and close", `
			h sshd[13]: Invalid user oracle from 192.0.2.4 port 8
			h sshd[13]: Connection closed by invalid user oracle 192.0.2.4 port 8 [preauth]`, "192.0.2.4", 1, 0},
		{"keys only, closed while authenticating", `
			h sshd[14]: Connection closed by authenticating user root 192.0.2.5 port 9 [preauth]`, "192.0.2.5", 1, 0},
		{"kex error borrows the next line's address", `
			h sshd[15]: error: kex_exchange_identification: Connection closed by remote host
			h sshd[15]: Connection closed by 192.0.2.6 port 10`, "192.0.2.6", 0, 1},
		{"scanner: received disconnect and disconnected", `
			h sshd[16]: Received disconnect from 192.0.2.7 port 11:11: Bye Bye [preauth]
			h sshd[16]: Disconnected from 192.0.2.7 port 11 [preauth]`, "192.0.2.7", 0, 1},
		{"too many failures without address", `
			h sshd[17]: Failed publickey for root from 192.0.2.8 port 12 ssh2: RSA SHA256:abc
			h sshd[17]: Disconnecting: Too many authentication failures for root [preauth]`, "192.0.2.8", 1, 0},
		{"spoofed user name counts for the real client", `
			h sshd[18]: Invalid user x from 10.9.9.9 port 22 from 192.0.2.9 port 41536
			h sshd[18]: Failed password for invalid user x from 10.9.9.9 port 22 from 192.0.2.9 port 41536 ssh2
			h sshd[18]: Connection closed by invalid user x from 10.9.9.9 port 22 192.0.2.9 port 41536 [preauth]`, "192.0.2.9", 1, 0},
		{"penalty drops from the listener each count", `
			h sshd[1]: drop connection #0 from [192.0.2.10]:1 on [192.0.2.254]:22 penalty: failed authentication
			h sshd[1]: drop connection #1 from [192.0.2.10]:2 on [192.0.2.254]:22 penalty: failed authentication`, "192.0.2.10", 0, 2},
		{"closing lines after a login are not probes", `
			h sshd[19]: Accepted password for alice from 192.0.2.11 port 13 ssh2
			h sshd[19]: Connection closed by 192.0.2.11 port 13`, "192.0.2.11", 0, 0},
		{"pid reused by another client", `
			h sshd[20]: Failed password for root from 192.0.2.12 port 14 ssh2
			h sshd[20]: Connection closed by authenticating user root 192.0.2.12 port 14 [preauth]
			h sshd[20]: Invalid user a from 192.0.2.13 port 15
			h sshd[20]: Connection closed by invalid user a 192.0.2.13 port 15 [preauth]`, "192.0.2.13", 1, 0},
		{"pid reused by the same client", `
			h sshd[21]: Failed password for root from 192.0.2.14 port 14 ssh2
			h sshd[21]: Connection closed by authenticating user root 192.0.2.14 port 14 [preauth]
			h sshd[21]: Invalid user a from 192.0.2.14 port 15
			h sshd[21]: Connection closed by invalid user a 192.0.2.14 port 15 [preauth]`, "192.0.2.14", 2, 0},
		{"a key refused, then closed while authenticating: a failure, not a probe too (OpenSSH 9.2)", `
			Dec  5 11:16:04 vm sshd[1761]: Received disconnect from 10.77.0.6 port 60773:11: Bye Bye [preauth]
			Dec  5 11:16:04 vm sshd[1761]: Disconnected from authenticating user root 10.77.0.6 port 60773 [preauth]`, "10.77.0.6", 1, 0},
		{"a probe after the failure is not counted", `
			h sshd[23]: Failed password for root from 192.0.2.16 port 16 ssh2
			h sshd[23]: Received disconnect from 192.0.2.16 port 16:11: Bye Bye [preauth]
			h sshd[23]: Disconnected from authenticating user root 192.0.2.16 port 16 [preauth]`, "192.0.2.16", 1, 0},
		{"sshd-auth's and sshd-session's lines of one pid are one connection", `
			h sshd-auth[24]: Received disconnect from 192.0.2.17 port 17:11: Bye Bye [preauth]
			h sshd-session[24]: Disconnected from authenticating user root 192.0.2.17 port 17 [preauth]`, "192.0.2.17", 1, 0},
		{"other hosts with the same pid are other connections", `
			h1 sshd[22]: Invalid user a from 192.0.2.15 port 14
			h2 sshd[22]: Invalid user b from 192.0.2.15 port 15`, "192.0.2.15", 2, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s Scanner
			recs := scanLines(t, &s, tt.log)
			if got := counted(recs, KindFailure, tt.ip); got != tt.failures {
				t.Errorf("failures = %d, want %d", got, tt.failures)
			}
			if got := counted(recs, KindProbe, tt.ip); got != tt.probes {
				t.Errorf("probes = %d, want %d", got, tt.probes)
			}
			for _, r := range recs {
				if (r.Kind == KindFailure || r.Kind == KindProbe) && r.Client() == "" {
					t.Errorf("line %d (%s) has no address", r.Line, r.Reason)
				}
			}
		})
	}
}

func TestHeldRecordsKeepOrder(t *testing.T) {
	var s Scanner
	recs := scanLines(t, &s, `
		h sshd[1]: error: kex_exchange_identification: banner line contains invalid characters
		h sshd[2]: Invalid user a from 192.0.2.1 port 1
		h sshd[1]: banner exchange: Connection from 192.0.2.2 port 2: invalid format
		h sshd[3]: error: kex_exchange_identification: Connection closed by remote host`)
	var got []string
	for _, r := range recs {
		got = append(got, fmt.Sprintf("%d:%s", r.Line, r.Client()))
	}
	want := "1:192.0.2.2 2:192.0.2.1 3:192.0.2.2 4:"
	if strings.Join(got, " ") != want {
		t.Fatalf("records = %v, want %s", got, want)
	}
}

func TestHoldIsBounded(t *testing.T) {
	s := Scanner{Corr: Correlator{HoldLines: 10}}
	var n int
	emit := func(*Record) { n++ }
	s.Line("t", 1, "h sshd[1]: error: kex_exchange_identification: read: Connection reset by peer", emit)
	for i := 2; i <= 20; i++ {
		s.Line("t", int64(i), fmt.Sprintf("h sshd[%d]: Invalid user a from 192.0.2.1 port 1", 100+i), emit)
	}
	if s.Corr.Pending() > 10 {
		t.Fatalf("%d records held, want at most 10", s.Corr.Pending())
	}
	if n < 10 {
		t.Fatalf("only %d records emitted while one waited", n)
	}
}

func TestConnectionsBounded(t *testing.T) {
	s := Scanner{Corr: Correlator{MaxConns: 1000}}
	emit := func(*Record) {}
	for i := 0; i < 100000; i++ {
		s.Line("t", int64(i), fmt.Sprintf("h sshd[%d]: Invalid user a from 192.0.2.1 port 1", i+1), emit)
	}
	if n := len(s.Corr.conns) + len(s.Corr.old); n > 1000 {
		t.Fatalf("%d connections remembered, bound is 1000", n)
	}
}

func TestYearInference(t *testing.T) {
	tests := []struct {
		ref, stamp string
		want       string
	}{
		{"2027-01-05T10:00:00Z", "Dec 30 23:59:59", "2026-12-30T23:59:59Z"},
		{"2026-11-24T10:00:00Z", "Nov 24 09:00:00", "2026-11-24T09:00:00Z"},
		{"2026-11-24T10:00:00Z", "Nov 25 09:00:00", "2026-11-25T09:00:00Z"}, // clock skew under a day
		{"2026-11-24T10:00:00Z", "Nov 27 09:00:00", "2025-11-27T09:00:00Z"},
		{"2026-11-24T10:00:00Z", "Jan  2 03:04:05", "2026-01-02T03:04:05Z"},
	}
	for _, tt := range tests {
		ref, _ := time.Parse(time.RFC3339, tt.ref)
		p := HeaderParser{Ref: ref, Loc: time.UTC}
		h, ok := p.Parse(tt.stamp + " h sshd[1]: Invalid user a from 192.0.2.1")
		if !ok || h.Time.Format(time.RFC3339) != tt.want {
			t.Errorf("ref %s, %q: got %v (ok=%v), want %s", tt.ref, tt.stamp, h.Time, ok, tt.want)
		}
	}
}

func TestYearFollowsTheClock(t *testing.T) {
	now := time.Date(2026, 12, 31, 23, 59, 0, 0, time.UTC)
	p := HeaderParser{Loc: time.UTC, Now: func() time.Time { return now }}
	h, _ := p.Parse("Dec 31 23:58:59 h sshd[1]: Invalid user a from 192.0.2.1")
	now = time.Date(2027, 1, 1, 0, 1, 0, 0, time.UTC)
	h2, _ := p.Parse("Jan  1 00:00:59 h sshd[1]: Invalid user a from 192.0.2.1")
	if h.Time.Year() != 2026 || h2.Time.Year() != 2027 {
		t.Fatalf("years %d and %d, want 2026 and 2027", h.Time.Year(), h2.Time.Year())
	}
}

func TestTimestampFormats(t *testing.T) {
	want := time.Date(2026, 11, 23, 20, 14, 49, 561999000, time.UTC)
	for _, line := range []string{
		"2026-11-23T20:14:49.561999+00:00 h sshd[1]: Invalid user a from 192.0.2.1",
		"2026-11-23T21:14:49.561999+01:00 h sshd[1]: Invalid user a from 192.0.2.1",
		"2026-11-23T15:14:49.561999-0500 h sshd[1]: Invalid user a from 192.0.2.1",
		"2026-11-23T20:14:49.561999Z h sshd[1]: Invalid user a from 192.0.2.1",
		"<38>1 2026-11-23T20:14:49.561999Z h sshd 1 - - Invalid user a from 192.0.2.1",
		`{"__REALTIME_TIMESTAMP":"1795464889561999","SYSLOG_IDENTIFIER":"sshd","_COMM":"sshd","_UID":"0","_PID":"1","_HOSTNAME":"h","MESSAGE":"Invalid user a from 192.0.2.1"}`,
	} {
		p := HeaderParser{Loc: time.UTC}
		h, ok := p.Parse(line)
		if !ok || !h.Time.Equal(want) || h.Host != "h" || h.PID != 1 {
			t.Errorf("%q: time %v host %q pid %d ok %v", line, h.Time, h.Host, h.PID, ok)
		}
	}
}
