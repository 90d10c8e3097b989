package daemon

import (
	"context"
	"log/slog"
	"net/netip"
	"sync"

	"sshguard-go/internal/ban"
	"sshguard-go/internal/engine"
)

// logFirewall is the firewall of backend "none" (and --dry-run): it only
// logs, to log when not nil.
type logFirewall struct{ log *slog.Logger }

func (l logFirewall) Ban(_ context.Context, els []ban.Element) error {
	if l.log == nil {
		return nil
	}
	for _, e := range els {
		l.log.Info("dry run: would ban", "prefix", e.Prefix.String(), "for", e.Timeout.String())
	}
	return nil
}

func (l logFirewall) Unban(_ context.Context, ps []netip.Prefix) error {
	if l.log == nil {
		return nil
	}
	for _, p := range ps {
		l.log.Info("dry run: would unban", "prefix", p.String())
	}
	return nil
}

// lazyFirewall connects to nftables and makes sure the table exists at
// its first write, so a command that only reads never touches the kernel.
type lazyFirewall struct {
	cfg ban.NFTConfig
	mu  sync.Mutex // guards nft
	nft *ban.NFTSet
}

func (l *lazyFirewall) get() (*ban.NFTSet, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.nft != nil {
		return l.nft, nil
	}
	nft, err := ban.NewNFTSet(l.cfg)
	if err != nil {
		return nil, RootHint(err)
	}
	if err := nft.Ensure(); err != nil {
		nft.Close()
		return nil, RootHint(err)
	}
	l.nft = nft
	return nft, nil
}

func (l *lazyFirewall) Ban(ctx context.Context, els []ban.Element) error {
	nft, err := l.get()
	if err != nil {
		return err
	}
	return nft.Ban(ctx, els)
}

func (l *lazyFirewall) Unban(ctx context.Context, ps []netip.Prefix) error {
	nft, err := l.get()
	if err != nil {
		return err
	}
	return nft.Unban(ctx, ps)
}

// Close closes the connection, if one was made.
func (l *lazyFirewall) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.nft == nil {
		return nil
	}
	return l.nft.Close()
}

var (
	_ engine.Firewall = (*ban.NFTSet)(nil)
	_ engine.Firewall = logFirewall{}
	_ engine.Firewall = (*lazyFirewall)(nil)
)
