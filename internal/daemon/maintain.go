package daemon

import (
	"context"
	"sshguard-go/internal/config"
	"sshguard-go/internal/store"
	"time"

	sdaemon "github.com/coreos/go-systemd/v22/daemon"
)

// countsEvery is how often the hourly counts gathered in memory are
// merged into the store: each merge rewrites the hour's record (up to
// 5,000 addresses and users), so not every 2 s.
const countsEvery = time.Minute

// maintain runs the periodic duties every 2 s until ctx ends: save the
// read position, flush records held for an address on an idle log,
// restore the table if someone deleted it (a missing table is noticed
// within 5 s), ping the systemd watchdog; and every minute the hourly
// counts.
func (d *Daemon) maintain(ctx context.Context) error {
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	watchdog, _ := sdaemon.SdWatchdogEnabled(false)
	lastCounts := time.Now()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		d.pipe.savePosition()
		if time.Since(lastCounts) >= countsEvery {
			lastCounts = time.Now()
			if err := d.guard.FlushCounts(); err != nil {
				d.log.Error("save counts", "err", err)
			}
			d.guard.Prune()
		}
		d.pipe.flushIdle(context.WithoutCancel(ctx)) // a ban decided is written even while the daemon stops
		d.checkTable(ctx)
		if watchdog > 0 {
			d.notify(sdaemon.SdNotifyWatchdog)
		}
	}
}

// checkTable recreates the nftables table and restores every active ban
// when the table is gone (flushed or deleted by someone).
func (d *Daemon) checkTable(ctx context.Context) {
	if d.nft == nil {
		return
	}
	ok, err := d.nft.Exists()
	if err != nil {
		d.log.Error("check table", "err", err)
		return
	}
	if ok {
		return
	}
	d.log.Warn("nftables table missing (flushed or deleted?); restoring it and every active ban")
	if err := d.nft.Ensure(); err != nil {
		d.log.Error("restore table", "err", err)
	} else if n, err := d.guard.Restore(ctx); err != nil {
		d.log.Error("restore bans", "err", err)
	} else {
		d.log.Info("table restored", "bans", n)
	}
}

// retention is how long the store keeps what, by cfg.
func retention(cfg *config.Config) store.Retention {
	return store.Retention{History: time.Duration(cfg.State.History), Offenders: time.Duration(cfg.Ban.Remember),
		Logins: time.Duration(cfg.State.Logins), Counts: time.Duration(cfg.State.Counts), CountsDetail: time.Duration(cfg.State.CountsDetail),
		Sessions: time.Duration(cfg.State.Sessions)}
}

// housekeeping prunes the store by the retention settings at start and
// every hour until ctx ends, in small transactions, so that a year of
// uptime does not grow the file past what the retention keeps.
func (d *Daemon) housekeeping(ctx context.Context) error {
	tick := time.NewTicker(time.Hour)
	defer tick.Stop()
	for {
		start := time.Now()
		n, err := d.db.Prune(start, retention(d.cfg.Load()))
		if err != nil {
			d.log.Error("prune the state database", "err", err)
		} else if n > 0 {
			d.log.Info("pruned the state database", "records", n, "took", time.Since(start).Round(time.Millisecond).String())
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}
