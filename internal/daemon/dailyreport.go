package daemon

import (
	"cmp"
	"context"
	"errors"
	"time"

	"sshguard-go/internal/alert"
	"sshguard-go/internal/config"
	"sshguard-go/internal/engine"
	"sshguard-go/internal/session"
	"sshguard-go/internal/store"
)

// dailyReports writes the daily report into the outbox once a day, at
// the configured hour in the configured time zone (if enabled), and keeps
// the alert history bounded; it checks once a minute until ctx ends. The
// settings are read afresh each time (a reload changes them).
func (d *Daemon) dailyReports(ctx context.Context) error {
	tick := time.NewTicker(time.Minute)
	defer tick.Stop()
	for {
		cfg := d.cfg.Load().Alerts
		if n, err := d.db.PruneAlerts(cfg.History); err != nil {
			d.log.Error("prune alert history", "err", err)
		} else if n > 0 {
			d.log.Info("pruned alert history", "deleted", n)
		}
		if cfg.DailyReport {
			if err := reportIfDue(d.db, cfg, d.worker, time.Now().In(cfg.Location())); err != nil {
				d.log.Error("daily report", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// reportIfDue enqueues the report of the 24 hours before now if now is
// past the report hour and today's report was not made yet.
func reportIfDue(db *store.DB, cfg config.AlertsConfig, w *alert.Worker, now time.Time) error {
	day := now.Format(time.DateOnly)
	var last string
	if err := db.Position("daily-report", &last); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if now.Hour() < cfg.ReportHour || last == day {
		return nil
	}
	r, err := buildReport(db, now.Add(-24*time.Hour), now)
	if err != nil {
		return err
	}
	if m := cfg.Policy().ReportMessage(r, now); m != nil {
		if _, err := w.Enqueue(m); err != nil {
			return err
		}
	}
	return db.SavePosition("daily-report", day)
}

// buildReport summarises [from, to) from the store.
func buildReport(db *store.DB, from, to time.Time) (alert.Report, error) {
	r := alert.Report{From: from, To: to}
	counts, err := db.CountsBetween(from.Truncate(time.Hour), to)
	if err != nil {
		return r, err
	}
	r.Kinds, r.Failed, r.Probes = counts.Kinds, counts.Failed, counts.Probes
	for _, k := range store.Top(counts.Addrs, 10, store.Tries.Cmp) {
		r.TopAddrs = append(r.TopAddrs, alert.Count{Key: k, N: float64(counts.Addrs[k].Failed)})
	}
	for _, k := range store.Top(counts.Users, 10, func(a, b int64) int { return cmp.Compare(b, a) }) {
		r.TopUsers = append(r.TopUsers, alert.Count{Key: k, N: float64(counts.Users[k])})
	}
	bans, err := db.History(from)
	if err != nil {
		return r, err
	}
	for _, b := range bans {
		if !b.Start.Before(to) {
			continue
		}
		r.BanCount++
		if len(r.Bans) < alert.MaxReportBans {
			a := engine.BanAlert(b)
			a.First, a.Last = "", ""
			r.Bans = append(r.Bans, a)
		}
	}
	logins, err := db.Logins(from)
	for _, l := range logins {
		if l.Time.Before(to) {
			r.Logins = append(r.Logins, engine.LoginAlert(l, 0))
		}
	}
	if err != nil {
		return r, err
	}
	err = db.Sessions(from, func(v []byte, chunks [][]byte) bool {
		s, err := session.UnmarshalChunks(v, chunks)
		if err != nil || !s.Start.Before(to) {
			return err == nil
		}
		r.SessionCount++
		if len(r.Sessions) < alert.MaxReportSessions {
			rs := alert.ReportSession{User: s.User, Addr: s.IP, Start: s.Start, Open: s.Active, End: s.EndReason, Bytes: s.Bytes(),
				Commands: len(s.Commands) + s.CommandsMore}
			if s.End != nil {
				rs.Duration = s.End.Sub(s.Start)
			} else {
				rs.Duration = to.Sub(s.Start)
			}
			r.Sessions = append(r.Sessions, rs)
		}
		return true
	})
	return r, err
}
