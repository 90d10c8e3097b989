package ban

import (
	"net/netip"
	"time"
)

// NFTConfig configures the nftables adapter. The zero value means: table
// "sshguard-go" in the current network namespace, input hook at priority
// -10.
type NFTConfig struct {
	Table string // default "sshguard-go"
	// Priority is the hook priority; nil is the default -10. A pointer:
	// 0 is a priority of its own (nftables' "filter").
	Priority *int
	// Forward also hooks the forward chain, for hosts that route to
	// containers or VMs.
	Forward bool
	// CutConnections deletes the conntrack entries of a newly banned
	// source, so its established connections end at once. Off by default:
	// the input chain already drops every packet of a banned source, and
	// a cut connection cannot be resumed after an unban.
	CutConnections bool
	// IPv4Bits and IPv6Bits are the prefix lengths the daemon bans by
	// (default 32 and 64). Bans of exactly these lengths go into hash sets
	// keyed by the masked address, whose insert time does not grow with
	// the number of bans; bans of other lengths into interval sets.
	IPv4Bits, IPv6Bits int
	// NetNSFd, when non-zero, is an open network namespace to work in
	// (tests use a fresh one).
	NetNSFd int
}

// Element is a ban as the kernel holds it.
type Element struct {
	Prefix  netip.Prefix
	Timeout time.Duration // 0: permanent
	Expires time.Duration // time left; 0 for permanent elements
}
