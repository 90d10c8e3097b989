package detect

import "strings"

// classifyArms holds, for each first byte of a message, the function that
// reads the messages starting with it. An arm that does not match returns
// false and Classify goes on to the PAM module lines.
var classifyArms = [256]func(msg string, e *Event, preauth bool) bool{
	'F': classifyUpperF,
	'A': classifyUpperA,
	'P': classifyUpperP,
	'I': classifyUpperI,
	'U': classifyUpperU,
	'R': classifyUpperR,
	'C': classifyUpperC,
	'D': classifyUpperD,
	'B': classifyUpperB,
	'b': classifyLowerB,
	'k': classifyLowerK,
	'T': classifyUpperT,
	's': classifyLowerS,
	'S': classifyUpperS,
	'n': classifyLowerN,
	'd': classifyLowerD,
	'r': classifyLowerR,
	'o': classifyLowerO,
	'c': classifyLowerC,
	'm': classifyLowerM,
}

// classifyUpperF reads the messages that start with 'F'.
func classifyUpperF(msg string, e *Event, preauth bool) bool {
	if rest, ok := strings.CutPrefix(msg, "Failed "); ok {
		return authLine(rest, e, KindFailure)
	}
	return false
}

// classifyUpperA reads the messages that start with 'A'.
func classifyUpperA(msg string, e *Event, preauth bool) bool {
	if rest, ok := strings.CutPrefix(msg, "Accepted "); ok {
		return authLine(rest, e, KindSuccess)
	}
	if rest, ok := strings.CutPrefix(msg, "Address "); ok {
		return breakIn(rest, e)
	}
	return false
}

// classifyUpperP reads the messages that start with 'P'.
func classifyUpperP(msg string, e *Event, preauth bool) bool {
	return pamUpper(msg, e)
}

// classifyUpperI reads the messages that start with 'I'.
func classifyUpperI(msg string, e *Event, preauth bool) bool {
	if rest, ok := strings.CutPrefix(msg, "Invalid user "); ok {
		return invalidUser(rest, e)
	}
	if rest, ok := strings.CutPrefix(msg, "Illegal user "); ok {
		return invalidUser(rest, e)
	}
	return false
}

// classifyUpperU reads the messages that start with 'U'.
func classifyUpperU(msg string, e *Event, preauth bool) bool {
	if rest, ok := strings.CutPrefix(msg, "User "); ok {
		return notAllowed(rest, e)
	}
	if rest, ok := strings.CutPrefix(msg, "Unable to negotiate with "); ok {
		return headProbe(rest, e, "unable_to_negotiate")
	}
	if strings.HasPrefix(msg, "Unable to negotiate a ") {
		e.Kind, e.Reason = KindProbe, "unable_to_negotiate" // address from the connection
		return true
	}
	return false
}

// classifyUpperR reads the messages that start with 'R'.
func classifyUpperR(msg string, e *Event, preauth bool) bool {
	if rest, ok := strings.CutPrefix(msg, "ROOT LOGIN REFUSED FROM "); ok {
		return rootRefused(rest, e)
	}
	if rest, ok := strings.CutPrefix(msg, "Received disconnect from "); ok {
		return receivedDisconnect(rest, e, preauth)
	}
	if strings.HasPrefix(msg, "Read from socket failed: ") && preauth {
		// fatal: an older sshd's end of a connection before
		// authentication; the address comes from the connection.
		e.Kind, e.Reason = KindProbe, "read_failed_preauth"
		return true
	}
	return false
}

// classifyUpperC reads the messages that start with 'C'.
func classifyUpperC(msg string, e *Event, preauth bool) bool {
	if rest, ok := strings.CutPrefix(msg, "Connection closed by "); ok {
		return closedBy(rest, e, "closed", preauth)
	}
	if rest, ok := strings.CutPrefix(msg, "Connection reset by "); ok {
		return closedBy(rest, e, "reset", preauth)
	}
	if rest, ok := strings.CutPrefix(msg, "Connection from "); ok {
		return connectionFrom(rest, e)
	}
	return false
}

// classifyUpperD reads the messages that start with 'D'.
func classifyUpperD(msg string, e *Event, preauth bool) bool {
	if rest, ok := strings.CutPrefix(msg, "Disconnected from "); ok {
		return closedBy(rest, e, "disconnected", preauth)
	}
	if rest, ok := strings.CutPrefix(msg, "Disconnecting "); ok {
		return disconnecting(rest, e)
	}
	if rest, ok := strings.CutPrefix(msg, "Disconnecting: Too many authentication failures"); ok {
		e.Kind, e.Reason = KindFailure, "too_many_auth_failures"
		if u, ok := strings.CutPrefix(rest, " for "); ok {
			e.Invalid, e.User = cutInvalid(u)
		}
		return true
	}
	if rest, ok := strings.CutPrefix(msg, "Did not receive identification string from "); ok {
		return tailProbe(rest, e, "no_identification")
	}
	return false
}

// classifyUpperB reads the messages that start with 'B'.
func classifyUpperB(msg string, e *Event, preauth bool) bool {
	if rest, ok := strings.CutPrefix(msg, "Bad protocol version identification '"); ok && tailProbeFrom(rest, e, "bad_protocol_version") {
		// The client's version string stands on the left.
		return true
	}
	if rest, ok := strings.CutPrefix(msg, "Bad protocol version identification "); ok {
		// Older sshd: the version string unquoted, no port.
		_, c, ok := tailAddr(rest, " from ")
		if !ok {
			return false
		}
		set(e, KindProbe, "bad_protocol_version", c)
		return true
	}
	return false
}

// classifyLowerB reads the messages that start with 'b'.
func classifyLowerB(msg string, e *Event, preauth bool) bool {
	if rest, ok := strings.CutPrefix(msg, "banner exchange: Connection from "); ok {
		return headProbe(rest, e, "banner_exchange")
	}
	return false
}

// classifyLowerK reads the messages that start with 'k'.
func classifyLowerK(msg string, e *Event, preauth bool) bool {
	if strings.HasPrefix(msg, "kex_exchange_identification: ") {
		e.Kind, e.Reason = KindProbe, "kex_exchange_identification"
		return true
	}
	return false
}

// classifyUpperT reads the messages that start with 'T'.
func classifyUpperT(msg string, e *Event, preauth bool) bool {
	if rest, ok := strings.CutPrefix(msg, "Timeout before authentication for connection from "); ok {
		// OpenSSH 6.x: "... from <client> to <server>, pid = <n>".
		a, _, found := strings.Cut(rest, " to ")
		c, ok := parseClient(a)
		if !found || !ok {
			return false
		}
		set(e, KindProbe, "auth_timeout", c)
		return true
	}
	if rest, ok := strings.CutPrefix(msg, "Timeout before authentication for "); ok {
		return tailProbe(rest, e, "auth_timeout")
	}
	if strings.HasPrefix(msg, "Timeout before authentication") {
		e.Kind, e.Reason = KindProbe, "auth_timeout"
		return true
	}
	if rest, ok := strings.CutPrefix(msg, "Timeout, client not responding from "); ok {
		// ClientAliveCountMax reached: "[user <user> ]<addr> port <n>".
		head, c, ok := tailAddrPort(rest, " ")
		if !ok {
			return false
		}
		set(e, KindSessionClose, "timeout", c)
		if u, ok := strings.CutPrefix(head, "user "); ok {
			e.User = u
			e.Reason = "timeout_user"
		}
		return true
	}
	return false
}

// classifyLowerS reads the messages that start with 's'.
func classifyLowerS(msg string, e *Event, preauth bool) bool {
	if rest, ok := strings.CutPrefix(msg, "ssh_dispatch_run_fatal: Connection from "); ok {
		return dispatchFatal(rest, e)
	}
	if rest, ok := strings.CutPrefix(msg, "session opened for local user "); ok {
		return sftpSession(rest, e, "sftp_session_open")
	}
	if rest, ok := strings.CutPrefix(msg, "session closed for local user "); ok {
		return sftpSession(rest, e, "sftp_session_close")
	}
	return false
}

// classifyUpperS reads the messages that start with 'S'.
func classifyUpperS(msg string, e *Event, preauth bool) bool {
	if rest, ok := strings.CutPrefix(msg, "Starting session: "); ok {
		return startingSession(rest, e)
	}
	if rest, ok := strings.CutPrefix(msg, "SSH: Server;Ltype: "); ok {
		return patchedConnection(rest, e)
	}
	return false
}

// classifyLowerN reads the messages that start with 'n'.
func classifyLowerN(msg string, e *Event, preauth bool) bool {
	// fatal: "no matching mac found: client ... server ... [preauth]"
	// (and cipher, kex, host key): older sshd; the address comes
	// from the connection.
	if strings.HasPrefix(msg, "no matching ") && strings.Contains(msg, " found") {
		e.Kind, e.Reason = KindProbe, "unable_to_negotiate"
		return true
	}
	return false
}

// classifyLowerD reads the messages that start with 'd'.
func classifyLowerD(msg string, e *Event, preauth bool) bool {
	if rest, ok := strings.CutPrefix(msg, "drop connection #"); ok {
		return penaltyDrop(rest, e)
	}
	return false
}

// classifyLowerR reads the messages that start with 'r'.
func classifyLowerR(msg string, e *Event, preauth bool) bool {
	if rest, ok := strings.CutPrefix(msg, "refused connect from "); ok {
		return tcpWrappers(rest, e)
	}
	if rest, ok := strings.CutPrefix(msg, "reverse mapping checking getaddrinfo for "); ok {
		return reverseMapping(rest, e)
	}
	return false
}

// classifyLowerO reads the messages that start with 'o'.
func classifyLowerO(msg string, e *Event, preauth bool) bool {
	if rest, ok := strings.CutPrefix(msg, "open \""); ok {
		return sftpOpen(rest, e)
	}
	return false
}

// classifyLowerC reads the messages that start with 'c'.
func classifyLowerC(msg string, e *Event, preauth bool) bool {
	if rest, ok := strings.CutPrefix(msg, "close \""); ok {
		return sftpClose(rest, e)
	}
	return false
}

// classifyLowerM reads the messages that start with 'm'.
func classifyLowerM(msg string, e *Event, preauth bool) bool {
	if rest, ok := strings.CutPrefix(msg, "maximum authentication attempts exceeded for "); ok {
		return maxAttempts(rest, e)
	}
	return false
}
