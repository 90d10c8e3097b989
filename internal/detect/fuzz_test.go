package detect

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// spoofTemplates are real sshd message shapes. {U} is the user name and
// {K} other client-chosen text (certificate key ID, hostbased client user,
// disconnect reason, version string). The real client is 10.200.0.2.
var spoofTemplates = []struct {
	msg       string
	mayBeAmbi bool // attacker text on both sides: no address is an acceptable answer
}{
	{"Failed password for invalid user {U} from 10.200.0.2 port 41536 ssh2", false},
	{"Failed password for {U} from 10.200.0.2 port 41536 ssh2", false},
	{"Failed none for invalid user {U} from 10.200.0.2 port 41536 ssh2", false},
	{"Failed publickey for {U} from 10.200.0.2 port 41536 ssh2: RSA SHA256:abc", false},
	{"Failed publickey for {U} from 10.200.0.2 port 41536 ssh2: ED25519-CERT SHA256:abc ID {K} (serial 1) CA ED25519 SHA256:def", true},
	{"Failed hostbased for {U} from 10.200.0.2 port 41536 ssh2: ECDSA SHA256:x, client user \"{K}\", client host \"{K}\"", true},
	{"Postponed keyboard-interactive for invalid user {U} from 10.200.0.2 port 41536 ssh2 [preauth]", false},
	{"Invalid user {U} from 10.200.0.2 port 41536", false},
	{"Connection closed by invalid user {U} 10.200.0.2 port 41536 [preauth]", false},
	{"Connection closed by authenticating user {U} 10.200.0.2 port 41536 [preauth]", false},
	{"Connection reset by invalid user {U} 10.200.0.2 port 41536 [preauth]", false},
	{"Disconnected from invalid user {U} 10.200.0.2 port 41536 [preauth]", false},
	{"Disconnecting invalid user {U} 10.200.0.2 port 41536: Too many authentication failures [preauth]", false},
	{"Disconnecting invalid user {U} 10.200.0.2 port 41536: Change of username or service not allowed: ({U},ssh-connection) -> ({K},ssh-connection) [preauth]", true},
	{"error: maximum authentication attempts exceeded for invalid user {U} from 10.200.0.2 port 41536 ssh2 [preauth]", false},
	{"error: PAM: Authentication failure for illegal user {U} from 10.200.0.2", false},
	{"error: PAM: User not known to the underlying authentication module for illegal user {U} from 10.200.0.2", false},
	{"error: PAM: Authentication failure for illegal user {U} from 10.200.0.2 via 203.0.113.1", false},
	{"Failed password for {U} from 10.200.0.2 port 41536 ssh1", false},
	{"pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=10.200.0.2  user={U}", false},
	{"PAM 2 more authentication failures; logname= uid=0 euid=0 tty=ssh ruser= rhost=10.200.0.2  user={U}", false},
	{"Received disconnect from 10.200.0.2 port 41536:3: {K} Auth fail [preauth]", false},
	{"Received disconnect from 10.200.0.2 port 41536:11: {K} [preauth]", false},
	{"Unable to negotiate with 10.200.0.2 port 41536: no matching key exchange method found. Their offer: {K} [preauth]", false},
	{"Bad protocol version identification '{K}' from 10.200.0.2 port 41536", false},
	{"Bad protocol version identification {K} from 10.200.0.2", false},
	{"ssh_dispatch_run_fatal: Connection from invalid user {U} 10.200.0.2 port 41536: Broken pipe [preauth]", false},
	{"banner exchange: Connection from 10.200.0.2 port 41536: invalid format", false},
	{"Invalid user {U} from 10.200.0.2", false},
	{"error: PAM: Authentication error for illegal user {U} from 10.200.0.2", false},
	{"error: PAM: Authentication error for {U} from 10.200.0.2", false},
	{"message repeated 3 times: [ Failed password for {U} from 10.200.0.2 port 41536 ssh2]", false},
	{"message repeated 2 times: [ Failed password for invalid user {U} from 10.200.0.2 port 41536 ssh2]", false},
	{"message repeated 2 times: [ Connection closed by invalid user {U} 10.200.0.2 port 41536 [preauth]]", false},
}

// sshdEscape makes s look as sshd logs it: control characters become octal
// escapes (strnvis), so a name cannot end the line.
func sshdEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == 0x7f {
			b.WriteString(`\0`)
			b.WriteByte('0' + c>>3)
			b.WriteByte('0' + c&7)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// spoofHeaders are the headers the messages are tried under: every
// format the header parser knows, and those with no tag (the message is
// then found where the header ends).
var spoofHeaders = []string{
	"Nov 23 20:14:49 web sshd[6699]: ",
	"Nov 3 20:14:49 web sshd[6699]: ",
	"Nov 23 20:14:49 web auth.info sshd[6699]: ",
	"2026-11-23 20:14:49 web sshd[6699]: ",
	"2026-11-23_20:14:49.12345 auth.info: sshd[6699]: ",
	"2026-11-23_20:14:49.12345 auth.info: ",
	"2026-11-23T20:14:49.123456789Z stderr F ",
	"Sun 2026-11-23 20:14:49 UTC web sshd[6699]: ",
	"1795464889.561999 web sshd[6699]: ",
	"<38>Nov 23 20:14:49 web sshd[6699]: ",
	"[2026/11/23 20:14:49] web sshd[6699]: ",
	"[2026/11/23 20:14:49] INFO ",
	"<38>1 2026-11-23T20:14:49.123456Z web sshd 6699 - - ",
	"<38>1 2026-11-23T20:14:49 +01:00 web sshd 6699 - [origin software=\"rsyslogd\"] ",
	"Nov 23 20:14:49 web sshd[6699] ",
	"2026-11-23 20:14:49.123456789 ",
	"2026-11-23 20:14:49.123456789 +0000 UTC ",
	"",
}

func checkSpoof(t *testing.T, user, other string) {
	real := netip.MustParseAddr("10.200.0.2")
	user, other = sshdEscape(user), sshdEscape(other)
	for _, tpl := range spoofTemplates {
		for _, head := range spoofHeaders {
			msg := strings.ReplaceAll(strings.ReplaceAll(tpl.msg, "{U}", user), "{K}", other)
			line := head + msg
			e, ok := parseOne(t, line)
			// rsyslog's repeated messages are read only behind sshd's tag.
			tagged := strings.HasPrefix(tpl.msg, "message repeated ")
			if tagged && (!strings.Contains(head, " sshd") || len(msg) > repeatCut) {
				// No tag to vouch for the syslog daemon's words, or
				// a message rsyslog would have cut: nothing, or
				// the address of the line where sshd put it.
				if ok && e.Addr.IsValid() && e.Addr != real || e.Repeat != 0 && !strings.Contains(head, " sshd") {
					t.Errorf("%q: ip %v repeat %d", line, e.Addr, e.Repeat)
				}
				continue
			}
			if !ok {
				t.Errorf("not recognised: %q", line)
				continue
			}
			if e.ClientHost != "" {
				t.Errorf("%q: client host %q taken from attacker text", line, e.ClientHost)
			}
			switch {
			case e.Addr == real:
			case !e.Addr.IsValid() && tpl.mayBeAmbi && e.Ambiguous:
			default:
				t.Errorf("%q: ip = %v (ambiguous=%v), want %v", line, e.Addr, e.Ambiguous, real)
			}
		}
	}
}

func TestSpoofedUserNames(t *testing.T) {
	for _, u := range []string{
		"x from 10.9.9.9 port 22",
		"x from 10.9.9.9 port 22 ssh2",
		"x from 10.9.9.9 port 22 ssh2: RSA SHA256:abc",
		"y 10.9.9.8 port 22",
		"y 10.9.9.8 port 22 [preauth]",
		"z 10.9.9.7 port 22: Too many authentication failures",
		"rhost=10.9.9.6 ",
		" user=root rhost=10.9.9.6",
		"a' from 10.9.9.5 port 1",
		"evil.example.com",
		"x from evil.example.com port 22",
		"",
		" ",
		"port 22",
		"x from 10.9.9.9 port 22 ssh2: ED25519-CERT SHA256:abc ID ",
		"z 10.9.9.7 port 22: Change of username or service not allowed: (z",
		"x message repeated 9 times: [ Failed password for root from 10.9.9.3 port 22 ssh2]",
		strings.Repeat("a", 730) + " from 10.9.9.9 port 22 ssh2", // cut by rsyslog's repeated message, the fake at its end
		strings.Repeat("a", 729) + " from 10.9.9.9 port 22 ssh2",
	} {
		for _, k := range []string{"k", "x from 10.9.9.9 port 1 ssh2", "10.9.9.4 port 3", "(serial 1) CA X Y", "z"} {
			checkSpoof(t, u, k)
		}
	}
}

// FuzzSpoof: whatever user name and client text an attacker chooses, the
// address is the real client's, or none when the line is truly ambiguous.
func FuzzSpoof(f *testing.F) {
	f.Add("x from 10.9.9.9 port 22", "k")
	f.Add("x message repeated 9 times: [ Failed password for root from 10.9.9.3 port 22 ssh2]", "k")
	f.Add("y 10.9.9.8 port 22 ssh2: ED25519-CERT SHA256:abc ID a", "x from 10.9.9.9 port 22 ssh2")
	f.Fuzz(func(t *testing.T, user, other string) {
		checkSpoof(t, user, other)
	})
}

// FuzzParseLine: the parser never panics, and every address it returns
// stands in the line outside the user-name field.
func FuzzParseLine(f *testing.F) {
	files, _ := filepath.Glob("../../testdata/recorded/*.log")
	more, _ := filepath.Glob("../../testdata/samples/*.log")
	for _, name := range append(files, more...) {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		for _, l := range strings.Split(string(b), "\n") {
			f.Add(l)
		}
	}
	f.Fuzz(func(t *testing.T, line string) {
		var s Scanner
		s.Line("fuzz", 1, line, func(r *Record) { checkAddrInLine(t, line, &r.Event) })
		s.Flush(func(r *Record) { checkAddrInLine(t, line, &r.Event) })
	})
}

// checkAddrInLine: the address must occur in the line more often than in
// the user name, i.e. at least once outside the user-name field.
func checkAddrInLine(t *testing.T, line string, e *Event) {
	if !e.Addr.IsValid() {
		return
	}
	line = strings.TrimSuffix(line, "\r") // as Parse takes it
	if countAddr(line, e) <= countAddr(e.User, e) {
		t.Errorf("address %v of %q not found outside the user field %q", e.Addr, line, e.User)
	}
}

func countAddr(s string, e *Event) int {
	n := 0
	for _, tok := range addrTokens(s) {
		first, _, _ := strings.Cut(tok.s, ":")
		for _, cand := range []string{tok.s, strings.TrimSuffix(tok.s, ":"), tok.s[:max(0, strings.LastIndexByte(tok.s, ':'))], first, tok.s[:max(0, strings.LastIndexByte(tok.s, '-'))]} {
			if c, ok := parseClient(cand); ok && c.addr == e.Addr {
				n++
				break
			}
		}
	}
	return n
}

type token struct {
	s     string
	start int
}

// addrTokens splits a line at the characters that surround addresses.
func addrTokens(line string) []token {
	var out []token
	start := 0
	flush := func(end int) {
		s := line[start:end]
		if s != "" {
			out = append(out, token{s, start})
		}
	}
	for i := 0; i < len(line); i++ {
		switch line[i] {
		case ' ', '[', ']', '(', ')', '=', ',', '\'', '"':
			flush(i)
			start = i + 1
		}
	}
	flush(len(line))
	return out
}
