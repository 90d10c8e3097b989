package detect

import (
	"strings"
	"testing"
)

// TestOlderOpenSSH: message variants of OpenSSH 6.x and 7.x, still on
// long-term-support systems, give their events with the client's
// address (never the server's own, which some of them name too).
func TestOlderOpenSSH(t *testing.T) {
	tests := []struct {
		msg          string
		kind         Kind
		reason, ip   string
		user         string
		counted      int
		needsContext bool
	}{
		{"Did not receive identification string from 198.51.100.1", KindProbe, "no_identification", "198.51.100.1", "", 1, false},
		{"Bad protocol version identification 'SSH-1.0-x' from 198.51.100.2 port 4000", KindProbe, "bad_protocol_version", "198.51.100.2", "", 1, false},
		{"Bad protocol version identification 'GET / HTTP/1.1' from 198.51.100.3", KindProbe, "bad_protocol_version", "198.51.100.3", "", 1, false},
		{"Received disconnect from 198.51.100.4: 3: com.jcraft.jsch.JSchException: Auth fail [preauth]", KindFailure, "auth_fail_disconnect", "198.51.100.4", "", 1, false},
		{"Received disconnect from 198.51.100.14: 11: Bye Bye [preauth]", KindProbe, "received_disconnect_preauth", "198.51.100.14", "", 1, false},
		{"Timeout before authentication for connection from 198.51.100.5 to 203.0.113.1, pid = 4242", KindProbe, "auth_timeout", "198.51.100.5", "", 1, false},
		{"error: PAM: authentication failure for root from 198.51.100.6 via 203.0.113.1", KindFailure, "pam_auth_failure", "198.51.100.6", "root", 1, false},
		{"error: PAM: Authentication failure for illegal user admin from 198.51.100.7 via 203.0.113.1", KindFailure, "pam_auth_failure", "198.51.100.7", "admin", 1, false},
		{"error: PAM: User not known to the underlying authentication module for illegal user guest from 198.51.100.8", KindFailure, "pam_user_unknown", "198.51.100.8", "guest", 1, false},
		{"Failed password for root from 198.51.100.9 port 22 ssh1", KindFailure, "failed_password", "198.51.100.9", "root", 1, false},
		{"Bad protocol version identification GET / HTTP/1.1 from 198.51.100.10", KindProbe, "bad_protocol_version", "198.51.100.10", "", 1, false},
		{"error: PAM: Authentication error for illegal user ftp from 198.51.100.11", KindFailure, "pam_error", "198.51.100.11", "ftp", 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.msg, func(t *testing.T) {
			var s Scanner
			var got []Record
			s.Line("f", 1, "Nov 28 07:01:02 old sshd[3000]: "+tt.msg, func(r *Record) { got = append(got, *r) })
			s.Flush(func(r *Record) { got = append(got, *r) })
			if len(got) != 1 {
				t.Fatalf("%d records", len(got))
			}
			r := got[0]
			if r.Kind != tt.kind || r.Reason != tt.reason || r.Client() != tt.ip || r.User != tt.user || r.Counted != tt.counted {
				t.Fatalf("%s %s ip %q user %q counted %d", r.Kind, r.Reason, r.Client(), r.User, r.Counted)
			}
		})
	}
}

// TestAddresslessFatal: fatal lines with no address end a probing
// connection; they are attributed through the connection's earlier line
// (VERBOSE's "Connection from", or a patched build's "SSH: Server;...").
func TestAddresslessFatal(t *testing.T) {
	for _, first := range []string{
		"Connection from 198.51.100.20 port 40000 on 203.0.113.1 port 22",
		"SSH: Server;Ltype: Version;Remote: 198.51.100.20-40000;Protocol: 2.0;Client: libssh_0.6.0",
	} {
		for _, fatal := range []string{
			"fatal: Read from socket failed: Connection reset by peer [preauth]",
			"fatal: Unable to negotiate a key exchange method [preauth]",
			"fatal: no matching mac found: client hmac-md5 server hmac-sha2-256 [preauth]",
			"fatal: no matching cipher found: client aes128-cbc server aes256-ctr [preauth]",
		} {
			var s Scanner
			var got []Record
			emit := func(r *Record) { got = append(got, *r) }
			s.Line("f", 1, "Nov 28 07:01:02 old sshd[3001]: "+first, emit)
			s.Line("f", 2, "Nov 28 07:01:02 old sshd[3001]: "+fatal, emit)
			s.Flush(emit)
			counted := 0
			for _, r := range got {
				if r.Kind == KindProbe && r.Client() == "198.51.100.20" {
					counted += r.Counted
				}
			}
			if counted != 1 {
				t.Errorf("%q after %q: %+v", fatal, first, got)
			}
		}
	}
}

// TestZoneKept: a link-local client's zone stays in its address (and in
// scan --json's ip): it says which link.
func TestZoneKept(t *testing.T) {
	e, ok := parseOne(t, "Nov 28 07:01:02 h sshd[1]: Failed password for root from fe80::1%eth0 port 22 ssh2")
	if !ok || e.Addr.String() != "fe80::1%eth0" {
		t.Fatalf("%v %v", e.Addr, ok)
	}
	var enc Encoder
	if out := string(enc.AppendJSON(nil, &e, "f", 1)); !strings.Contains(out, `"ip":"fe80::1%eth0"`) {
		t.Fatalf("json %s", out)
	}
}
