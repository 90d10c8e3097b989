package detect

import (
	"strconv"
	"strings"
)

// Classify recognises an sshd message (the text after the syslog tag) and
// fills e's Kind, Reason, client address and user fields. It returns false
// for messages that are not one of the known shapes; e is then unchanged
// except for fields the caller set.
//
// Counted is not set here: whether a line counts an attempt depends on the
// other lines of its connection (see Correlator). Lines that carry no client
// address (kex_exchange_identification, "Disconnecting: Too many
// authentication failures", PAM session lines) are returned with an empty
// Addr for the Correlator to fill in.
func Classify(msg string, e *Event) bool {
	msg, preauth := strings.CutSuffix(msg, " [preauth]")
	if strings.HasPrefix(msg, "error: ") || strings.HasPrefix(msg, "fatal: ") {
		msg = msg[7:]
	}
	if msg == "" {
		return false
	}
	if arm := classifyArms[msg[0]]; arm != nil && arm(msg, e, preauth) {
		return true
	}
	if strings.HasPrefix(msg, "pam_") {
		return pamModule(msg, e)
	}
	return false
}

// MaxRepeat bounds what one line counts: rsyslog's "message repeated N
// times" and PAM's "PAM N more authentication failures" beyond it count
// MaxRepeat.
const MaxRepeat = 1000

// repeatCut is the length rsyslog cuts a repeated message to
// ("message repeated %d times: [%.800s]"), its leading space included.
const repeatCut = 800

// classifyTagged is Classify for a message that followed an sshd
// program's tag. It also reads rsyslog's repeated-message reduction,
// "message repeated N times: [ <sshd message>]", which only the syslog
// daemon writes, after the header and before the message of the program
// the tag names: the text in brackets must itself be one of sshd's
// messages. A bare message (no tag) never gets this reading.
func classifyTagged(msg string, e *Event) bool {
	if rest, ok := strings.CutPrefix(msg, "message repeated "); ok {
		return repeated(rest, e)
	}
	return Classify(msg, e)
}

// repeated parses "N times: [ <message>]".
func repeated(rest string, e *Event) bool {
	n, inner, ok := strings.Cut(rest, " times: [")
	if !ok || n == "" || len(n) > 9 {
		return false
	}
	count, err := strconv.Atoi(n)
	if err != nil || count < 1 || n[0] == '+' || n[0] == '-' {
		return false
	}
	inner, ok = strings.CutSuffix(inner, "]")
	// A message cut at rsyslog's bound lost its end, where sshd writes
	// the address; what ends it now may be a user name dressed as one.
	if !ok || len(inner) >= repeatCut {
		return false
	}
	inner = strings.TrimPrefix(inner, " ")
	if !Classify(inner, e) {
		return false
	}
	e.Repeat = min(count, MaxRepeat)
	return true
}

func set(e *Event, k Kind, reason string, c client) {
	e.Kind, e.Reason = k, reason
	e.Addr, e.ClientHost, e.Port = c.addr, c.host, c.port
}

// cutInvalid strips "invalid user " or "illegal user " from a user field.
func cutInvalid(s string) (invalid bool, user string) {
	if u, ok := strings.CutPrefix(s, "invalid user "); ok {
		return true, u
	}
	if u, ok := strings.CutPrefix(s, "illegal user "); ok {
		return true, u
	}
	return false, s
}

// authLine parses the rest of "Failed|Accepted <method> for [invalid user
// ]<user> from <addr> port <n> ssh2[: <key info>]".
func authLine(rest string, e *Event, k Kind) bool {
	method, rest, ok := strings.Cut(rest, " for ")
	if !ok || method == "" || strings.IndexByte(method, ' ') >= 0 {
		return false
	}
	userPart, c, key, amb, ok := splitSSH2(rest)
	if !ok {
		return false
	}
	reason := "accepted"
	if k == KindFailure {
		reason = failReason(method)
	}
	set(e, k, reason, c)
	e.Invalid, e.User = cutInvalid(userPart)
	e.Method, e.Key, e.Ambiguous = method, key, amb
	if amb {
		e.User = ""
	}
	return true
}

func failReason(method string) string {
	m, _, _ := strings.Cut(method, "/")
	switch m {
	case "password":
		return "failed_password"
	case "publickey":
		return "failed_publickey"
	case "keyboard-interactive":
		return "failed_keyboard_interactive"
	case "hostbased":
		return "failed_hostbased"
	case "none":
		return "failed_none"
	case "gssapi-with-mic", "gssapi-keyex", "gssapi":
		return "failed_gssapi"
	}
	return "failed_other"
}

// splitSSH2 splits "<user part> from <addr> port <n> ssh2[: <key info>]".
// Key info is sshd's text except for a certificate's key ID and hostbased
// authentication's client user and host, which the client chooses; for
// those every possible split is tried and the line is ambiguous when they
// disagree.
func splitSSH2(s string) (userPart string, c client, key string, ambiguous, ok bool) {
	body, found := strings.CutSuffix(s, " ssh2")
	if !found {
		body, found = strings.CutSuffix(s, " ssh1") // OpenSSH before 7.4
	}
	if found {
		userPart, c, ok = tailAddrPort(body, " from ")
		return userPart, c, "", false, ok
	}
	j := strings.LastIndex(s, " ssh2: ")
	if j < 0 {
		// Old OpenSSH without the protocol word.
		userPart, c, ok = tailAddrPort(s, " from ")
		return userPart, c, "", false, ok
	}
	key = s[j+7:]
	if !strings.Contains(key, "-CERT") && strings.Count(key, " ") <= 1 {
		userPart, c, ok = tailAddrPort(s[:j], " from ")
		return userPart, c, key, false, ok
	}
	u := eachSep(s, " ssh2: ", func(head, tail string) (client, bool) {
		if !certShape(tail) && !hostbasedShape(tail) {
			return client{}, false
		}
		_, c, ok := tailAddrPort(head, " from ")
		return c, ok
	})
	if u.n == 0 {
		return "", client{}, "", false, false
	}
	if u.ambiguous {
		return "", client{}, "", true, true
	}
	userPart, _, _ = tailAddrPort(u.head, " from ")
	return userPart, u.c, u.tail, false, true
}

// certShape reports whether s starts like sshd's certificate key info:
// "<TYPE>-CERT <fingerprint> ID ".
func certShape(s string) bool {
	t, rest, ok := strings.Cut(s, " ")
	if !ok || !strings.HasSuffix(t, "-CERT") {
		return false
	}
	_, rest, ok = strings.Cut(rest, " ")
	return ok && strings.HasPrefix(rest, "ID ")
}

// hostbasedShape reports whether s starts like sshd's hostbased key info:
// "<TYPE> <fingerprint>, client user \"".
func hostbasedShape(s string) bool {
	_, rest, ok := strings.Cut(s, " ")
	if !ok {
		return false
	}
	i := strings.IndexByte(rest, ' ')
	return i > 0 && rest[i-1] == ',' && strings.HasPrefix(rest[i:], " client user \"")
}

// invalidUser parses "<user> from <addr>[ port <n>]".
func invalidUser(rest string, e *Event) bool {
	user, c, ok := tailAddrPort(rest, " from ")
	if !ok {
		user, c, ok = tailAddr(rest, " from ")
	}
	if !ok {
		return false
	}
	set(e, KindFailure, "invalid_user", c)
	e.User, e.Invalid = user, true
	return true
}

// notAllowed parses "<user> from <addr> not allowed because <why>"; why is
// sshd's text (a shell path from the password file at most).
func notAllowed(rest string, e *Event) bool {
	i := strings.LastIndex(rest, " not allowed because ")
	if i < 0 {
		return false
	}
	user, c, ok := tailAddr(rest[:i], " from ")
	if !ok {
		return false
	}
	set(e, KindFailure, "user_not_allowed", c)
	e.User = user
	return true
}

// rootRefused parses "<addr>[ port <n>]" after ROOT LOGIN REFUSED FROM.
func rootRefused(rest string, e *Event) bool {
	c, tail, ok := headAddrPort(rest)
	if !ok || tail != "" {
		c, ok = parseClient(rest)
		if !ok {
			return false
		}
	}
	set(e, KindFailure, "root_login_refused", c)
	e.User = "root"
	return true
}

// pamUpper handles the lines that start with "PAM" and "Postponed"/"Partial".
func pamUpper(msg string, e *Event) bool {
	switch {
	case strings.HasPrefix(msg, "PAM: "):
		return pamError(msg[5:], e)
	case strings.HasPrefix(msg, "PAM "):
		// "PAM 2 more authentication failures; logname= ... rhost=X  user=Y"
		rest := msg[4:]
		n, tail, ok := strings.Cut(rest, " more authentication failure")
		if !ok {
			if strings.HasPrefix(rest, "service(") {
				e.Kind, e.Reason = KindNotice, "pam_ignoring_max_retries"
				return true
			}
			return false
		}
		more, err := strconv.Atoi(n)
		if err != nil || more < 0 {
			return false
		}
		c, user := pamFields(tail)
		set(e, KindFailure, "pam_more_failures", c)
		e.User = user
		// pam_unix's tally of the connection: the failure it logged
		// and these more.
		e.tally = min(more, MaxRepeat) + 1
		return true
	case strings.HasPrefix(msg, "Postponed ") || strings.HasPrefix(msg, "Partial "):
		_, rest, _ := strings.Cut(msg, " ")
		if !authLine(rest, e, KindNotice) {
			return false
		}
		e.Reason = "partial_auth"
		if msg[1] == 'o' {
			e.Reason = "postponed_auth"
		}
		return true
	}
	return false
}

// pamError parses "<PAM error text> for [invalid|illegal user ]<user> from
// <host>", written by sshd's PAM glue.
func pamError(rest string, e *Event) bool {
	reason := ""
	// Older sshd (and some distributions' PAM glue) add the address the
	// client connected to: "... from <client> via <server address>".
	if i := strings.LastIndex(rest, " via "); i >= 0 {
		if _, ok := parseClient(rest[i+5:]); ok {
			rest = rest[:i]
		}
	}
	if r, ok := strings.CutPrefix(rest, "Authentication failure for "); ok {
		reason, rest = "pam_auth_failure", r
	} else if r, ok := strings.CutPrefix(rest, "authentication failure for "); ok {
		reason, rest = "pam_auth_failure", r
	} else if r, ok := strings.CutPrefix(rest, "User not known to the underlying authentication module for "); ok {
		reason, rest = "pam_user_unknown", r
	} else {
		i := strings.Index(rest, " for ")
		if i < 0 {
			return false
		}
		reason, rest = "pam_error", rest[i+5:]
	}
	userPart, c, ok := tailAddr(rest, " from ")
	if !ok {
		return false
	}
	// With UseDNS, sshd's PAM glue names the client by its host name,
	// which the client's DNS chose: never a client of its own; the
	// connection's address is (see Correlator).
	set(e, KindFailure, reason, c.addrOnly())
	e.Invalid, e.User = cutInvalid(userPart)
	return true
}

// pamFields reads rhost= and user= from a pam_unix log line, which writes
// "... ruser=<r> rhost=<host>  user=<user>" with the user (the only
// attacker text) last: the first rhost= is the real one, and user= is
// looked for only after it.
func pamFields(s string) (client, string) {
	i := strings.Index(s, " rhost=")
	if i < 0 {
		return client{}, ""
	}
	v := s[i+7:]
	rest := ""
	if sp := strings.IndexByte(v, ' '); sp >= 0 {
		v, rest = v[:sp], v[sp:]
	}
	c, _ := parseClient(v)
	user := ""
	if j := strings.Index(rest, " user="); j >= 0 {
		user = rest[j+6:]
	}
	// rhost= is a host name when sshd resolves clients (UseDNS): the
	// client's DNS chose it, so it is never a client of its own; the
	// connection's address is (see Correlator).
	return c.addrOnly(), user
}

// pamModule handles "pam_<module>(sshd:<type>): ..." lines.
func pamModule(msg string, e *Event) bool {
	i := strings.Index(msg, "): ")
	if i < 0 {
		return false
	}
	tag, text := msg[:i+1], msg[i+3:]
	if !strings.Contains(tag, "(sshd:") {
		return false
	}
	switch {
	case strings.HasPrefix(text, "authentication failure;"):
		c, user := pamFields(text)
		set(e, KindFailure, "pam_auth_failure", c)
		e.User = user
		return true
	case strings.HasPrefix(text, "check pass; user unknown"):
		e.Kind, e.Reason = KindNotice, "pam_user_unknown"
		return true
	case strings.HasPrefix(text, "session opened for user "):
		e.Kind, e.Reason = KindSessionOpen, "session_opened"
		e.User = pamSessionUser(text[24:])
		return true
	case strings.HasPrefix(text, "session closed for user "):
		e.Kind, e.Reason = KindSessionClose, "session_closed"
		e.User = pamSessionUser(text[24:])
		return true
	}
	return false
}

// pamSessionUser takes "root(uid=0) by (uid=0)" or "root" to "root".
func pamSessionUser(s string) string {
	if i := strings.LastIndex(s, " by "); i >= 0 {
		s = s[:i]
	}
	if i := strings.LastIndex(s, "(uid="); i >= 0 {
		s = s[:i]
	}
	return s
}

// maxAttempts parses "[invalid user ]<user> from <addr> port <n> ssh2".
func maxAttempts(rest string, e *Event) bool {
	rest = strings.TrimSuffix(rest, " ssh2")
	userPart, c, ok := tailAddrPort(rest, " from ")
	if !ok {
		return false
	}
	set(e, KindFailure, "max_auth_attempts", c)
	e.Invalid, e.User = cutInvalid(userPart)
	return true
}

// closedBy parses the rest of "Connection closed by", "Connection reset by"
// and "Disconnected from": "[authenticating |invalid ]user <user> <addr>
// port <n>" or "<addr> port <n>".
func closedBy(rest string, e *Event, verb string, preauth bool) bool {
	head, c, ok := tailAddrPort(rest, " ")
	if !ok {
		// Old OpenSSH: "Connection closed by 1.2.3.4".
		if c, ok = parseClient(rest); !ok {
			return false
		}
		head = ""
	}
	r := closeReasons[verb]
	if head == "" {
		switch {
		case preauth:
			set(e, KindProbe, r.preauth, c)
		case verb == "disconnected":
			set(e, KindSessionClose, r.plain, c)
		default:
			set(e, KindProbe, r.plain, c)
		}
		return true
	}
	user, invalid, ok := userPrefix(head)
	if !ok {
		return false
	}
	e.User, e.Invalid = user, invalid
	if !invalid && !strings.HasPrefix(head, "authenticating ") && !preauth {
		set(e, KindSessionClose, r.user, c)
		return true
	}
	set(e, KindFailure, r.preauthUser, c)
	return true
}

// closeReasons names the reasons of the closing lines without building
// strings on the hot path.
var closeReasons = map[string]struct{ plain, preauth, user, preauthUser string }{
	"closed":       {"closed", "closed_preauth", "closed_user", "closed_preauth_user"},
	"reset":        {"reset", "reset_preauth", "reset_user", "reset_preauth_user"},
	"disconnected": {"disconnected", "disconnected_preauth", "disconnected_user", "disconnected_preauth_user"},
}

// disconnecting parses "(authenticating|invalid) user <user> <addr> port
// <n>: <why>".
func disconnecting(rest string, e *Event) bool {
	const tooMany = ": Too many authentication failures"
	if body, ok := strings.CutSuffix(rest, tooMany); ok {
		head, c, ok := tailAddrPort(body, " ")
		user, invalid, ok2 := userPrefix(head)
		if !ok || !ok2 {
			return false
		}
		set(e, KindFailure, "too_many_auth_failures", c)
		e.User, e.Invalid = user, invalid
		return true
	}
	// The reason repeats both user names the client chose, so attacker text
	// stands on both sides: try every split, and require the user before
	// the address to be the one in "(user,service)" after it.
	const change = ": Change of username or service not allowed: ("
	u := eachSep(rest, change, func(head, tail string) (client, bool) {
		h, c, ok := tailAddrPort(head, " ")
		user, _, ok2 := userPrefix(h)
		return c, ok && ok2 && strings.HasPrefix(tail, user+",")
	})
	if u.n == 0 {
		return false
	}
	e.Kind, e.Reason = KindFailure, "change_of_username"
	if u.ambiguous {
		e.Ambiguous = true
		return true
	}
	h, _, _ := tailAddrPort(u.head, " ")
	e.User, e.Invalid, _ = userPrefix(h)
	e.Addr, e.ClientHost, e.Port = u.c.addr, u.c.host, u.c.port
	return true
}

// receivedDisconnect parses "<addr> port <n>:<code>: <client text>". The
// client's text follows the address, so the address is read from the left.
func receivedDisconnect(rest string, e *Event, preauth bool) bool {
	c, tail, ok := headAddrPort(rest)
	if !ok {
		// Old OpenSSH: "Received disconnect from 1.2.3.4: 11: Bye Bye".
		i := strings.IndexByte(rest, ':')
		if i < 0 {
			return false
		}
		if c, ok = parseClient(rest[:i]); !ok {
			return false
		}
		tail = rest[i:]
	}
	tail = strings.TrimPrefix(tail, ":")
	code, text, _ := strings.Cut(tail, ":")
	code = strings.TrimSpace(code)
	switch {
	case code == "3" && strings.Contains(text, "Auth fail"):
		set(e, KindFailure, "auth_fail_disconnect", c)
	case code == "14":
		set(e, KindFailure, "no_auth_methods", c)
	case preauth:
		set(e, KindProbe, "received_disconnect_preauth", c)
	default:
		set(e, KindNotice, "received_disconnect", c)
	}
	return true
}

// connectionFrom parses the verbose "Connection from <addr> port <n> on
// <addr> port <n>[ rdomain ...]" line: it names the connection's client.
func connectionFrom(rest string, e *Event) bool {
	c, tail, ok := headAddrPort(rest)
	if !ok {
		return false
	}
	if !strings.HasPrefix(tail, " on ") {
		// ssh_dispatch_run_fatal-like "Connection from ... : reason" is
		// handled elsewhere; anything else is not ours.
		return false
	}
	set(e, KindNotice, "connection_from", c)
	return true
}

// patchedConnection parses the connection line of patched builds:
// "SSH: Server;Ltype: Version;Remote: <addr>-<port>;Protocol: 2.0;Client:
// <client version>". Only the client version, last, is the client's text.
func patchedConnection(rest string, e *Event) bool {
	_, rest, ok := strings.Cut(rest, ";Remote: ")
	if !ok {
		return false
	}
	remote, _, _ := strings.Cut(rest, ";")
	i := strings.LastIndexByte(remote, '-')
	if i < 0 {
		return false
	}
	c, ok := parseClient(remote[:i])
	port, okp := atoiPort(remote[i+1:])
	if !ok || !okp {
		return false
	}
	c.port = port
	set(e, KindNotice, "connection_from", c)
	return true
}

// headProbe parses "<addr> port <n><anything>" into a probe.
func headProbe(rest string, e *Event, reason string) bool {
	c, _, ok := headAddrPort(rest)
	if !ok {
		return false
	}
	set(e, KindProbe, reason, c)
	return true
}

// tailProbe parses "<addr>[ port <n>]" into a probe.
func tailProbe(rest string, e *Event, reason string) bool {
	c, tail, ok := headAddrPort(rest)
	if !ok || tail != "" {
		if c, ok = parseClient(rest); !ok {
			return false
		}
	}
	set(e, KindProbe, reason, c)
	return true
}

// tailProbeFrom parses "<client text>' from <addr>[ port <n>]".
func tailProbeFrom(rest string, e *Event, reason string) bool {
	_, c, ok := tailAddrPort(rest, "' from ")
	if !ok {
		_, c, ok = tailAddr(rest, "' from ")
	}
	if !ok {
		return false
	}
	set(e, KindProbe, reason, c)
	return true
}

// dispatchFatal parses "[authenticating|invalid user <user> ]<addr> port
// <n>: <ssh error>" after "ssh_dispatch_run_fatal: Connection from ".
func dispatchFatal(rest string, e *Event) bool {
	i := strings.LastIndex(rest, ": ")
	if i < 0 {
		return false
	}
	head, c, ok := tailAddrPort(rest[:i], " ")
	if !ok {
		return false
	}
	set(e, KindProbe, "dispatch_fatal", c)
	if head != "" {
		user, invalid, ok := userPrefix(head)
		if !ok {
			return false
		}
		e.User, e.Invalid = user, invalid
	}
	return true
}

// penaltyDrop parses OpenSSH 9.8's "<n> from [<addr>]:<port> on
// [<addr>]:<port> penalty: <why>" (or "past MaxStartups").
func penaltyDrop(rest string, e *Event) bool {
	_, rest, ok := strings.Cut(rest, " from [")
	if !ok {
		return false
	}
	a, rest, ok := strings.Cut(rest, "]:")
	if !ok {
		return false
	}
	c, ok := parseClient(a)
	if !ok {
		return false
	}
	if p, _, ok := strings.Cut(rest, " "); ok {
		c.port, _ = atoiPort(p)
	}
	// "past MaxStartups" (OpenSSH 9.8 and later: "past Maxstartups"): sshd
	// dropped the connection because too many were unauthenticated at
	// once: its load, not something this client did (during a flood the
	// dropped are often innocent), so it is a notice, never counted.
	if i := strings.Index(rest, "past Max"); i >= 0 && strings.EqualFold(rest[i:], "past MaxStartups") {
		set(e, KindNotice, "maxstartups_drop", c)
		return true
	}
	set(e, KindProbe, "penalty_drop", c)
	return true
}

// tcpWrappers parses "<name> (<addr>)" from libwrap.
func tcpWrappers(rest string, e *Event) bool {
	i := strings.LastIndex(rest, " (")
	if i < 0 || !strings.HasSuffix(rest, ")") {
		c, ok := parseClient(rest)
		if !ok {
			return false
		}
		set(e, KindFailure, "tcpwrappers_refused", c)
		return true
	}
	c, ok := parseClient(rest[i+2 : len(rest)-1])
	if !ok {
		return false
	}
	set(e, KindFailure, "tcpwrappers_refused", c)
	return true
}

// reverseMapping parses "<name> [<addr>] failed - POSSIBLE BREAK-IN ATTEMPT!".
func reverseMapping(rest string, e *Event) bool {
	i := strings.Index(rest, " [")
	j := strings.Index(rest, "] failed")
	if i < 0 || j < i {
		return false
	}
	c, ok := parseClient(rest[i+2 : j])
	if !ok {
		return false
	}
	set(e, KindNotice, "reverse_mapping_failed", c)
	return true
}

// breakIn parses "<addr> maps to <name>, but this does not map back to the
// address[ - POSSIBLE BREAK-IN ATTEMPT!]".
func breakIn(rest string, e *Event) bool {
	a, tail, ok := strings.Cut(rest, " maps to ")
	if !ok || !strings.Contains(tail, "does not map back") {
		return false
	}
	c, ok := parseClient(a)
	if !ok {
		return false
	}
	set(e, KindNotice, "reverse_mapping_mismatch", c)
	return true
}

// startingSession parses "shell on pts/0 for <user> from <addr> port <n> id 0".
func startingSession(rest string, e *Event) bool {
	i := strings.LastIndex(rest, " id ")
	if i < 0 {
		return false
	}
	head, c, ok := tailAddrPort(rest[:i], " from ")
	if !ok {
		return false
	}
	j := strings.Index(head, " for ")
	if j < 0 {
		return false
	}
	set(e, KindNotice, "starting_session", c)
	e.User = head[j+5:]
	return true
}

// sftpSession parses "<user> from [<addr>]" from sftp-server.
func sftpSession(rest string, e *Event, reason string) bool {
	user, c, ok := tailAddr(rest, " from ")
	if !ok {
		return false
	}
	set(e, KindTransfer, reason, c)
	e.User = user
	return true
}

// sftpOpen parses `<path>" flags <flags> mode <mode>`.
func sftpOpen(rest string, e *Event) bool {
	i := strings.LastIndex(rest, "\" flags ")
	if i < 0 {
		return false
	}
	e.Kind, e.Reason, e.Path = KindTransfer, "sftp_open", rest[:i]
	return true
}

// sftpClose parses `<path>" bytes read <r> written <w>`.
func sftpClose(rest string, e *Event) bool {
	i := strings.LastIndex(rest, "\" bytes read ")
	if i < 0 {
		return false
	}
	r, w, ok := strings.Cut(rest[i+13:], " written ")
	if !ok {
		return false
	}
	nr, err1 := strconv.ParseInt(r, 10, 64)
	nw, err2 := strconv.ParseInt(w, 10, 64)
	if err1 != nil || err2 != nil {
		return false
	}
	e.Kind, e.Reason, e.Path, e.Read, e.Wrote = KindTransfer, "sftp_close", rest[:i], nr, nw
	return true
}
