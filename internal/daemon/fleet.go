package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"time"

	"sshguard-go/internal/config"
	"sshguard-go/internal/engine"
	"sshguard-go/internal/share"
	"sshguard-go/internal/store"
)

// newSharer builds the fleet's ban sharing of cfg (nil when
// fleet.nats_url is off), reading its credential files now.
func (d *Daemon) newSharer(cfg *config.Config) (*share.Sharer, error) {
	f := cfg.Fleet
	if f.NATSURL == "" {
		return nil, nil
	}
	opts, err := share.Options(share.Credentials{CredsFile: f.CredsFile, NKeyFile: f.NKeyFile, TokenFile: f.TokenFile,
		User: f.User, PasswordFile: f.PasswordFile, CAFile: f.CAFile, CertFile: f.CertFile, KeyFile: f.KeyFile})
	if err != nil {
		return nil, err
	}
	sc := share.ShareConfig{URLs: f.URLs(), Name: f.HostName(), Stream: f.Stream, Replicas: f.Replicas, Share: f.Share, Apply: f.Apply,
		MaxAge: time.Duration(cfg.Ban.MaxBanTime), Options: opts, Instance: d.db.Instance(), SummaryEvery: d.summaryEvery}
	sh := share.NewSharer(sc, d.db, applier{d.guard}, d.log)
	if f.CountFleetwide {
		d := cfg.Detection
		sh.Counter = share.NewCounter(share.CountConfig{Name: sc.Name, Threshold: f.FleetThreshold, Window: time.Duration(f.FleetWindow),
			Quorum: f.FleetQuorum, HostCap: d.Threshold, V4Bits: d.IPv4Prefix, V6Bits: d.IPv6Prefix, WideV4: d.WideV4, WideV6: d.WideV6,
			MaxTracked: d.MaxTracked / 4, Horizons: fleetHorizons(f.FleetHorizons, d),
			Partitions: f.FleetPartitions, AllToAll: f.FleetPartitions == 0})
	}
	return sh, nil
}

// fleetHorizons are the fleet's horizons, each host counting there for at
// most this host's horizon of the same rank (else its threshold).
func fleetHorizons(hs []config.Horizon, d config.DetectionConfig) []share.FleetHorizon {
	out := make([]share.FleetHorizon, len(hs))
	for i, h := range hs {
		hostCap := d.Threshold
		if i < len(d.Horizons) {
			hostCap = d.Horizons[i].Threshold
		}
		out[i] = share.FleetHorizon{Window: time.Duration(h.Window), Threshold: h.Threshold, HostCap: hostCap}
	}
	return out
}

// share sets ec to write what the fleet must hear of this host's bans and
// unbans (with fleet.share on).
func (d *Daemon) share(ec *engine.Config, cfg *config.Config) {
	if d.sharer == nil || !cfg.Fleet.Share {
		return
	}
	if d.sharer.Counter != nil {
		ec.OnAttempt = d.sharer.Counter.Local
	}
	ec.Share = share.BanMessage
	ec.ShareUnban = share.UnbanMessage
	onBan := ec.OnBan
	ec.OnBan = func(origin string) {
		if onBan != nil {
			onBan(origin)
		}
		d.sharer.Wake()
	}
}

// applier enforces the others' bans through the engine's gate.
type applier struct{ g *engine.Guard }

func (a applier) BanRemote(ctx context.Context, bans []share.Remote) ([]string, []error) {
	reqs := make([]engine.Request, len(bans))
	for i, b := range bans {
		reqs[i] = engine.Request{Prefix: b.Prefix, Until: b.Until, Reason: b.Reason, Origin: engine.PeerOrigin(b.Host)}
	}
	_, errs := a.g.BanMany(ctx, reqs)
	return refusalCodes(errs), errs
}

func (a applier) UnbanRemote(ctx context.Context, p netip.Prefix, host string) (bool, error) {
	err := a.g.UnbanRemote(ctx, p, engine.PeerOrigin(host))
	switch {
	case errors.Is(err, engine.ErrNotTheirs), errors.Is(err, store.ErrNotFound):
		return true, nil
	case err != nil:
		return false, err
	}
	return false, nil
}

func (a applier) BanHere(ctx context.Context, p netip.Prefix, reason string) (string, error) {
	_, errs := a.g.BanMany(ctx, []engine.Request{{Prefix: p, Reason: reason, Origin: engine.Fleetwide}})
	return refusalCodes(errs)[0], errs[0]
}

// refusalCodes are the gate's codes of errs ("" where an error is no
// refusal, or none).
func refusalCodes(errs []error) []string {
	codes := make([]string, len(errs))
	for i, err := range errs {
		var r *engine.Refusal
		if errors.As(err, &r) {
			codes[i] = r.Code
		}
	}
	return codes
}

// fleetStatus is the sharer's status as JSON for the control API (nil
// when the fleet is off).
func (d *Daemon) fleetStatus() (json.RawMessage, error) {
	if d.sharer == nil {
		return nil, nil
	}
	return json.Marshal(d.sharer.Status())
}
