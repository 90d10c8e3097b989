package session

import (
	"context"

	"sshguard-go/internal/control"
)

// fetchLimit is how many sessions Fetch asks for: every one, within reason.
const fetchLimit = 100000

// Query is the control API's query for the sessions f selects (at most
// the newest 100,000).
func (f Filter) Query() control.SessionQuery {
	return control.SessionQuery{User: f.User, IP: f.IP, Since: f.Since, Active: f.Active, Limit: fetchLimit}
}

// Fetch asks b (the running daemon, or the state database when none
// runs) for the sessions f selects, decoded (the sessions command without
// files).
func Fetch(ctx context.Context, b control.Backend, f Filter) ([]*Session, error) {
	raw, err := b.Sessions(ctx, f.Query())
	if err != nil {
		return nil, err
	}
	return DecodeAll(raw)
}
