package detect

import (
	"net/netip"
	"strconv"
	"time"
)

// Kind is the class of an sshd event.
type Kind uint8

// The kinds of the offline contract.
const (
	KindNone         Kind = iota
	KindFailure           // a failed or refused authentication attempt
	KindProbe             // pre-authentication misbehaviour without credentials
	KindSuccess           // an accepted authentication
	KindSessionOpen       // a session was opened
	KindSessionClose      // a session was closed
	KindTransfer          // an sftp file operation
	KindNotice            // recognised, never counted
)

var kindNames = [...]string{"", "failure", "probe", "success", "session_open", "session_close", "transfer", "notice"}

// String returns the name used in JSON output, e.g. "failure".
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Event is one recognised sshd line.
//
// String fields may share memory with the line they were parsed from; a
// consumer that keeps an Event beyond the line's lifetime in a streaming
// reader does not need to copy them because readers hand out immutable
// strings, but it may want strings.Clone to let large blocks be collected.
type Event struct {
	Time    time.Time // zero when the line carried no timestamp
	Host    string    // the logging host, "" when unknown
	Program string    // sshd, sshd-session, sshd-auth, internal-sftp, sftp-server, or ""
	PID     int       // 0 when unknown

	Kind   Kind
	Reason string // a stable snake_case name of the message shape

	Addr       netip.Addr // the client address, IPv4-mapped IPv6 unmapped, an IPv6 zone kept
	ClientHost string     // the client's name when sshd logged a name instead of an address
	Port       int        // the client port, 0 when not logged
	User       string     // the user name as logged (attacker-controlled for failures)
	Invalid    bool       // sshd said the user does not exist ("invalid user", "illegal user")

	Method string // authentication method for failure/success lines, e.g. "password"
	Key    string // key type and fingerprint after "ssh2: " when present
	Path   string // file path for transfers
	Read   int64  // bytes read (transfer close)
	Wrote  int64  // bytes written (transfer close)

	// Counted is the number of attempts (for failures) or probes (for
	// probes) this line counts for its connection: 0 or 1, except for an
	// rsyslog "message repeated N times" line (up to 1+MaxRepeat) and a
	// PAM tally that names more failures than the connection's lines
	// counted. The lines of one guess count once; see Correlator.
	Counted int

	// TakesBackProbe is set on the line that counts a connection's first
	// failure when the connection had counted a probe: a connection that
	// failed counts as its failures, not as a probe too, so this line
	// weighs its failures less the probe (less at most one failure's
	// weight, when probes weigh more). Its Counted is unchanged.
	TakesBackProbe bool

	// Repeat is N of rsyslog's "message repeated N times: [ msg]" (the
	// message stood N more times, bounded by MaxRepeat), else 0.
	Repeat int

	// tally is N+1 of PAM's "PAM N more authentication failures": the
	// failures pam_unix saw on the connection.
	tally int

	// Ambiguous is set when the line contained more than one place where
	// sshd could have written the client address (attacker text imitated
	// it) and the connection did not tell which one is real; Addr is then
	// left empty.
	Ambiguous bool
}

// Client returns the address as text, or the client host name, or "".
func (e *Event) Client() string {
	if e.Addr.IsValid() {
		return e.Addr.String()
	}
	return e.ClientHost
}
