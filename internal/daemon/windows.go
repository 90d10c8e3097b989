package daemon

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// windowsFile is where the daemon keeps, from its stop to its next start,
// what its windows counted (engine.Guard.SaveWindows): beside the state
// database, mode 0600.
func windowsFile(db string) string { return db + ".windows" }

// saveWindows writes what the windows counted, for the next start (a new
// file renamed over the old, so a stop cut short leaves none half
// written).
func (d *Daemon) saveWindows() {
	path := windowsFile(d.cfg.Load().State.DB)
	start := time.Now()
	err := func() error {
		f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*")
		if err != nil {
			return err
		}
		defer os.Remove(f.Name()) // gone once renamed
		if err := d.guard.SaveWindows(f); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		return os.Rename(f.Name(), path)
	}()
	if err != nil {
		d.log.Warn("the attempts counted are not kept for the next start", "file", path, "err", err)
		return
	}
	d.log.Info("kept the attempts counted for the next start", "clients", d.guard.Tracked(), "file", path, "took", time.Since(start).Round(time.Millisecond))
}

// loadWindows takes what the last stop kept, once (the file is removed:
// after a crash an older one must not come back), and says so; one of
// other detection settings, or damaged, is named and counting starts
// afresh.
func (d *Daemon) loadWindows() {
	path := windowsFile(d.cfg.Load().State.DB)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	if err != nil {
		d.log.Warn("the attempts counted before the stop are not read", "file", path, "err", err)
		return
	}
	defer os.Remove(path)
	defer f.Close()
	n, err := d.guard.LoadWindows(f)
	if err != nil {
		d.log.Warn("the attempts counted before the stop are not taken: counting starts afresh", "file", path, "err", fmt.Sprint(err))
		return
	}
	d.log.Info("took the attempts counted before the stop", "clients", n)
}
