package detect

import "strings"

// Correlator joins the lines of one sshd connection (same host, program and
// pid; sshd, sshd-session and sshd-auth are one program, since one process
// keeps its pid as it executes the next) so that one guess counts once, and
// lines without an address borrow their connection's.
//
// The counting rules, per connection:
//   - a "Failed <method>" line counts an attempt, unless a line announcing
//     that same guess (pam_unix authentication failure, "error: PAM:",
//     "Invalid user", "User ... not allowed") already counted it;
//   - such an announcing line counts an attempt, unless one is already open;
//   - rsyslog's "message repeated N times: [ <line>]" counts as N more
//     of the line (N bounded by MaxRepeat);
//   - PAM's "PAM n more authentication failures" is pam_unix's tally of
//     the connection (n+1 failures): it counts what the connection's lines
//     have not counted, nothing when they counted as many;
//   - summary lines (Connection closed by invalid user, maximum
//     authentication attempts exceeded, Too many authentication failures,
//     a PAM tally on a line without a pid, ...) count one attempt only when
//     the connection has counted none, because they repeat what was counted;
//   - probes count once per connection, and not at all when it counted a
//     failure: a probe counted before the connection's first failure (a
//     client that offered a key, then closed as an authenticating user)
//     is taken back by the line that counts that failure
//     (Event.TakesBackProbe), which still counts at once;
//   - after a successful login, closing lines are notices.
//
// Lines without a pid cannot be joined and count as their own connection;
// so do OpenSSH 9.8's "drop connection" lines, written by the listener.
//
// A failure or probe line that carries no address (kex_exchange_identification,
// "Disconnecting: Too many authentication failures") on a connection whose
// address is not yet known is held back until a later line of that
// connection names it (sshd writes it on the next line), at most HoldLines
// lines; the records after it are held too, so output keeps input order.
type Correlator struct {
	// MaxConns bounds the connections remembered; 0 means 20000.
	// Connections live in two generations of MaxConns/2: when the current
	// one fills, the previous one is forgotten whole, and a connection
	// seen again is moved to the current one, so the least recently seen
	// go first without scanning.
	MaxConns int
	// HoldLines bounds how many lines a record waits for its address; 0
	// means 200.
	HoldLines int

	conns map[connKey]*conn // current generation
	old   map[connKey]*conn // previous generation
	free  []*conn           // evicted connections, reused
	slab  []conn            // connections allocated in bulk
	queue []held            // records not yet emitted, in input order, from head
	head  int
	seq   int64  // lines seen
	host  string // the last host name cloned, reused for the next key

	lastKey  connKey // the connection of the previous line: runs of
	lastConn *conn   // lines from one connection skip the map
}

type connKey struct {
	host, prog string
	pid        int
}

type conn struct {
	c        client
	attempts int  // counted failure attempts
	probes   int  // counted probes, not taken back by a failure
	open     bool // an announcing line counted a guess whose Failed line is due
	authed   bool // a login succeeded
	closed   bool // a closing line was seen
	last     int64
}

type held struct {
	r    Record
	key  connKey
	wait bool  // waiting for its connection's address
	seq  int64 // when it was added
}

// Add processes r and calls emit for every record that is ready, in input
// order. Add may change r; neither Add nor emit keeps the pointer.
func (k *Correlator) Add(r *Record, emit func(*Record)) {
	k.seq++
	if k.conns == nil {
		k.conns = make(map[connKey]*conn)
	}
	wait := false
	var key connKey
	// Penalty drops are written by the listener, whose pid is shared by
	// every connection: each stands alone.
	if r.PID != 0 && r.Reason != "penalty_drop" && r.Reason != "maxstartups_drop" {
		key = connKey{r.Host, connProgram(r.Program), r.PID}
		cn := k.lookup(key)
		c := client{addr: r.Addr, host: r.ClientHost, port: r.Port}
		if cn == nil || (c.valid() && cn.c.valid() && !cn.c.same(c)) || (cn.closed && starts(&r.Event)) {
			cn = k.insert(key)
		}
		if c.valid() && !cn.c.valid() {
			cn.c = c
			k.resolve(key, c)
		}
		cn.last = k.seq
		wait = k.count(cn, &r.Event)
	} else {
		// A tally without its connection cannot tell what was
		// counted already.
		r.tally = 0
		var cn conn
		k.count(&cn, &r.Event)
	}
	if k.head == len(k.queue) && !wait {
		emit(r)
		return
	}
	k.queue = append(k.queue, held{r: *r, key: key, wait: wait, seq: k.seq})
	k.queue[len(k.queue)-1].r.detach()
	k.release(emit, false)
}

// Flush emits every held record, with or without its address.
func (k *Correlator) Flush(emit func(*Record)) { k.release(emit, true) }

// Pending reports how many records are held back.
func (k *Correlator) Pending() int { return len(k.queue) - k.head }

func (k *Correlator) release(emit func(*Record), all bool) {
	hold := int64(k.HoldLines)
	if hold <= 0 {
		hold = 200
	}
	for k.head < len(k.queue) {
		h := &k.queue[k.head]
		if h.wait && !all && k.seq-h.seq < hold {
			break
		}
		emit(&h.r)
		*h = held{}
		k.head++
	}
	if k.head == len(k.queue) {
		k.queue, k.head = k.queue[:0], 0
	}
}

// resolve gives held records of key the address c.
func (k *Correlator) resolve(key connKey, c client) {
	for i := k.head; i < len(k.queue); i++ {
		h := &k.queue[i]
		if h.wait && h.key == key {
			h.r.Addr, h.r.ClientHost = c.addr, c.host
			if h.r.Port == 0 {
				h.r.Port = c.port
			}
			h.r.Ambiguous = false
			h.wait = false
		}
	}
}

// lookup finds key in either generation, moving it to the current one.
func (k *Correlator) lookup(key connKey) *conn {
	if k.lastConn != nil && key == k.lastKey {
		return k.lastConn
	}
	if cn := k.conns[key]; cn != nil {
		k.lastKey, k.lastConn = key, cn
		return cn
	}
	cn := k.old[key]
	if cn != nil {
		delete(k.old, key)
		k.put(key, cn)
		k.lastKey, k.lastConn = key, cn
	}
	return cn
}

func (k *Correlator) insert(key connKey) *conn {
	// lookup has moved key out of the old generation, if it was there.
	k.lastConn = nil
	if key.host != k.host {
		k.host = clone(key.host)
	}
	key.host, key.prog = k.host, clone(key.prog)
	var cn *conn
	if n := len(k.free); n > 0 {
		cn, k.free = k.free[n-1], k.free[:n-1]
		*cn = conn{}
	} else {
		if len(k.slab) == 0 {
			k.slab = make([]conn, 256)
		}
		cn, k.slab = &k.slab[0], k.slab[1:]
	}
	k.put(key, cn)
	k.lastKey, k.lastConn = key, cn
	return cn
}

// put adds cn to the current generation, retiring the previous one when
// the current is full.
func (k *Correlator) put(key connKey, cn *conn) {
	half := k.MaxConns / 2
	if half <= 0 {
		half = 10000
	}
	if len(k.conns) >= half {
		k.lastConn = nil
		for _, c := range k.old {
			k.free = append(k.free, c)
		}
		clear(k.old)
		k.old, k.conns = k.conns, k.old
		if k.conns == nil {
			k.conns = make(map[connKey]*conn, half)
		}
	}
	k.conns[key] = cn
}

// connProgram is the program a connection is keyed by: sshd's own
// programs are one, so that the lines of one process are one connection
// whichever of them wrote each (a connection's lines may name sshd-auth and
// sshd-session, and a process keeps its pid when it executes another).
func connProgram(p string) string {
	switch p {
	case "sshd-session", "sshd-auth":
		return "sshd"
	}
	return p
}

// clone copies s so that a long-lived map key does not pin a whole block of
// input; common host and program names are interned.
func clone(s string) string {
	switch s {
	case "", "sshd", "sshd-session", "sshd-auth":
		return s
	}
	return strings.Clone(s)
}

// starts reports whether e is a line that begins a connection's story (so a
// closed connection with the same pid must be a new one), as opposed to the
// lines that trail a close ("PAM 2 more authentication failures", session
// closed).
func starts(e *Event) bool {
	switch e.Reason {
	case "invalid_user", "user_not_allowed", "pam_auth_failure", "pam_user_unknown", "pam_error",
		"root_login_refused", "accepted", "connection_from", "kex_exchange_identification",
		"banner_exchange", "no_identification", "bad_protocol_version", "unable_to_negotiate":
		return true
	}
	return len(e.Reason) > 7 && e.Reason[:7] == "failed_"
}

// count applies the counting rules, fills a missing address from the
// connection, and reports whether the record must wait for an address.
func (k *Correlator) count(cn *conn, e *Event) (wait bool) {
	if !e.Addr.IsValid() && e.ClientHost == "" && cn.c.valid() {
		e.Addr, e.ClientHost = cn.c.addr, cn.c.host
		if e.Port == 0 {
			e.Port = cn.c.port
		}
		e.Ambiguous = false
	}
	switch e.Kind {
	case KindFailure:
		switch e.Reason {
		case "invalid_user", "user_not_allowed", "pam_auth_failure", "pam_user_unknown", "pam_error", "root_login_refused":
			switch {
			case e.Repeat > 0:
				// Repeated without a Failed line between them:
				// each stands for a guess of its own.
				e.Counted, cn.open = e.Repeat, true
				cn.attempts += e.Repeat
			case !cn.open:
				e.Counted, cn.open = 1, true
				cn.attempts++
			}
		case "closed_preauth_user", "reset_preauth_user", "disconnected_preauth_user", "max_auth_attempts",
			"too_many_auth_failures", "change_of_username", "pam_more_failures", "auth_fail_disconnect", "no_auth_methods":
			switch {
			case e.tally > 0:
				// PAM's tally of the connection: what its lines
				// have not counted yet (rotated away, or reduced by
				// the syslog daemon without the count).
				if n := e.tally - cn.attempts; n > 0 {
					e.Counted = n
					cn.attempts += n
				}
			case cn.attempts == 0:
				e.Counted = 1
				cn.attempts++
			}
			cn.open = false
		default: // failed_*, tcpwrappers_refused
			// One guess, or for rsyslog's "message repeated N times"
			// N more guesses like the line before; the first of them
			// ends a guess an announcing line counted.
			n := max(1, e.Repeat)
			if cn.open {
				cn.open = false
				n--
			}
			e.Counted = n
			cn.attempts += n
		}
		if e.Counted > 0 && cn.probes > 0 {
			// The connection failed: it counts as its failures.
			e.TakesBackProbe, cn.probes = true, 0
		}
	case KindProbe:
		if cn.authed {
			e.Kind = KindNotice
			break
		}
		if cn.probes == 0 && cn.attempts == 0 {
			e.Counted = 1
			cn.probes++
		}
	case KindSuccess:
		cn.authed, cn.open = true, false
	}
	switch e.Reason {
	case "closed_preauth", "reset_preauth", "disconnected_preauth", "closed_preauth_user", "reset_preauth_user",
		"disconnected_preauth_user", "closed", "reset", "disconnected", "disconnected_user", "closed_user",
		"reset_user", "auth_timeout", "no_identification":
		cn.closed = true
	}
	return (e.Kind == KindFailure || e.Kind == KindProbe) && !e.Addr.IsValid() && e.ClientHost == ""
}
