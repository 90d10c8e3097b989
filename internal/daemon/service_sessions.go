package daemon

import (
	"context"
	"encoding/json"
	"time"

	"sshguard-go/internal/control"
	"sshguard-go/internal/session"
	"sshguard-go/internal/store"
)

// Sessions returns the stored sessions q selects, oldest first; with a
// limit, the newest that many.
func (s *Service) Sessions(ctx context.Context, q control.SessionQuery) ([]json.RawMessage, error) {
	return session.Stored(s.db, session.Query(q))
}

// History gathers what the store and the engine know of user.
func (s *Service) History(ctx context.Context, user string) (control.History, error) {
	h := control.History{User: user, Logins: []control.LoginInfo{}, Sources: map[string]int{}, Methods: map[string]int{},
		FailedDays: map[string]int64{}}
	logins, err := s.db.Logins(time.Time{})
	if err != nil {
		return h, err
	}
	for _, l := range logins {
		if l.User != user {
			continue
		}
		h.Logins = append(h.Logins, control.LoginInfo{Time: l.Time, IP: l.Addr.String(), Method: l.Method, Key: l.Key, Severity: l.Severity})
		h.Sources[l.Addr.String()]++
		h.Methods[l.Method]++
	}
	// The engine's hours: the store's and those not flushed yet (the
	// daemon flushes every minute).
	err = s.guard.Hours(time.Time{}, time.Now().Add(time.Hour), func(hour time.Time, c store.Counts) {
		if n := c.Users[user]; n > 0 {
			h.Failed += n
			h.FailedDays[hour.Format(time.DateOnly)] += n
		}
	})
	if err != nil {
		return h, err
	}
	ss, err := s.Sessions(ctx, control.SessionQuery{User: user})
	h.Sessions = ss
	return h, err
}
