// Package ban decides and enforces bans: the sliding-window counter per
// client key (Window, ClientKey), how long a ban lasts (Policy), who is
// never banned (Allowlist), and the nftables adapter that holds banned
// prefixes in kernel sets with kernel-side expiry (NFTSet).
package ban
