package main

import (
	"bufio"
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	sgban "sshguard-go/internal/ban"
	"sshguard-go/internal/config"
	"sshguard-go/internal/daemon"
	"sshguard-go/internal/detect"
	"sshguard-go/internal/engine"
	"sshguard-go/internal/store"
)

// sshguardGo runs sshguard-go's own scanner and engine, on its default
// configuration mapped as the daemon maps it, over the log: every record
// handled as it comes, on a clock that follows the records (a daemon that
// ran through the month), then moved to end. Its bans are the engine's,
// as recorded in a state database of their own.
func sshguardGo(log string, start, end time.Time) ([]ban, error) {
	dir, err := os.MkdirTemp("", "slowcompare-db")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	db, err := store.Open(filepath.Join(dir, "state.db"), time.Second)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	now := start
	g := engine.New(daemon.EngineConfig(config.Default()), db, nopFirewall{}, nil, func() time.Time { return now }, nil)
	f, err := os.Open(log)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var (
		sc      detect.Scanner
		handled error
	)
	feed := func(r *detect.Record) {
		if r.Time.After(now) {
			now = r.Time
		}
		if _, err := g.Handle(context.Background(), r); err != nil && handled == nil {
			handled = err
		}
	}
	s := bufio.NewScanner(f)
	for n := int64(1); s.Scan(); n++ {
		sc.Line(filepath.Base(log), n, s.Text(), feed)
	}
	sc.Flush(feed)
	if err := s.Err(); err != nil {
		return nil, err
	}
	if handled != nil {
		return nil, handled
	}
	now = end
	hist, err := db.History(time.Time{})
	if err != nil {
		return nil, err
	}
	out := make([]ban, len(hist))
	for i, b := range hist {
		out[i] = ban{prefix: b.Prefix, start: b.Start, end: b.Expires}
	}
	return out, nil
}

// nopFirewall takes every ban: the replay only records them.
type nopFirewall struct{}

func (nopFirewall) Ban(context.Context, []sgban.Element) error  { return nil }
func (nopFirewall) Unban(context.Context, []netip.Prefix) error { return nil }
