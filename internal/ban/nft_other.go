//go:build !linux

package ban

import (
	"context"
	"errors"
	"net/netip"
)

// ErrNotSupported is returned by the nftables adapter on systems without
// nftables.
var ErrNotSupported = errors.New("nftables is only supported on Linux")

// NFTSet is unavailable on this system; every method fails.
type NFTSet struct{}

// NewNFTSet returns ErrNotSupported.
func NewNFTSet(NFTConfig) (*NFTSet, error) { return nil, ErrNotSupported }

func (*NFTSet) Ensure() error                               { return ErrNotSupported }
func (*NFTSet) Exists() (bool, error)                       { return false, ErrNotSupported }
func (*NFTSet) Ban(context.Context, []Element) error        { return ErrNotSupported }
func (*NFTSet) Unban(context.Context, []netip.Prefix) error { return ErrNotSupported }
func (*NFTSet) List() ([]Element, error)                    { return nil, ErrNotSupported }
func (*NFTSet) Close() error                                { return nil }
