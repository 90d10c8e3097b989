package daemon

import (
	"context"
	"errors"
	"os"
	"reflect"

	"sshguard-go/internal/config"
	"sshguard-go/internal/engine"
)

// Reload applies cfg in place: detection, ban policy, allowlist and alerts
// change, keeping counters, bans and the outbox (channels are rebuilt, so
// a rotated secret file is read again). The log source, firewall, state,
// metrics and API settings take effect at the next start (a warning says so).
// When the new channels cannot be built, the alert settings stay as they
// were and the rest still applies; the error says what was kept.
func (d *Daemon) Reload(ctx context.Context, cfg *config.Config) error {
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	old := d.cfg.Load()
	next := *cfg
	for _, w := range next.Warnings() {
		d.log.Warn("reload: " + w)
	}
	ec := engineConfig(&next, d.worker.Wake, d.countBan)
	d.share(&ec, old) // the fleet's settings take effect at the next start
	chans, chanErr := next.Alerts.Channels()
	if chanErr != nil {
		d.log.Error("reload: alert channels and settings not changed", "err", chanErr)
		next.Alerts = old.Alerts
		ec.Alerts = onlyChannels(ec.Alerts, d.chans)
	} else {
		d.chans = chans
		d.worker.Reconfigure(d.workerConfig(&next), chans)
		d.log.Info("reloaded alerts", "channels", channelNames(chans))
	}
	var deferred *engine.Deferred
	if errors.As(d.guard.Reconfigure(ec), &deferred) {
		dt, was := &next.Detection, old.Detection
		if deferred.Limits {
			d.log.Warn("reload: [detection] threshold, wide_threshold, failure_weight and probe_weight take effect at the next start: "+
				"the new ones need more remembered attempts per address than this run made room for; the old ones stay in force",
				"need", deferred.Need, "room", deferred.Room)
			dt.Threshold, dt.WideThreshold, dt.FailureWeight, dt.ProbeWeight = was.Threshold, was.WideThreshold, was.FailureWeight, was.ProbeWeight
		}
		if deferred.Horizons {
			d.log.Warn("reload: [detection] horizons, network_horizons and the network prefixes take effect at the next start")
			dt.Horizons, dt.NetworkHorizons, dt.NetworkV4, dt.NetworkV6 = was.Horizons, was.NetworkHorizons, was.NetworkV4, was.NetworkV6
		}
	}
	if next.Log != old.Log || next.Firewall != old.Firewall || next.State != old.State || next.Metrics != old.Metrics || next.API != old.API || next.Audit != old.Audit || !reflect.DeepEqual(next.Fleet, old.Fleet) {
		d.log.Warn("reload: [log], [firewall], [state], [metrics], [api], [audit] and [fleet] changes take effect at the next start")
		next.Log, next.Firewall, next.State, next.Metrics, next.API, next.Audit, next.Fleet = old.Log, old.Firewall, old.State, old.Metrics, old.API, old.Audit, old.Fleet
	}
	d.cfg.Store(&next)
	n, err := d.svc.setConfigAllow(ctx, next.AllowPrefixes(ctx, d.warn))
	if err != nil {
		d.log.Error("reload", "err", err)
		return err
	}
	d.log.Info("reloaded allowlist", "entries", n)
	return chanErr
}

// ReloadOn reloads with what load reads each time a value comes on
// signals (SIGHUP), until ctx ends; a file that does not load leaves the
// configuration as it is (logged).
func (d *Daemon) ReloadOn(ctx context.Context, signals <-chan os.Signal, load func() (*config.Config, error)) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-signals:
			if c, err := load(); err != nil {
				d.log.Error("reload: configuration not changed", "err", err)
			} else {
				d.Reload(ctx, c) // logs what it could not apply
			}
		}
	}
}
