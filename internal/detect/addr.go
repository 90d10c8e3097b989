package detect

import (
	"net/netip"
	"strings"
)

// client is where sshd said a connection came from.
type client struct {
	addr netip.Addr
	host string // a name, when sshd logged one (UseDNS yes)
	port int
}

func (c client) valid() bool { return c.addr.IsValid() || c.host != "" }

// addrOnly is c without a host name: for the fields where a name stands
// for no one (PAM's rhost=), the connection's address is taken instead.
func (c client) addrOnly() client {
	if !c.addr.IsValid() {
		return client{}
	}
	return c
}

func (c client) same(o client) bool { return c.addr == o.addr && c.host == o.host }

// parseClient parses an address token: IPv4, IPv6 (zone and brackets
// allowed, IPv4-mapped unmapped) or a DNS name. It refuses anything else, so
// that a word of attacker text is never taken for a host.
func parseClient(tok string) (client, bool) {
	if len(tok) > 1 && tok[0] == '[' && tok[len(tok)-1] == ']' {
		tok = tok[1 : len(tok)-1]
	}
	if tok == "" || len(tok) > 253 {
		return client{}, false
	}
	for i := 0; i < len(tok); i++ {
		if tok[i] <= ' ' || tok[i] >= 0x7f {
			return client{}, false
		}
	}
	if i := strings.IndexByte(tok, '%'); i >= 0 && !zoneName(tok[i+1:]) {
		return client{}, false
	}
	if a, err := netip.ParseAddr(tok); err == nil {
		return client{addr: a.Unmap()}, true // an IPv6 zone (fe80::1%eth0) is kept: it says which link
	}
	letter := false
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		switch {
		case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			letter = true
		case c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_':
		default:
			return client{}, false
		}
	}
	if !letter || tok == "UNKNOWN" || tok[0] == '.' || tok[0] == '-' {
		return client{}, false
	}
	return client{host: tok}, true
}

// zoneName reports whether z looks like an interface name.
func zoneName(z string) bool {
	if z == "" || len(z) > 15 {
		return false
	}
	for i := 0; i < len(z); i++ {
		c := z[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// atoiPort parses a decimal port 0..65535.
func atoiPort(s string) (int, bool) {
	if s == "" || len(s) > 5 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, n <= 65535
}

// tailAddrPort parses s ending in "<sep><addr> port <n>" from the right and
// returns what precedes sep. sep is " from " or " ". Because sshd writes the
// address after any attacker text, the rightmost match is the real one as
// long as nothing attacker-controlled follows; callers strip sshd's fixed
// suffixes first.
func tailAddrPort(s, sep string) (head string, c client, ok bool) {
	// Digits follow the last space, and " port" precedes it; an address
	// never contains a space, so this is the last " port " of the line.
	i := strings.LastIndexByte(s, ' ')
	if i < 5 || s[i-5:i] != " port" {
		return "", client{}, false
	}
	port, ok := atoiPort(s[i+1:])
	if !ok {
		return "", client{}, false
	}
	head, c, ok = tailAddr(s[:i-5], sep)
	c.port = port
	return head, c, ok
}

// tailAddr parses s ending in "<sep><addr>" and returns what precedes sep.
// When sep is " " and s is only an address, head is "". sep must start
// and end with a space.
func tailAddr(s, sep string) (head string, c client, ok bool) {
	j := strings.LastIndexByte(s, ' ')
	tok := s
	if j >= 0 {
		tok = s[j+1:]
		start := j + 1 - len(sep)
		if start < 0 || s[start:j+1] != sep {
			return "", client{}, false
		}
		head = s[:start]
	} else if sep != " " {
		return "", client{}, false
	}
	c, ok = parseClient(tok)
	return head, c, ok
}

// headAddrPort parses s starting with "<addr> port <n>" and returns the rest.
// It is for shapes where attacker text follows the address (a client's
// disconnect message or version string), so the leftmost match is the real
// one.
func headAddrPort(s string) (c client, rest string, ok bool) {
	sp := strings.IndexByte(s, ' ')
	if sp < 0 {
		return client{}, "", false
	}
	c, ok = parseClient(s[:sp])
	if !ok || !strings.HasPrefix(s[sp:], " port ") {
		return client{}, "", false
	}
	r := s[sp+6:]
	n := 0
	for n < len(r) && r[n] >= '0' && r[n] <= '9' {
		n++
	}
	c.port, ok = atoiPort(r[:n])
	return c, r[n:], ok
}

// userPrefix splits "invalid user X", "authenticating user X" or "user X".
func userPrefix(s string) (user string, invalid, ok bool) {
	switch {
	case strings.HasPrefix(s, "invalid user "):
		return s[13:], true, true
	case strings.HasPrefix(s, "authenticating user "):
		return s[20:], false, true
	case strings.HasPrefix(s, "user "):
		return s[5:], false, true
	case strings.HasPrefix(s, "illegal user "):
		return s[13:], true, true
	}
	return "", false, false
}

// unique is the result of looking at every place a separator occurs when
// attacker text may stand on both sides of the address.
type unique struct {
	c         client
	head      string
	tail      string
	n         int  // candidates that parsed
	ambiguous bool // candidates disagreed on the address
}

// eachSep calls parse for every split of s around sep and collects the
// distinct client addresses that parse found.
func eachSep(s, sep string, parse func(head, tail string) (client, bool)) unique {
	var u unique
	for off := 0; ; {
		i := strings.Index(s[off:], sep)
		if i < 0 {
			return u
		}
		i += off
		head, tail := s[:i], s[i+len(sep):]
		if c, ok := parse(head, tail); ok {
			if u.n > 0 && !u.c.same(c) {
				u.ambiguous = true
			}
			if u.n == 0 {
				u.c, u.head, u.tail = c, head, tail
			}
			u.n++
		}
		off = i + 1
	}
}
