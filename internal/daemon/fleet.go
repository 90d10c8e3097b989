package daemon

import (
	"context"
	"encoding/json"
	"net/netip"
	"time"

	"sshguard-go/internal/config"
	"sshguard-go/internal/engine"
	"sshguard-go/internal/share"
)

// newSharer builds the fleet's ban sharing of cfg (nil when
// fleet.nats_url is off), reading its credential files now.
func (d *Daemon) newSharer(cfg *config.Config) (*share.Sharer, error) {
	f := cfg.Fleet
	if f.NATSURL == "" {
		return nil, nil
	}
	opts, err := share.Options(f.CredsFile, f.NKeyFile, f.TokenFile, f.User, f.PasswordFile, f.CAFile, f.CertFile, f.KeyFile)
	if err != nil {
		return nil, err
	}
	sc := share.ShareConfig{URLs: f.URLs(), Name: f.HostName(), Stream: f.Stream, Share: f.Share, Apply: f.Apply,
		MinV4: f.MinPrefixV4, MinV6: f.MinPrefixV6, MaxAge: time.Duration(cfg.Ban.MaxBanTime), Options: opts, Instance: d.db.Instance()}
	sh := share.NewSharer(sc, d.db, applier{d.guard}, d.log)
	if f.CountFleetwide {
		sh.Counter = share.NewCounter(sc.Name, f.FleetThreshold, time.Duration(f.FleetWindow), cfg.Detection.MaxTracked)
	}
	return sh, nil
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

// applier enforces the others' bans through the engine.
type applier struct{ g *engine.Guard }

func (a applier) BanRemote(ctx context.Context, bans []share.Remote) []error {
	ms := make([]engine.Manual, len(bans))
	for i, b := range bans {
		ms[i] = engine.Manual{Prefix: b.Prefix, For: b.For, Reason: b.Reason, Origin: b.Origin}
	}
	_, errs := a.g.BanMany(ctx, ms)
	return errs
}

func (a applier) UnbanRemote(ctx context.Context, p netip.Prefix) error {
	return a.g.UnbanRemote(ctx, p)
}
func (a applier) Allowed(p netip.Prefix) bool { return a.g.Allowlisted(p) }

func (a applier) BanHere(ctx context.Context, p netip.Prefix, reason string) error {
	_, errs := a.g.BanMany(ctx, []engine.Manual{{Prefix: p, For: -1, Reason: reason, Origin: "fleetwide"}})
	return errs[0]
}

// fleetStatus is the sharer's status as JSON for the control API (nil
// when the fleet is off).
func (d *Daemon) fleetStatus() (json.RawMessage, error) {
	if d.sharer == nil {
		return nil, nil
	}
	return json.Marshal(d.sharer.Status())
}
