package config

import (
	"slices"
	"strings"
	"time"
)

// FleetConfig is the sharing of bans across a fleet through NATS
// JetStream; off while NATSURL is "".
type FleetConfig struct {
	NATSURL      string `toml:"nats_url"` // one URL or several, comma-separated
	Name         string `toml:"name"`     // this host in the fleet ("" = the host name)
	CredsFile    string `toml:"creds_file"`
	NKeyFile     string `toml:"nkey_file"`
	TokenFile    string `toml:"token_file"`
	User         string `toml:"user"`
	PasswordFile string `toml:"password_file"`
	CAFile       string `toml:"ca_file"`
	CertFile     string `toml:"cert_file"`
	KeyFile      string `toml:"key_file"`
	Stream       string `toml:"stream"`
	// Replicas is how many servers of a NATS cluster hold the stream and
	// the summaries' bucket (1 to 5; 3 for a cluster of three).
	Replicas    int  `toml:"replicas"`
	Share       bool `toml:"share"` // publish this host's bans and unbans
	Apply       bool `toml:"apply"` // enforce the others'
	MinPrefixV4 int  `toml:"min_prefix_v4"`
	MinPrefixV6 int  `toml:"min_prefix_v6"`
	// MaxPeerBans is how many bans one other host may have in force here
	// at once: a compromised member cannot grow this host's kernel set
	// and database without end (an IPv6 /64 a ban).
	MaxPeerBans int `toml:"max_peer_bans"`
	// Fleet-wide counting: attempts counted on every host add up per
	// address in a second window; the host whose count reaches
	// FleetThreshold bans and shares.
	CountFleetwide bool     `toml:"count_fleetwide"`
	FleetThreshold float64  `toml:"fleet_threshold"`
	FleetWindow    Duration `toml:"fleet_window"`
	// FleetQuorum is how many hosts must have seen an address's attempts
	// before the fleet's count bans it: one member alone never decides.
	FleetQuorum int `toml:"fleet_quorum"`
	// FleetHorizons are longer fleet windows (at most 2): a slow attacker
	// spread over hosts and days.
	FleetHorizons []Horizon `toml:"fleet_horizons"`
	// FleetPartitions is how many parts the addresses are hashed to when
	// the servers can pin one counting host per part (NATS 2.11+): each
	// part counted on one host at a time. 0: all-to-all always.
	FleetPartitions int `toml:"fleet_partitions"`
}

// maxQuorum is the largest fleet_quorum (the hosts kept per address).
const maxQuorum = 4

// maxPartitions is the most fleet_partitions (a durable consumer each).
const maxPartitions = 256

func defaultFleet() FleetConfig {
	return FleetConfig{Stream: "SSHGUARD_BANS", Replicas: 1, Share: true, Apply: true, MinPrefixV4: 24, MinPrefixV6: 48, MaxPeerBans: 100_000,
		FleetThreshold: 20, FleetWindow: Duration(time.Hour), FleetQuorum: 2, FleetPartitions: 16,
		FleetHorizons: []Horizon{{Duration(24 * time.Hour), 12}, {Duration(7 * 24 * time.Hour), 16}}}
}

// HostName is this host's name in the fleet.
func (f FleetConfig) HostName() string {
	if f.Name != "" {
		return f.Name
	}
	return ShortHostname()
}

// URLs are the NATS servers to connect to.
func (f FleetConfig) URLs() []string {
	var out []string
	for _, u := range strings.Split(f.NATSURL, ",") {
		if u = strings.TrimSpace(u); u != "" {
			out = append(out, u)
		}
	}
	return out
}

// hasSecrets reports whether nats_url carries credentials
// (nats://user:password@host, nats://TOKEN@host).
func (f FleetConfig) hasSecrets() bool {
	return slices.ContainsFunc(f.URLs(), hasUserinfo)
}

// masked returns a copy with the credentials of nats_url masked.
func (f FleetConfig) masked() FleetConfig {
	urls := strings.Split(f.NATSURL, ",")
	for i, u := range urls {
		urls[i] = maskUserinfo(u)
	}
	f.NATSURL = strings.Join(urls, ",")
	return f
}

func (f FleetConfig) validate(bad func(key, format string, args ...any)) {
	if f.MinPrefixV4 < 1 || f.MinPrefixV4 > 32 {
		bad("fleet.min_prefix_v4", "must be in [1, 32], is %d", f.MinPrefixV4)
	}
	if f.MinPrefixV6 < 1 || f.MinPrefixV6 > 128 {
		bad("fleet.min_prefix_v6", "must be in [1, 128], is %d", f.MinPrefixV6)
	}
	if f.MaxPeerBans < 1 || f.MaxPeerBans > 10_000_000 {
		bad("fleet.max_peer_bans", "must be in [1, 10000000], is %d", f.MaxPeerBans)
	}
	if f.Replicas < 1 || f.Replicas > 5 {
		bad("fleet.replicas", "must be in [1, 5] (3 for a cluster of three servers), is %d", f.Replicas)
	}
	if f.NATSURL == "" {
		return
	}
	for _, u := range f.URLs() {
		if !strings.Contains(u, "://") {
			bad("fleet.nats_url", "%q: want nats://host:4222 (or tls://, several comma-separated)", maskUserinfo(u))
		} else if !validURLPort(u) {
			bad("fleet.nats_url", "%q: the port must be 1 to %d", maskUserinfo(u), maxPort)
		}
	}
	if n := f.HostName(); !ValidFleetName(n) {
		bad("fleet.name", "%q: want letters, digits, '-' or '_' (it is a subject token)", n)
	}
	if !ValidFleetName(f.Stream) {
		bad("fleet.stream", "%q: want letters, digits, '-' or '_'", f.Stream)
	}
	if (f.CertFile == "") != (f.KeyFile == "") {
		bad("fleet.cert_file", "cert_file and key_file go together")
	}
	if f.User != "" && f.PasswordFile == "" {
		bad("fleet.password_file", "user needs password_file")
	}
	if f.CountFleetwide {
		if !(f.FleetThreshold >= 1 && f.FleetThreshold <= maxThreshold) {
			bad("fleet.fleet_threshold", "must be a number in [1, %g], is %g", maxThreshold, f.FleetThreshold)
		}
		if f.FleetQuorum < 1 || f.FleetQuorum > maxQuorum {
			bad("fleet.fleet_quorum", "must be in [1, %d], is %d", maxQuorum, f.FleetQuorum)
		}
		if f.FleetPartitions < 0 || f.FleetPartitions > maxPartitions {
			bad("fleet.fleet_partitions", "must be in [0, %d] (0: all-to-all), is %d", maxPartitions, f.FleetPartitions)
		}
		if len(f.FleetHorizons) > 2 {
			bad("fleet.fleet_horizons", "at most 2, are %d", len(f.FleetHorizons))
		}
		for i, h := range f.FleetHorizons {
			if h.Window < Duration(time.Hour) || h.Window > Duration(90*24*time.Hour) {
				bad("fleet.fleet_horizons", "[%d]: window must be 1h to 90d, is %s", i, h.Window)
			}
			if !(h.Threshold >= 1 && h.Threshold <= 1000) {
				bad("fleet.fleet_horizons", "[%d]: threshold must be a number in [1, 1000], is %g", i, h.Threshold)
			}
		}
	}
}
