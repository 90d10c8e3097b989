package detect

import (
	"strings"
	"testing"
	"time"
)

// parseOne runs the header parser and the classifier on one line.
func parseOne(t testing.TB, line string) (Event, bool) {
	t.Helper()
	var s Scanner
	var e Event
	return e, s.parse(line, &e) == parsed
}

func TestClassifyShapes(t *testing.T) {
	tests := []struct {
		name, line       string
		kind             Kind
		reason, ip, user string
		port             int
		host             string // ClientHost when sshd logged a name
	}{
		// failures
		{"failed password", "Nov 23 20:14:49 web sshd[6699]: Failed password for root from 203.0.113.7 port 41536 ssh2",
			KindFailure, "failed_password", "203.0.113.7", "root", 41536, ""},
		{"failed password invalid user", "Nov 23 20:14:49 web sshd[6699]: Failed password for invalid user admin from 203.0.113.7 port 41536 ssh2",
			KindFailure, "failed_password", "203.0.113.7", "admin", 41536, ""},
		{"failed publickey with key", "Nov 23 20:14:49 web sshd[6699]: Failed publickey for git from 2001:db8::7 port 50022 ssh2: RSA SHA256:abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
			KindFailure, "failed_publickey", "2001:db8::7", "git", 50022, ""},
		{"failed kbd-int pam", "Nov 23 20:14:49 web sshd[6699]: Failed keyboard-interactive/pam for invalid user oracle from 198.51.100.2 port 6000 ssh2",
			KindFailure, "failed_keyboard_interactive", "198.51.100.2", "oracle", 6000, ""},
		{"failed none", "Nov 23 20:14:49 web sshd[6699]: Failed none for invalid user test from 198.51.100.2 port 6000 ssh2",
			KindFailure, "failed_none", "198.51.100.2", "test", 6000, ""},
		{"failed hostbased", "Nov 23 20:14:49 web sshd[6699]: Failed hostbased for bob from 198.51.100.2 port 6000 ssh2: ECDSA SHA256:xyz, client user \"bob\", client host \"h\"",
			KindFailure, "failed_hostbased", "198.51.100.2", "bob", 6000, ""},
		{"failed gssapi", "Nov 23 20:14:49 web sshd[6699]: Failed gssapi-with-mic for bob from 198.51.100.2 port 6000 ssh2",
			KindFailure, "failed_gssapi", "198.51.100.2", "bob", 6000, ""},
		{"failed unknown method", "Nov 23 20:14:49 web sshd[6699]: Failed unknown for bob from 198.51.100.2 port 6000 ssh2",
			KindFailure, "failed_other", "198.51.100.2", "bob", 6000, ""},
		{"failed password hostname", "Nov 23 20:14:49 web sshd[6699]: Failed password for root from scanner.example.net port 41536 ssh2",
			KindFailure, "failed_password", "", "root", 41536, "scanner.example.net"},
		{"failed password old no port", "Jan  3 01:02:03 web sshd[6699]: Failed password for root from 203.0.113.7 port 41536",
			KindFailure, "failed_password", "203.0.113.7", "root", 41536, ""},
		{"invalid user", "Nov 23 20:14:49 web sshd[6699]: Invalid user ubnt from 203.0.113.9 port 33111",
			KindFailure, "invalid_user", "203.0.113.9", "ubnt", 33111, ""},
		{"invalid user empty", "Nov 23 20:14:49 web sshd[6699]: Invalid user  from 203.0.113.9 port 33111",
			KindFailure, "invalid_user", "203.0.113.9", "", 33111, ""},
		{"invalid user old", "Nov 23 20:14:49 web sshd[6699]: Invalid user ubnt from 203.0.113.9",
			KindFailure, "invalid_user", "203.0.113.9", "ubnt", 0, ""},
		{"illegal user", "Nov 23 20:14:49 web sshd[6699]: Illegal user ubnt from 203.0.113.9",
			KindFailure, "invalid_user", "203.0.113.9", "ubnt", 0, ""},
		{"not allowed AllowUsers", "Nov 23 20:14:49 web sshd[6699]: User root from 203.0.113.9 not allowed because not listed in AllowUsers",
			KindFailure, "user_not_allowed", "203.0.113.9", "root", 0, ""},
		{"not allowed DenyUsers", "Nov 23 20:14:49 web sshd[6699]: User bob from 203.0.113.9 not allowed because listed in DenyUsers",
			KindFailure, "user_not_allowed", "203.0.113.9", "bob", 0, ""},
		{"not allowed groups", "Nov 23 20:14:49 web sshd[6699]: User bob from 203.0.113.9 not allowed because none of user's groups are listed in AllowGroups",
			KindFailure, "user_not_allowed", "203.0.113.9", "bob", 0, ""},
		{"not allowed DenyGroups", "Nov 23 20:14:49 web sshd[6699]: User bob from 203.0.113.9 not allowed because a group is listed in DenyGroups",
			KindFailure, "user_not_allowed", "203.0.113.9", "bob", 0, ""},
		{"not allowed shell", "Nov 23 20:14:49 web sshd[6699]: User daemon from 203.0.113.9 not allowed because shell /usr/sbin/nologin is not executable",
			KindFailure, "user_not_allowed", "203.0.113.9", "daemon", 0, ""},
		{"not allowed shell missing", "Nov 23 20:14:49 web sshd[6699]: User daemon from 203.0.113.9 not allowed because shell /bin/none does not exist",
			KindFailure, "user_not_allowed", "203.0.113.9", "daemon", 0, ""},
		{"not allowed locked", "Nov 23 20:14:49 web sshd[6699]: User bob from 203.0.113.9 not allowed because account is locked",
			KindFailure, "user_not_allowed", "203.0.113.9", "bob", 0, ""},
		{"not allowed no group", "Nov 23 20:14:49 web sshd[6699]: User bob from 203.0.113.9 not allowed because not in any group",
			KindFailure, "user_not_allowed", "203.0.113.9", "bob", 0, ""},
		{"root refused", "Nov 23 20:14:49 web sshd[6699]: ROOT LOGIN REFUSED FROM 203.0.113.9 port 5000",
			KindFailure, "root_login_refused", "203.0.113.9", "root", 5000, ""},
		{"root refused old", "Nov 23 20:14:49 web sshd[6699]: ROOT LOGIN REFUSED FROM 203.0.113.9",
			KindFailure, "root_login_refused", "203.0.113.9", "root", 0, ""},
		{"pam error auth failure", "Nov 23 20:14:49 web sshd[6699]: error: PAM: Authentication failure for root from 203.0.113.9",
			KindFailure, "pam_auth_failure", "203.0.113.9", "root", 0, ""},
		// PAM's host name (UseDNS) is no client: the connection's address is.
		{"pam error illegal user hostname", "Nov 23 20:14:49 web sshd[6699]: error: PAM: Authentication failure for illegal user admin from bad.example.com",
			KindFailure, "pam_auth_failure", "", "admin", 0, ""},
		{"pam user unknown", "Nov 23 20:14:49 web sshd[6699]: PAM: User not known to the underlying authentication module for illegal user admin from 203.0.113.9",
			KindFailure, "pam_user_unknown", "203.0.113.9", "admin", 0, ""},
		{"pam_unix auth failure", "Nov 23 20:14:49 web sshd[6699]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.9  user=root",
			KindFailure, "pam_auth_failure", "203.0.113.9", "root", 0, ""},
		{"pam_unix auth failure no user", "Nov 23 20:14:49 web sshd[6699]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.9 ",
			KindFailure, "pam_auth_failure", "203.0.113.9", "", 0, ""},
		{"pam_sss auth failure", "Nov 23 20:14:49 web sshd[6699]: pam_sss(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.9 user=bob",
			KindFailure, "pam_auth_failure", "203.0.113.9", "bob", 0, ""},
		{"pam more", "Nov 23 20:14:49 web sshd[6699]: PAM 2 more authentication failures; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.9  user=root",
			KindFailure, "pam_more_failures", "203.0.113.9", "root", 0, ""},
		{"pam one more", "Nov 23 20:14:49 web sshd[6699]: PAM 1 more authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.9  user=root",
			KindFailure, "pam_more_failures", "203.0.113.9", "root", 0, ""},
		{"max attempts", "Nov 23 20:14:49 web sshd[6699]: error: maximum authentication attempts exceeded for invalid user pi from 203.0.113.9 port 5000 ssh2 [preauth]",
			KindFailure, "max_auth_attempts", "203.0.113.9", "pi", 5000, ""},
		{"disconnecting too many", "Nov 23 20:14:49 web sshd[6699]: Disconnecting authenticating user root 203.0.113.9 port 5000: Too many authentication failures [preauth]",
			KindFailure, "too_many_auth_failures", "203.0.113.9", "root", 5000, ""},
		{"disconnecting invalid too many", "Nov 23 20:14:49 web sshd[6699]: Disconnecting invalid user pi 203.0.113.9 port 5000: Too many authentication failures [preauth]",
			KindFailure, "too_many_auth_failures", "203.0.113.9", "pi", 5000, ""},
		{"disconnecting change of user", "Nov 23 20:14:49 web sshd[6699]: Disconnecting invalid user pi 203.0.113.9 port 5000: Change of username or service not allowed: (pi,ssh-connection) -> (root,ssh-connection) [preauth]",
			KindFailure, "change_of_username", "203.0.113.9", "pi", 5000, ""},
		{"disconnecting too many no addr", "Nov 23 20:14:49 web sshd[6699]: Disconnecting: Too many authentication failures for root [preauth]",
			KindFailure, "too_many_auth_failures", "", "root", 0, ""},
		{"closed authenticating", "Nov 23 20:14:49 web sshd[6699]: Connection closed by authenticating user root 203.0.113.9 port 5000 [preauth]",
			KindFailure, "closed_preauth_user", "203.0.113.9", "root", 5000, ""},
		{"closed invalid", "Nov 23 20:14:49 web sshd[6699]: Connection closed by invalid user admin 203.0.113.9 port 5000 [preauth]",
			KindFailure, "closed_preauth_user", "203.0.113.9", "admin", 5000, ""},
		{"reset invalid", "Nov 23 20:14:49 web sshd[6699]: Connection reset by invalid user admin 203.0.113.9 port 5000 [preauth]",
			KindFailure, "reset_preauth_user", "203.0.113.9", "admin", 5000, ""},
		{"disconnected invalid", "Nov 23 20:14:49 web sshd[6699]: Disconnected from invalid user admin 203.0.113.9 port 5000 [preauth]",
			KindFailure, "disconnected_preauth_user", "203.0.113.9", "admin", 5000, ""},
		{"disconnected authenticating", "Nov 23 20:14:49 web sshd[6699]: Disconnected from authenticating user root 203.0.113.9 port 5000 [preauth]",
			KindFailure, "disconnected_preauth_user", "203.0.113.9", "root", 5000, ""},
		{"received disconnect auth fail", "Nov 23 20:14:49 web sshd[6699]: Received disconnect from 203.0.113.9 port 5000:3: com.jcraft.jsch.JSchException: Auth fail [preauth]",
			KindFailure, "auth_fail_disconnect", "203.0.113.9", "", 5000, ""},
		{"received disconnect no methods", "Nov 23 20:14:49 web sshd[6699]: Received disconnect from 203.0.113.9 port 5000:14: No supported authentication methods available [preauth]",
			KindFailure, "no_auth_methods", "203.0.113.9", "", 5000, ""},
		{"received disconnect no methods old", "Nov 23 20:14:49 web sshd[6699]: Received disconnect from 203.0.113.9: 14: No authentication methods available [preauth]",
			KindFailure, "no_auth_methods", "203.0.113.9", "", 0, ""},
		{"tcp wrappers", "Nov 23 20:14:49 web sshd[6699]: refused connect from scanner.example.net (203.0.113.9)",
			KindFailure, "tcpwrappers_refused", "203.0.113.9", "", 0, ""},
		// probes
		{"no identification", "Nov 23 20:14:49 web sshd[6699]: Did not receive identification string from 203.0.113.9 port 5000",
			KindProbe, "no_identification", "203.0.113.9", "", 5000, ""},
		{"no identification old", "Nov 23 20:14:49 web sshd[6699]: Did not receive identification string from 203.0.113.9",
			KindProbe, "no_identification", "203.0.113.9", "", 0, ""},
		{"banner exchange", "Nov 23 20:14:49 web sshd[6699]: banner exchange: Connection from 203.0.113.9 port 5000: invalid format",
			KindProbe, "banner_exchange", "203.0.113.9", "", 5000, ""},
		{"bad protocol version", "Nov 23 20:14:49 web sshd[6699]: Bad protocol version identification 'GET / HTTP/1.1' from 203.0.113.9 port 5000",
			KindProbe, "bad_protocol_version", "203.0.113.9", "", 5000, ""},
		{"bad protocol version spoof", "Nov 23 20:14:49 web sshd[6699]: Bad protocol version identification 'x' from 10.9.9.9 port 1' from 203.0.113.9 port 5000",
			KindProbe, "bad_protocol_version", "203.0.113.9", "", 5000, ""},
		{"kex identification", "Nov 23 20:14:49 web sshd[6699]: error: kex_exchange_identification: read: Connection reset by peer",
			KindProbe, "kex_exchange_identification", "", "", 0, ""},
		{"unable to negotiate", "Nov 23 20:14:49 web sshd[6699]: Unable to negotiate with 203.0.113.9 port 5000: no matching host key type found. Their offer: ssh-rsa,ssh-dss [preauth]",
			KindProbe, "unable_to_negotiate", "203.0.113.9", "", 5000, ""},
		{"timeout", "Nov 23 20:14:49 web sshd[6699]: fatal: Timeout before authentication for 203.0.113.9 port 5000",
			KindProbe, "auth_timeout", "203.0.113.9", "", 5000, ""},
		{"dispatch fatal", "Nov 23 20:14:49 web sshd[6699]: ssh_dispatch_run_fatal: Connection from 203.0.113.9 port 5000: message authentication code incorrect [preauth]",
			KindProbe, "dispatch_fatal", "203.0.113.9", "", 5000, ""},
		{"dispatch fatal user", "Nov 23 20:14:49 web sshd[6699]: ssh_dispatch_run_fatal: Connection from authenticating user root 203.0.113.9 port 5000: Broken pipe [preauth]",
			KindProbe, "dispatch_fatal", "203.0.113.9", "root", 5000, ""},
		{"closed preauth", "Nov 23 20:14:49 web sshd[6699]: Connection closed by 203.0.113.9 port 5000 [preauth]",
			KindProbe, "closed_preauth", "203.0.113.9", "", 5000, ""},
		{"reset preauth", "Nov 23 20:14:49 web sshd[6699]: Connection reset by 203.0.113.9 port 5000 [preauth]",
			KindProbe, "reset_preauth", "203.0.113.9", "", 5000, ""},
		{"closed no preauth", "Nov 23 20:14:49 web sshd[6699]: Connection closed by 203.0.113.9 port 5000",
			KindProbe, "closed", "203.0.113.9", "", 5000, ""},
		{"received disconnect 11", "Nov 23 20:14:49 web sshd[6699]: Received disconnect from 203.0.113.9 port 5000:11: Bye Bye [preauth]",
			KindProbe, "received_disconnect_preauth", "203.0.113.9", "", 5000, ""},
		{"disconnected preauth", "Nov 23 20:14:49 web sshd[6699]: Disconnected from 203.0.113.9 port 5000 [preauth]",
			KindProbe, "disconnected_preauth", "203.0.113.9", "", 5000, ""},
		{"penalty drop", "Nov 23 20:14:49 web sshd[1234]: drop connection #0 from [203.0.113.9]:5000 on [192.0.2.1]:22 penalty: failed authentication",
			KindProbe, "penalty_drop", "203.0.113.9", "", 5000, ""},
		{"penalty drop v6", "Nov 23 20:14:49 web sshd[1234]: drop connection #3 from [2001:db8::9]:5000 on [2001:db8::1]:22 penalty: exceeded LoginGraceTime",
			KindProbe, "penalty_drop", "2001:db8::9", "", 5000, ""},
		{"maxstartups drop", "Nov 23 20:14:49 web sshd[1234]: drop connection #11 from [203.0.113.9]:5000 on [192.0.2.1]:22 past MaxStartups",
			KindNotice, "maxstartups_drop", "203.0.113.9", "", 5000, ""},
		{"maxstartups drop, lower case s", "Nov 23 20:14:49 web sshd[1234]: drop connection #11 from [203.0.113.9]:5000 on [192.0.2.1]:22 past Maxstartups",
			KindNotice, "maxstartups_drop", "203.0.113.9", "", 5000, ""},
		// success and sessions
		{"accepted password", "Nov 23 20:14:49 web sshd[6699]: Accepted password for alice from 198.51.100.4 port 50000 ssh2",
			KindSuccess, "accepted", "198.51.100.4", "alice", 50000, ""},
		{"accepted publickey", "Nov 23 20:14:49 web sshd[6699]: Accepted publickey for alice from 198.51.100.4 port 50000 ssh2: ED25519 SHA256:TZNeiCTCTlvIYUy8EeTnjSoapIo676aoheF7ElbBGdo",
			KindSuccess, "accepted", "198.51.100.4", "alice", 50000, ""},
		{"accepted cert", "Nov 23 20:14:49 web sshd[6699]: Accepted publickey for alice from 198.51.100.4 port 50000 ssh2: ED25519-CERT SHA256:abc ID alice@corp (serial 7) CA ED25519 SHA256:def",
			KindSuccess, "accepted", "198.51.100.4", "alice", 50000, ""},
		{"session opened", "Nov 23 20:14:49 web sshd[6699]: pam_unix(sshd:session): session opened for user alice(uid=1000) by (uid=0)",
			KindSessionOpen, "session_opened", "", "alice", 0, ""},
		{"session opened old", "Nov 23 20:14:49 web sshd[6699]: pam_unix(sshd:session): session opened for user alice by (uid=0)",
			KindSessionOpen, "session_opened", "", "alice", 0, ""},
		{"session closed", "Nov 23 20:14:49 web sshd[6699]: pam_unix(sshd:session): session closed for user alice",
			KindSessionClose, "session_closed", "", "alice", 0, ""},
		{"disconnected user", "Nov 23 20:14:49 web sshd[6699]: Disconnected from user alice 198.51.100.4 port 50000",
			KindSessionClose, "disconnected_user", "198.51.100.4", "alice", 50000, ""},
		// transfers
		{"sftp session", "Nov 23 20:14:49 web internal-sftp[77]: session opened for local user alice from [198.51.100.4]",
			KindTransfer, "sftp_session_open", "198.51.100.4", "alice", 0, ""},
		{"sftp-server session v6", "Nov 23 20:14:49 web sftp-server[77]: session opened for local user alice from [2001:db8::4]",
			KindTransfer, "sftp_session_open", "2001:db8::4", "alice", 0, ""},
		{"sftp open", `Nov 23 20:14:49 web internal-sftp[77]: open "/home/alice/a b" flags READ mode 0666`,
			KindTransfer, "sftp_open", "", "", 0, ""},
		{"sftp close", `Nov 23 20:14:49 web internal-sftp[77]: close "/home/alice/a b" bytes read 10 written 0`,
			KindTransfer, "sftp_close", "", "", 0, ""},
		// notices
		{"reverse mapping", "Nov 23 20:14:49 web sshd[6699]: reverse mapping checking getaddrinfo for host.example.com [203.0.113.9] failed - POSSIBLE BREAK-IN ATTEMPT!",
			KindNotice, "reverse_mapping_failed", "203.0.113.9", "", 0, ""},
		{"address maps", "Nov 23 20:14:49 web sshd[6699]: Address 203.0.113.9 maps to host.example.com, but this does not map back to the address - POSSIBLE BREAK-IN ATTEMPT!",
			KindNotice, "reverse_mapping_mismatch", "203.0.113.9", "", 0, ""},
		{"partial", "Nov 23 20:14:49 web sshd[6699]: Partial publickey for alice from 198.51.100.4 port 50000 ssh2: ED25519 SHA256:abc",
			KindNotice, "partial_auth", "198.51.100.4", "alice", 50000, ""},
		{"check pass", "Nov 23 20:14:49 web sshd[6699]: pam_unix(sshd:auth): check pass; user unknown",
			KindNotice, "pam_user_unknown", "", "", 0, ""},
		// addresses
		{"ipv4 mapped", "Nov 23 20:14:49 web sshd[6699]: Failed password for root from ::ffff:203.0.113.7 port 41536 ssh2",
			KindFailure, "failed_password", "203.0.113.7", "root", 41536, ""},
		{"ipv6 zone", "Nov 23 20:14:49 web sshd[6699]: Failed password for root from fe80::1%eth0 port 41536 ssh2",
			KindFailure, "failed_password", "fe80::1%eth0", "root", 41536, ""},
		// program tags and formats
		{"sshd-session", "2026-11-23T20:14:49.561999+00:00 web sshd-session[6699]: Failed password for root from 203.0.113.7 port 41536 ssh2",
			KindFailure, "failed_password", "203.0.113.7", "root", 41536, ""},
		{"sshd-auth", "2026-11-23T20:14:49+0000 web sshd-auth[6699]: Invalid user a from 203.0.113.7 port 1",
			KindFailure, "invalid_user", "203.0.113.7", "a", 1, ""},
		{"rfc5424", "<38>1 2019-07-08T17:40:16.954167-04:00 web sshd 57915 - - Failed password for root from 203.0.113.7 port 41536 ssh2",
			KindFailure, "failed_password", "203.0.113.7", "root", 41536, ""},
		{"rfc5424 sd", `<38>1 2019-07-08T17:40:16.954167-04:00 web sshd 57915 ID47 [exampleSDID@32473 iut="3" eventSource="x]y"] Failed password for root from 203.0.113.7 port 41536 ssh2`,
			KindFailure, "failed_password", "203.0.113.7", "root", 41536, ""},
		{"solaris", "Nov 23 20:14:49 sol sshd[123]: [ID 800047 auth.info] Failed password for root from 203.0.113.7 port 41536 ssh2",
			KindFailure, "failed_password", "203.0.113.7", "root", 41536, ""},
		{"no pid tag", "Nov 23 20:14:49 web [sshd]: Failed password for root from 203.0.113.7 port 41536 ssh2",
			KindFailure, "failed_password", "203.0.113.7", "root", 41536, ""},
		{"path tag", "Nov 23 20:14:49 web /usr/sbin/sshd[12]: Failed password for root from 203.0.113.7 port 41536 ssh2",
			KindFailure, "failed_password", "203.0.113.7", "root", 41536, ""},
		{"bare host tag", "web sshd[12]: Failed password for root from 203.0.113.7 port 41536 ssh2",
			KindFailure, "failed_password", "203.0.113.7", "root", 41536, ""},
		{"bare message", "Failed password for root from 203.0.113.7 port 41536 ssh2",
			KindFailure, "failed_password", "203.0.113.7", "root", 41536, ""},
		{"bare pam message", "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.7  user=root",
			KindFailure, "pam_auth_failure", "203.0.113.7", "root", 0, ""},
		{"journal json", `{"__CURSOR":"s=1","__REALTIME_TIMESTAMP":"1700000000000000","_HOSTNAME":"web","SYSLOG_IDENTIFIER":"sshd","_COMM":"sshd","_UID":"0","_PID":"6699","MESSAGE":"Failed password for root from 203.0.113.7 port 41536 ssh2"}`,
			KindFailure, "failed_password", "203.0.113.7", "root", 41536, ""},
		{"journal json bytes", `{"__REALTIME_TIMESTAMP":"1700000000000000","_HOSTNAME":"web","SYSLOG_IDENTIFIER":"sshd","_COMM":"sshd","_UID":"0","_PID":"6699","MESSAGE":[73,110,118,97,108,105,100,32,117,115,101,114,32,255,32,102,114,111,109,32,49,46,50,46,51,46,52,32,112,111,114,116,32,53]}`,
			KindFailure, "invalid_user", "1.2.3.4", "\ufffd", 5, ""},
		{"crlf", "Nov 23 20:14:49 web sshd[6699]: Invalid user ubnt from 203.0.113.9 port 33111\r",
			KindFailure, "invalid_user", "203.0.113.9", "ubnt", 33111, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, ok := parseOne(t, tt.line)
			if !ok {
				t.Fatalf("not recognised: %q", tt.line)
			}
			if e.Kind != tt.kind || e.Reason != tt.reason {
				t.Errorf("kind/reason = %v/%s, want %v/%s", e.Kind, e.Reason, tt.kind, tt.reason)
			}
			if got := addrString(e); got != tt.ip {
				t.Errorf("ip = %q, want %q", got, tt.ip)
			}
			if e.ClientHost != tt.host {
				t.Errorf("client host = %q, want %q", e.ClientHost, tt.host)
			}
			if e.User != tt.user {
				t.Errorf("user = %q, want %q", e.User, tt.user)
			}
			if e.Port != tt.port {
				t.Errorf("port = %d, want %d", e.Port, tt.port)
			}
		})
	}
}

func addrString(e Event) string {
	if e.Addr.IsValid() {
		return e.Addr.String()
	}
	return ""
}

func TestUnrelatedLinesIgnored(t *testing.T) {
	for _, line := range []string{
		"Nov 23 20:14:49 web CRON[123]: pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)",
		"Nov 23 20:14:49 web sudo[1]: alice : TTY=pts/0 ; PWD=/ ; USER=root ; COMMAND=/bin/true",
		"Nov 23 20:14:49 web kernel: [1.0] Failed password for root from 1.2.3.4 port 22 ssh2",
		"Nov 23 20:14:49 web fakesshd[1]: Failed password for root from 1.2.3.4 port 22 ssh2",
		"2026-11-23T20:14:49+00:00 web systemd[1]: Started ssh.service",
		"Nov 23 20:14:49 web sshd[6699]: Server listening on 0.0.0.0 port 22.",
		"",
		"\x00\x01\x02\xff garbage",
		`{"MESSAGE":"Failed password for root from 1.2.3.4 port 22 ssh2","SYSLOG_IDENTIFIER":"cron"}`,
		`{not json`,
	} {
		if e, ok := parseOne(t, line); ok {
			t.Errorf("%q recognised as %v/%s", line, e.Kind, e.Reason)
		}
	}
}

func TestEncoderTimes(t *testing.T) {
	var enc Encoder
	cet := time.FixedZone("", 3600)
	for _, tt := range []time.Time{
		time.Date(2026, 11, 23, 20, 14, 49, 0, time.UTC),
		time.Date(2026, 11, 23, 20, 14, 49, 561999000, time.UTC),
		time.Date(2026, 11, 23, 20, 14, 49, 500000000, cet),
		time.Date(2026, 11, 23, 20, 14, 50, 1, cet),
	} {
		e := Event{Time: tt, Kind: KindProbe}
		got := string(enc.AppendJSON(nil, &e, "f", 1))
		want := `"time":"` + tt.Format(time.RFC3339Nano) + `"`
		if !strings.Contains(got, want) {
			t.Errorf("%s: want %s", got, want)
		}
	}
}

// TestForgedJournalEntries: `logger -t sshd` by a local user writes an
// entry tagged sshd; journald's trusted fields say who wrote it, and such
// entries give no event (they would ban the address they name, or fake a
// login alert). They are counted.
func TestForgedJournalEntries(t *testing.T) {
	lines := []string{
		`{"__REALTIME_TIMESTAMP":"1700000000000000","SYSLOG_IDENTIFIER":"sshd","SYSLOG_PID":"1","_COMM":"logger","_UID":"1000","_PID":"777","MESSAGE":"Failed password for root from 192.0.2.1 port 22 ssh2"}`,
		`{"__REALTIME_TIMESTAMP":"1700000000000000","SYSLOG_IDENTIFIER":"sshd","_COMM":"sshd","_UID":"1000","_PID":"778","MESSAGE":"Accepted password for root from 192.0.2.1 port 22 ssh2"}`,
		`{"__REALTIME_TIMESTAMP":"1700000000000000","SYSLOG_IDENTIFIER":"sshd","_PID":"779","MESSAGE":"Failed password for root from 192.0.2.1 port 22 ssh2"}`,
		`{"__REALTIME_TIMESTAMP":"1700000000000000","SYSLOG_IDENTIFIER":"sshd","SYSLOG_PID":"1","_COMM":"sshd","_UID":"0","_PID":"4242","MESSAGE":"Failed password for root from 203.0.113.9 port 22 ssh2"}`,
		`{"__REALTIME_TIMESTAMP":"1700000000000000","SYSLOG_IDENTIFIER":"sshd-session","_COMM":"sshd-session","_UID":"0","_SYSTEMD_UNIT":"ssh.service","_PID":"4243","MESSAGE":"Accepted publickey for alice from 203.0.113.10 port 22 ssh2"}`,
	}
	var s Scanner
	var got []Record
	for i, l := range lines {
		s.Line("journal", int64(i+1), l, func(r *Record) { got = append(got, *r) })
	}
	s.Flush(func(r *Record) { got = append(got, *r) })
	if s.Stats.Untrusted != 3 || len(got) != 2 {
		t.Fatalf("untrusted %d, records %+v", s.Stats.Untrusted, got)
	}
	if got[0].Client() != "203.0.113.9" || got[0].PID != 4242 || got[1].Client() != "203.0.113.10" {
		t.Fatalf("records %+v (the pid is journald's _PID, not SYSLOG_PID)", got)
	}
}
