package daemon

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sshguard-go/internal/control"
	"sshguard-go/internal/store"
	"sshguard-go/internal/testkit"
)

// TestConnectReadOnly: with no daemon, the commands that only read never
// create a database: a missing one is an error naming it and the socket
// that did not answer, and nothing is made. An existing one is read with
// no byte of it changed, even with a ban expired (which a writer takes
// out of the index).
func TestConnectReadOnly(t *testing.T) {
	h := newHarness(t)
	writeConfig(t, h.dir, "[firewall]\nbackend = \"none\"\n")
	cfg := h.config()
	cfg.State.DB = filepath.Join(h.dir, "new", "state.db")
	_, _, err := ConnectReadOnly(context.Background(), cfg, func(string) {})
	if !errors.Is(err, ErrNoDatabase) || !strings.Contains(err.Error(), cfg.State.DB) || !strings.Contains(err.Error(), cfg.State.Socket) {
		t.Fatalf("missing database: %v", err)
	}
	if _, err := os.Stat(filepath.Dir(cfg.State.DB)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("something was made: %v", err)
	}

	cfg = h.config()
	db, err := store.Open(cfg.State.DB, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	testkit.RecordBans(t, db, &store.Ban{Prefix: netip.MustParsePrefix("203.0.113.7/32"), Start: now.Add(-2 * time.Hour), Expires: now.Add(-time.Hour), Reason: "old"})
	testkit.RecordBans(t, db, &store.Ban{Prefix: netip.MustParsePrefix("198.51.100.7/32"), Start: now, Expires: now.Add(time.Hour), Reason: "new", Origin: "detected"})
	db.Allow(store.AllowEntry{Prefix: netip.MustParsePrefix("192.0.2.0/24"), Comment: "office"})
	db.Close()
	before, _ := os.ReadFile(cfg.State.DB)
	b, done, err := ConnectReadOnly(context.Background(), cfg, func(string) {})
	if err != nil {
		t.Fatal(err)
	}
	list, err := b.Bans(context.Background())
	bans := list.Bans
	if err != nil || len(bans) != 1 || bans[0].Reason != "new" {
		t.Fatalf("bans: %+v %v", bans, err)
	}
	if al, err := b.AllowList(context.Background()); err != nil || !strings.Contains(fmt.Sprint(al), "office") {
		t.Fatalf("allowlist: %+v %v", al, err)
	}
	if _, err := b.Alerts(context.Background(), false, 10); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Sessions(context.Background(), control.SessionQuery{}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.History(context.Background(), "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Ban(context.Background(), control.BanRequest{Prefix: netip.MustParsePrefix("203.0.113.9/32"), For: time.Hour}); err == nil {
		t.Fatal("a ban through a read-only connection succeeded")
	}
	done()
	if after, _ := os.ReadFile(cfg.State.DB); string(after) != string(before) {
		t.Fatal("reading changed the database")
	}
}
