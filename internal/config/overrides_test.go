package config

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"
)

// TestOverridesOnlyWhatWasGiven: a nil field leaves the file's value; a
// given one replaces it, a given zero too; Allow adds to the file's list.
func TestOverridesOnlyWhatWasGiven(t *testing.T) {
	file := Default()
	file.Log.File = "/var/log/file.log"
	file.Firewall.Forward = true
	file.Ban.Allow = []string{"192.0.2.0/24"}

	c := *file
	c.Ban.Allow = slices.Clone(file.Ban.Allow)
	Overrides{}.Apply(&c)
	if !reflect.DeepEqual(&c, file) {
		t.Fatalf("no overrides changed the file's configuration:\n got %+v\nwant %+v", c, *file)
	}

	table, no, threshold, window, priority := "other", false, 0.0, 30*time.Second, 5
	c = *file
	c.Ban.Allow = slices.Clone(file.Ban.Allow)
	Overrides{Table: &table, Forward: &no, Threshold: &threshold, Window: &window, Priority: &priority,
		Allow: []string{"198.51.100.7"}, DryRun: true}.Apply(&c)
	want := *file
	want.Firewall.Table, want.Firewall.Forward, want.Detection.Threshold = "other", false, 0
	want.Detection.Window, want.Firewall.Priority = Duration(30*time.Second), 5
	want.Ban.Allow = []string{"192.0.2.0/24", "198.51.100.7"}
	want.Firewall.Backend = "none"
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("overrides:\n got %+v\nwant %+v", c, want)
	}
}

// TestOverridesEveryField: every field of Overrides reaches its key.
func TestOverridesEveryField(t *testing.T) {
	s, b, n, f, d := "x", true, 7, 2.5, 3*time.Hour
	c := Default()
	Overrides{LogFile: &s, Journal: &b, FromStart: &b, DB: &s, Socket: &s, Table: &s, Priority: &n, Forward: &b,
		CutConnections: &b, Threshold: &f, Window: &d, BanTime: &d}.Apply(c)
	got := []any{c.Log.File, c.Log.Journal, c.Log.FromStart, c.State.DB, c.State.Socket, c.Firewall.Table, c.Firewall.Priority,
		c.Firewall.Forward, c.Firewall.CutConnections, c.Detection.Threshold, c.Detection.Window, c.Ban.BanTime, c.Firewall.Backend}
	want := []any{s, b, b, s, s, s, n, b, b, f, Duration(d), Duration(d), "nftables"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v\nwant %v", got, want)
	}
}

// TestOverridesReloadKeepsOnlyAllow: on SIGHUP the file decides again,
// but for --allow, which still adds to it.
func TestOverridesReloadKeepsOnlyAllow(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.toml")
	if err := os.WriteFile(path, []byte("[detection]\nthreshold = 3\n[ban]\nallow = [\"192.0.2.1\"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	threshold, db := 9.0, "/tmp/x.db"
	ov := Overrides{Threshold: &threshold, DB: &db, Allow: []string{"198.51.100.7"}, DryRun: true}
	c, err := LoadWith(path, true, ov)
	if err != nil {
		t.Fatal(err)
	}
	if c.Detection.Threshold != 9 || c.State.DB != db || c.Firewall.Backend != "none" || len(c.Ban.Allow) != 2 {
		t.Fatalf("LoadWith: %+v", c)
	}
	c, err = LoadWith(path, false, ov.Reload())
	if err != nil {
		t.Fatal(err)
	}
	if c.Detection.Threshold != 3 || c.State.DB != Default().State.DB || c.Firewall.Backend != "nftables" ||
		!slices.Equal(c.Ban.Allow, []string{"192.0.2.1", "198.51.100.7"}) {
		t.Fatalf("reloaded: threshold %g, db %s, backend %s, allow %v", c.Detection.Threshold, c.State.DB, c.Firewall.Backend, c.Ban.Allow)
	}
	if _, err := LoadWith(filepath.Join(t.TempDir(), "missing.toml"), true, ov); err == nil {
		t.Fatal("a missing file named explicitly: no error")
	}
}
