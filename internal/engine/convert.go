package engine

import (
	"sshguard-go/internal/alert"
	"sshguard-go/internal/store"
)

// BanAlert is what an alert (or a report) tells of the recorded ban b:
// the one mapping from a stored ban to an alert's.
func BanAlert(b store.Ban) alert.Ban {
	a := alert.Ban{Prefix: b.Prefix, Attempts: b.Attempts, Users: b.Users, Nth: b.Count, Reason: b.Reason}
	if !b.Expires.IsZero() {
		a.Duration = b.Expires.Sub(b.Start)
	}
	if len(b.Evidence) > 0 {
		a.First, a.Last = b.Evidence[0], b.Evidence[len(b.Evidence)-1]
	}
	return a
}

// LoginAlert is what an alert tells of the recorded login l, after failed
// counted failed attempts of its client.
func LoginAlert(l store.Login, failed float64) alert.Login {
	return alert.Login{Time: l.Time, User: l.User, Addr: l.Addr, Method: l.Method, Key: l.Key, Failed: failed}
}

// Resolver returns the function that gives a ban alert its ban from the
// store (alert.Worker.Resolve).
func Resolver(db *store.DB) func(ref []byte) (*alert.Ban, error) {
	return func(ref []byte) (*alert.Ban, error) {
		b, err := db.BanByRef(ref)
		if err != nil {
			return nil, err
		}
		a := BanAlert(b)
		return &a, nil
	}
}
