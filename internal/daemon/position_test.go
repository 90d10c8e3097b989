package daemon

import (
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

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
