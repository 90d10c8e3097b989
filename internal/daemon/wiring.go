package daemon

import (
	"slices"
	"time"

	"sshguard-go/internal/alert"
	"sshguard-go/internal/ban"
	"sshguard-go/internal/config"
	"sshguard-go/internal/engine"
)

// engineConfig maps the configuration onto the engine's settings; wake is
// called when an alert was written, onBan for every ban (both may be nil).
func engineConfig(cfg *config.Config, wake func(), onBan func(origin string)) engine.Config {
	d, b := cfg.Detection, cfg.Ban
	return engine.Config{
		FailureWeight: d.FailureWeight, ProbeWeight: d.ProbeWeight, V4Bits: d.IPv4Prefix, V6Bits: d.IPv6Prefix,
		WideV4: d.WideV4, WideV6: d.WideV6, Wide: ban.WindowConfig{Threshold: d.WideThreshold},
		Window: ban.WindowConfig{Window: time.Duration(d.Window), Threshold: d.Threshold, MaxTracked: d.MaxTracked, Horizons: horizons(d.Horizons)},
		NetV4:  d.NetworkV4, NetV6: d.NetworkV6, NetHorizons: horizons(d.NetworkHorizons),
		Policy: ban.Policy{BanTime: time.Duration(b.BanTime), Factor: b.Factor, MaxBanTime: time.Duration(b.MaxBanTime),
			Remember: time.Duration(b.Remember), PermanentAfter: b.PermanentAfter},
		Alerts: cfg.Alerts.Policy(), Wake: wake, OnBan: onBan, Loc: cfg.Alerts.Location(),
		PeerMinV4: cfg.Fleet.MinPrefixV4, PeerMinV6: cfg.Fleet.MinPrefixV6, PeerMaxBans: cfg.Fleet.MaxPeerBans,
		DryRun: cfg.Firewall.Backend == "none",
	}
}

// EngineConfig is the engine's configuration for cfg, as the daemon runs
// it, without the daemon's wake-up and ban callbacks: for a replay of a
// log outside the daemon (scripts/slowcompare).
func EngineConfig(cfg *config.Config) engine.Config { return engineConfig(cfg, nil, nil) }

// horizons maps the configuration's horizons onto the window's.
func horizons(hs []config.Horizon) []ban.Horizon {
	out := make([]ban.Horizon, len(hs))
	for i, h := range hs {
		out[i] = ban.Horizon{Window: time.Duration(h.Window), Threshold: h.Threshold}
	}
	return out
}

// nftConfig is the firewall part of cfg, with the prefix lengths bans are
// made by (the kernel sets are laid out for them).
func nftConfig(cfg *config.Config) ban.NFTConfig {
	f := cfg.Firewall
	return ban.NFTConfig{Table: f.Table, Priority: &f.Priority, Forward: f.Forward, CutConnections: f.CutConnections,
		IPv4Bits: cfg.Detection.IPv4Prefix, IPv6Bits: cfg.Detection.IPv6Prefix}
}

// channelNames lists the channels' names.
func channelNames(chans []alert.Channel) []string {
	names := make([]string, len(chans))
	for i, c := range chans {
		names[i] = c.Name()
	}
	return names
}

// onlyChannels drops the routes to channels not among chans (the
// channels running when a reload could not build the new ones).
func onlyChannels(p *alert.Policy, chans []alert.Channel) *alert.Policy {
	q := *p
	q.Routes = slices.DeleteFunc(slices.Clone(p.Routes), func(r alert.Route) bool {
		return !slices.Contains(channelNames(chans), r.Channel)
	})
	return &q
}
