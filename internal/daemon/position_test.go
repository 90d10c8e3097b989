package daemon

import (
	"errors"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"sshguard-go/internal/config"
	"sshguard-go/internal/engine"
	"sshguard-go/internal/source"
	"sshguard-go/internal/store"
	"sshguard-go/internal/testkit"
)

// TestLinesGoOnWhilePositionIsSaved: saving the log's position waits for
// the database (held here by another write, as a peer's thousands of bans
// hold it); the next lines are read meanwhile, and the position is saved
// once the database is free. The position's write held the pipeline's lock
// before, so every line, a ban's too, waited for the database.
func TestLinesGoOnWhilePositionIsSaved(t *testing.T) {
	db, _ := testkit.OpenDB(t)
	path := filepath.Join(t.TempDir(), "auth.log")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	g := engine.New(engine.Config{FailureWeight: 1}, db, nopFW{}, nil, nil, nil)
	p := newPipeline(config.LogConfig{File: path}, db, g, slog.New(slog.DiscardHandler))
	line := "2026-12-05T03:00:00.000000+00:00 web-01 sshd[1000]: Failed password for root from 203.0.113.7 port 4000 ssh2"
	ctx := t.Context()
	p.line(ctx, line, func() { p.pos = source.Position{Ino: 1, Offset: 100} })

	entered, release := make(chan struct{}), make(chan struct{})
	free := sync.OnceFunc(func() { close(release) })
	t.Cleanup(free) // before the database closes, on a failure too
	held := make(chan error, 1)
	go func() {
		_, err := db.RecordLogin(store.Login{Time: time.Now(), User: "alice", Addr: netip.MustParseAddr("198.51.100.1"), Method: "publickey"},
			func(store.LoginHistory, *store.Login) []byte { close(entered); <-release; return nil })
		held <- err
	}()
	<-entered // the database's writer is held
	saved := make(chan struct{})
	go func() { p.savePosition(); close(saved) }()
	testkit.Eventually(t, 10*time.Second, "the position taken to be written", func() (bool, string) {
		if !p.mu.TryLock() {
			return false, "the lines' lock held while the position is written"
		}
		defer p.mu.Unlock()
		return !p.posDirty, ""
	})
	read := make(chan struct{})
	go func() {
		p.line(ctx, line, func() { p.pos = source.Position{Ino: 1, Offset: 200} })
		close(read)
	}()
	select {
	case <-read:
	case <-time.After(10 * time.Second):
		t.Fatal("a line waited for the position's write")
	}
	free()
	<-saved
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	var got source.Position
	if err := db.Position(path, &got); err != nil || got.Offset != 100 {
		t.Fatalf("saved %+v (%v), want offset 100", got, err)
	}
	p.savePosition() // the line read meanwhile
	if err := db.Position(path, &got); err != nil || got.Offset != 200 {
		t.Fatalf("saved %+v (%v), want offset 200", got, err)
	}
}

// TestDamagedSavedPosition: a saved read position that does not decode
// (here cut short: {"dev":"x") stopped the daemon just after it started,
// with the bare JSON error ("unexpected end of JSON input", exit status
// 2). It is warned about, naming the database and the record's key, and
// the source reads as it does without one: the log from its end (the
// attack already in it is not read, the one appended is), the audit log
// too; the daemon goes on, and saves the log's position whole again.
func TestDamagedSavedPosition(t *testing.T) {
	h := newHarness(t)
	logPath, audit, dbPath := filepath.Join(h.dir, "auth.log"), filepath.Join(h.dir, "audit.log"), filepath.Join(h.dir, "state.db")
	writeConfig(t, h.dir, "[detection]\nthreshold = 3\n[audit]\nlog = "+strconv.Quote(audit)+"\n")
	h.attack("203.0.113.7") // before the start: not read
	if err := os.WriteFile(audit, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	damagePositions(t, dbPath, logPath, "audit:"+audit)

	h.start()
	h.attack("198.51.100.9")
	h.waitBan("198.51.100.9/32", true)
	if _, ok := h.bans()["203.0.113.7/32"]; ok {
		t.Fatalf("the attack written before the start was read:\n%s", h.log.String())
	}
	for key, fresh := range map[string]string{
		logPath:          "reading " + logPath + " from its end, as with no saved position",
		"audit:" + audit: "reading " + audit + " from its end, as with no saved position",
	} {
		testkit.Eventually(t, 10*time.Second, "the warning of "+key, func() (bool, string) {
			for _, l := range strings.Split(h.log.String(), "\n") {
				if strings.Contains(l, "level=WARN") && strings.Contains(l, "the saved read position is damaged; "+fresh) &&
					strings.Contains(l, " db="+dbPath+" ") && strings.Contains(l, " key="+key+" ") && strings.Contains(l, "unexpected end of JSON input") {
					return true, ""
				}
			}
			return false, h.log.String()
		})
	}
	h.halt() // and Run returned no error
	st, err := os.Stat(logPath)
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(dbPath, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var pos source.Position
	if err := db.Position(logPath, &pos); err != nil || pos.Offset != st.Size() {
		t.Fatalf("saved %+v (%v), want offset %d", pos, err, st.Size())
	}
}

// TestDamagedJournalCursor: a damaged saved journald cursor is warned
// about the same way, and the journal is read as without one: from now on.
func TestDamagedJournalCursor(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	damagePositions(t, path, "journald")
	db, err := store.Open(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var log syncBuffer
	cursor, err := savedPosition[string](db, slog.New(slog.NewTextHandler(&log, nil)), "journald", "reading the journal from now on")
	if err != nil || cursor != "" {
		t.Fatalf("cursor %q, %v", cursor, err)
	}
	if l := log.String(); !strings.Contains(l, "level=WARN") || !strings.Contains(l, " db="+path+" ") || !strings.Contains(l, " key=journald ") ||
		!strings.Contains(l, "reading the journal from now on") {
		t.Fatalf("warned:\n%s", l)
	}
}

// damagePositions writes the database path with a position record cut
// short ({"dev":"x") under each of keys.
func damagePositions(t *testing.T, path string, keys ...string) {
	t.Helper()
	db, err := store.Open(path, time.Second) // its buckets
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	raw, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	err = raw.Update(func(tx *bolt.Tx) error {
		var errs []error
		for _, k := range keys {
			errs = append(errs, tx.Bucket([]byte("positions")).Put([]byte(k), []byte(`{"dev":"x"`)))
		}
		return errors.Join(errs...)
	})
	if err != nil {
		t.Fatal(err)
	}
}
