package detect

import (
	"testing"
	"time"
)

// TestHeaderFormats: the headers written in the wild before an sshd
// message (syslog daemons, busybox, socklog, every journalctl output mode,
// collectors, container runtimes) each give the event, with the right
// client, and the time, host and pid where the header has them.
func TestHeaderFormats(t *testing.T) {
	ref := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	at := func(mon time.Month, d, hh, mm, ss, ns int) time.Time {
		return time.Date(2026, mon, d, hh, mm, ss, ns, time.UTC)
	}
	const msg = "Failed password for root from 203.0.113.2 port 40002 ssh2"
	tests := []struct {
		name, line string
		time       time.Time // zero: none
		host       string
		pid        int
	}{
		{"unpadded day", "Nov 3 07:01:02 web1 sshd[2102]: " + msg, at(11, 3, 7, 1, 2, 0), "web1", 2102},
		{"busybox facility.level", "Nov 28 07:01:02 web1 auth.info sshd[2103]: " + msg, at(11, 28, 7, 1, 2, 0), "web1", 2103},
		{"space-separated ISO", "2026-11-28 07:01:02 web1 sshd[2111]: " + msg, at(11, 28, 7, 1, 2, 0), "web1", 2111},
		{"space-separated ISO with fraction", "2026-11-28 07:01:02.250 web1 sshd[2111]: " + msg, at(11, 28, 7, 1, 2, 250e6), "web1", 2111},
		{"socklog with tag", "2026-11-28_07:01:02.25000 auth.info: sshd[2112]: " + msg, at(11, 28, 7, 1, 2, 250e6), "", 2112},
		{"socklog bare", "2026-11-28_07:01:02.25000 auth.info: " + msg, at(11, 28, 7, 1, 2, 250e6), "", 0},
		{"journalctl short", "Nov 28 07:01:02 web1 sshd[2113]: " + msg, at(11, 28, 7, 1, 2, 0), "web1", 2113},
		{"journalctl short-precise", "Nov 28 07:01:02.123456 web1 sshd[2114]: " + msg, at(11, 28, 7, 1, 2, 123456000), "web1", 2114},
		{"journalctl short-iso", "2026-11-28T07:01:02+0000 web1 sshd[2115]: " + msg, at(11, 28, 7, 1, 2, 0), "web1", 2115},
		{"journalctl short-iso-precise", "2026-11-28T07:01:02.123456+0000 web1 sshd[2116]: " + msg, at(11, 28, 7, 1, 2, 123456000), "web1", 2116},
		{"journalctl short-full", "Sat 2026-11-28 07:01:02 UTC web1 sshd[2117]: " + msg, at(11, 28, 7, 1, 2, 0), "web1", 2117},
		{"journalctl short-unix", "1795849262.123456 web1 sshd[2118]: " + msg, time.Unix(1795849262, 123456000).UTC(), "web1", 2118},
		{"journalctl cat", msg, time.Time{}, "", 0},
		{"PRI before RFC 3164", "<38>Nov 28 07:01:02 web1 sshd[2119]: " + msg, at(11, 28, 7, 1, 2, 0), "web1", 2119},
		{"PRI, unpadded day", "<38>Nov 3 07:01:02 web1 sshd[2120]: " + msg, at(11, 3, 7, 1, 2, 0), "web1", 2120},
		{"RFC 5424, address as host", "<38>1 2026-11-28T07:01:02Z 192.0.2.5 sshd 2121 - - " + msg, at(11, 28, 7, 1, 2, 0), "192.0.2.5", 2121},
		{"RFC 5424, dotted host", "<38>1 2026-11-28T07:01:02Z web1.example.org sshd 2122 - - " + msg, at(11, 28, 7, 1, 2, 0), "web1.example.org", 2122},
		{"dotted host", "Nov 28 07:01:02 web1.example.org sshd[2123]: " + msg, at(11, 28, 7, 1, 2, 0), "web1.example.org", 2123},
		{"IPv6 address as host", "Nov 28 07:01:02 2001:db8::5 sshd[2124]: " + msg, at(11, 28, 7, 1, 2, 0), "2001:db8::5", 2124},
		{"container runtime (CRI)", "2026-11-28T07:01:02.123456789Z stderr F " + msg, at(11, 28, 7, 1, 2, 123456789), "", 0},
		{"no pid", "Nov 28 07:01:02 web1 sshd: " + msg, at(11, 28, 7, 1, 2, 0), "web1", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Scanner{Header: HeaderParser{Loc: time.UTC, Ref: ref}}
			var got []Record
			s.Line("f", 1, tt.line, func(r *Record) { got = append(got, *r) })
			s.Flush(func(r *Record) { got = append(got, *r) })
			if len(got) != 1 {
				t.Fatalf("%d records", len(got))
			}
			r := got[0]
			if r.Client() != "203.0.113.2" || r.Reason != "failed_password" || !r.Time.Equal(tt.time) || r.Host != tt.host || r.PID != tt.pid {
				t.Fatalf("client %q reason %s time %v host %q pid %d", r.Client(), r.Reason, r.Time, r.Host, r.PID)
			}
		})
	}
}

// TestUnknownHeaders: behind a header no parser knows, sshd's tag or
// message is still found (the time is the file's: the previous line's);
// another program's line quoting sshd gives nothing, and a line naming
// sshd that gives no event is reported as such.
func TestUnknownHeaders(t *testing.T) {
	lines := []struct {
		line, ip string
		pid      int
	}{
		{"Nov 28 07:01:02 web1 sshd[1]: Connection from 192.0.2.9 port 1 on 192.0.2.1 port 22", "192.0.2.9", 1},
		{"[2026/11/28 07:01:02] myhost sshd[4000]: Failed password for root from 203.0.113.30 port 1 ssh2", "203.0.113.30", 4000},
		{"[2026/11/28 07:01:02] INFO Failed password for root from 203.0.113.31 port 1 ssh2", "203.0.113.31", 0},
		{"[2026/11/28 07:01:02] cron[12]: sshd[1]: Failed password for root from 10.9.9.9 port 1 ssh2", "", 0},
		{"app: user said Failed password for root from 10.9.9.8 port 22 ssh2", "", 0},
		{"2026-11-28 07:01:02,123 web login handler: Failed password for root from 10.9.9.7 port 22 ssh2", "", 0},
	}
	s := Scanner{Header: HeaderParser{Loc: time.UTC, Ref: time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)}}
	var unrecognised []string
	s.OnUnrecognised = func(_ string, _ int64, text, reason string) { unrecognised = append(unrecognised, reason) }
	for i, l := range lines {
		var got []Record
		s.Line("f", int64(i+1), l.line, func(r *Record) { got = append(got, *r) })
		switch {
		case l.ip == "" && len(got) != 0:
			t.Errorf("%q: %+v", l.line, got)
		case l.ip != "" && (len(got) != 1 || got[0].Client() != l.ip || got[0].PID != l.pid || got[0].Time.IsZero()):
			t.Errorf("%q: %+v", l.line, got)
		}
	}
	s.Line("f", 9, "<<odd>> sshd[7]: a message no sshd writes", func(*Record) {})
	if len(unrecognised) != 1 || unrecognised[0] != string(UnknownShape) {
		t.Errorf("unrecognised %v", unrecognised)
	}
}
