package alert

import (
	"context"
	"fmt"
	"strings"
)

// Channel delivers rendered alerts somewhere.
type Channel interface {
	Name() string
	Send(ctx context.Context, r Rendered) error
}

// PermanentError marks a delivery error that retrying cannot mend (a
// rejected recipient, a refused request): the delivery is marked failed.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }

func (e *PermanentError) Unwrap() error { return e.Err }

// PartialError is a failed delivery that reached some of the channel's
// recipients (Done): a retry sends only to the others (Rendered.Done).
type PartialError struct {
	Done []string
	Err  error
}

func (e *PartialError) Error() string {
	return fmt.Sprintf("%v (delivered to %s)", e.Err, strings.Join(e.Done, ", "))
}

func (e *PartialError) Unwrap() error { return e.Err }

// Outbox is what the Worker delivers from (store.DB implements it).
type Outbox interface {
	// PendingAfter calls fn for the records still to be delivered whose
	// id is above after, oldest first.
	PendingAfter(after uint64, fn func(id uint64, data []byte) error) error
	// Records calls fn with the record of each of ids, in one read.
	Records(ids []uint64, fn func(id uint64, data []byte) error) error
	// UpdateAlerts rewrites records in one transaction; fn returns the
	// new record and whether it is no longer pending.
	UpdateAlerts(ids []uint64, fn func(id uint64, data []byte) ([]byte, bool, error)) error
	Enqueue(data []byte) (uint64, error)
	// SavePosition and Position keep a small JSON value under a name
	// (a channel's flood state, so a restart does not forget a flood).
	SavePosition(name string, v any) error
	Position(name string, v any) error
}
