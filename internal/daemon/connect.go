package daemon

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"strings"
	"time"

	"sshguard-go/internal/ban"
	"sshguard-go/internal/config"
	"sshguard-go/internal/control"
	"sshguard-go/internal/engine"
	"sshguard-go/internal/store"
)

// ErrNoDatabase is returned by ConnectReadOnly when no daemon answers and
// there is no database to read either.
var ErrNoDatabase = errors.New("no database")

// ConnectReadOnly is Connect for the commands that only read (list,
// alerts, allow list, sessions, history, fleet status): without a
// daemon, it opens the database read-only (OpenReader) and never creates
// it or anything else. A missing database is ErrNoDatabase, named with
// the socket that did not answer; a database or socket the caller may
// not open is an error that says to run as root and names it.
func ConnectReadOnly(ctx context.Context, cfg *config.Config, warn func(string)) (b control.Backend, close func(), err error) {
	c, err := control.Dial(cfg.State.Socket)
	if err == nil {
		return c, func() {}, nil
	}
	if !errors.Is(err, control.ErrNoDaemon) {
		return nil, nil, err // the socket is there, and not for this user
	}
	s, err := OpenReader(ctx, cfg, warn)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, nil, fmt.Errorf("%w at %s (and no daemon answers on %s): is the daemon running, or is --db right?",
			ErrNoDatabase, cfg.State.DB, cfg.State.Socket)
	case errors.Is(err, store.ErrLocked):
		return nil, nil, fmt.Errorf("%w, yet no daemon answers on %s: is --socket right?", err, cfg.State.Socket)
	case err != nil:
		return nil, nil, RootHint(err)
	}
	return s, func() { s.Close() }, nil
}

// OpenReader returns a Service over the existing database cfg names,
// opened read-only (store.OpenReadOnly), for the commands that only read
// when no daemon runs: its reads work, its writes fail, and it touches no
// firewall. Close releases it.
func OpenReader(ctx context.Context, cfg *config.Config, warn func(string)) (*Service, error) {
	db, err := store.OpenReadOnly(cfg.State.DB, 2*time.Second)
	if err != nil {
		return nil, err
	}
	g := engine.New(engineConfig(cfg, nil, nil), db, readOnlyFirewall{}, nil, nil, nil)
	return &Service{guard: g, db: db, config: cfg.AllowPrefixes(ctx, warn)}, nil
}

// readOnlyFirewall is the firewall of a Service that only reads.
type readOnlyFirewall struct{}

var errReadOnly = errors.New("opened read-only: no change to the firewall")

func (readOnlyFirewall) Ban(context.Context, []ban.Element) error    { return errReadOnly }
func (readOnlyFirewall) Unban(context.Context, []netip.Prefix) error { return errReadOnly }

// RootHint adds "run as root (sudo)" to an error of permission: a socket,
// database or directory only root may open (EACCES), or the kernel's
// firewall refusing a process without CAP_NET_ADMIN (EPERM, which
// netlink reports as "operation not permitted"). The error names what it
// could not open; other errors are returned as they are.
func RootHint(err error) error {
	if err == nil || strings.Contains(err.Error(), "run as root") {
		return err
	}
	if errors.Is(err, fs.ErrPermission) || strings.Contains(err.Error(), "operation not permitted") ||
		strings.Contains(err.Error(), "permission denied") {
		return fmt.Errorf("%w: run as root (sudo)", err)
	}
	return err
}

// ErrNotRunning marks NotRunning's answers that mean no daemon runs.
var ErrNotRunning = errors.New("not running")

// notRunning is such an answer, in its own words.
type notRunning string

func (e notRunning) Error() string        { return string(e) }
func (e notRunning) Is(target error) bool { return target == ErrNotRunning }

// NotRunning says what is known when no daemon answers on the socket:
// what the database holds, read-only, or that there is none. Its error
// wraps ErrNotRunning when that is the answer, and is any other failure
// to read the database otherwise.
func NotRunning(ctx context.Context, cfg *config.Config) error {
	sock, db := cfg.State.Socket, cfg.State.DB
	s, err := OpenReader(ctx, cfg, func(string) {})
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return notRunning(fmt.Sprintf("not running: no daemon answers on %s, and there is no database at %s: is the daemon running (systemctl status sshguard-go), or are --socket and --db right?", sock, db))
	case errors.Is(err, store.ErrLocked):
		return notRunning(fmt.Sprintf("no daemon answers on %s, yet the database %s is in use by another process: is --socket right?", sock, db))
	case err != nil:
		return RootHint(err)
	}
	defer s.Close()
	list, err := s.Bans(ctx)
	if err != nil {
		return err
	}
	n := fmt.Sprintf("%d bans", len(list.Bans))
	if len(list.Bans) == 1 {
		n = "1 ban"
	}
	return notRunning(fmt.Sprintf("not running: no daemon answers on %s (the database %s holds %s in force)", sock, db, n))
}
