package daemon

import (
	"context"
	"time"

	sdaemon "github.com/coreos/go-systemd/v22/daemon"
)

// maintain runs the periodic duties every 2 s until ctx ends: save the
// read position and the hourly counts, flush records held for an address
// on an idle log, restore the table if someone deleted it (a missing table
// is noticed within 5 s), and ping the systemd watchdog.
func (d *Daemon) maintain(ctx context.Context) error {
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	watchdog, _ := sdaemon.SdWatchdogEnabled(false)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		d.pipe.savePosition()
		if err := d.guard.FlushCounts(); err != nil {
			d.log.Error("save counts", "err", err)
		}
		d.pipe.flushIdle()
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
