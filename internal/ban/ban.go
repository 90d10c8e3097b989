// Package ban decides and enforces bans: the nftables adapter that holds
// banned prefixes in kernel sets with kernel-side expiry (NFTSet).
package ban
