package ban

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// maxCut bounds the prefixes whose connections are cut in one Ban: cutting
// dumps the whole conntrack table, which is right for a live ban but not
// for the 100,000 bans restored at start.
const maxCut = 256

// conntrackHandle opens a netfilter netlink handle in the configured
// network namespace.
func conntrackHandle(cfg NFTConfig) (*netlink.Handle, error) {
	if cfg.NetNSFd != 0 {
		return netlink.NewHandleAt(netns.NsHandle(cfg.NetNSFd), unix.NETLINK_NETFILTER)
	}
	return netlink.NewHandle(unix.NETLINK_NETFILTER)
}

// cutConnections deletes the conntrack entries whose original source lies
// in one of prefixes, so established connections of a newly banned client
// end at once instead of hanging. It returns how many were deleted.
func cutConnections(h *netlink.Handle, prefixes []netip.Prefix) (uint, error) {
	var total uint
	for _, fam := range []struct {
		family netlink.InetFamily
		is4    bool
	}{{netlink.FAMILY_V4, true}, {netlink.FAMILY_V6, false}} {
		var filters []netlink.CustomConntrackFilter
		for _, p := range prefixes {
			if p.Addr().Is4() != fam.is4 {
				continue
			}
			f := &netlink.ConntrackFilter{}
			ipnet := &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
			if err := f.AddIPNet(netlink.ConntrackOrigSrcIP, ipnet); err != nil {
				return total, err
			}
			filters = append(filters, f)
		}
		if len(filters) == 0 {
			continue
		}
		n, err := h.ConntrackDeleteFilters(netlink.ConntrackTable, fam.family, filters...)
		total += n
		if err != nil {
			return total, fmt.Errorf("conntrack: %w", err)
		}
	}
	return total, nil
}
