package daemon

import (
	"context"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"sshguard-go/internal/api"
	"sshguard-go/internal/engine"
	"sshguard-go/internal/testkit"
)

// TestRestoreDamagedRecord: a database of 300 bans in force, one of whose
// records was overwritten with junk through bbolt (a damaged value on a
// page that is whole): the daemon starts, every other ban back in the
// kernel, and logs the damaged record's key once at warning level with
// the count; the list (control API) and the API's bans show the others
// and name it; `unban` of its prefix deletes it, and the next start says
// nothing. The start stopped with "ban 10.2.0.7/32: a damaged record"
// (exit status 2, which the unit does not restart on), every ban out of
// the kernel.
func TestRestoreDamagedRecord(t *testing.T) {
	h := newHarness(t)
	tok := strings.Repeat("d", 32)
	if err := os.WriteFile(filepath.Join(h.dir, "token"), []byte(tok), 0o600); err != nil {
		t.Fatal(err)
	}
	writeConfig(t, h.dir, "[audit]\nlog = \"\"\n[api]\nlisten = \"127.0.0.1:0\"\ntoken_file = \""+filepath.Join(h.dir, "token")+"\"\n")
	path := filepath.Join(h.dir, "state.db")
	const key = testkit.DamagedKey
	testkit.DamagedBansDB(t, path, engine.Detected, []byte{0x03, 0xff, 0xff, 0xff})

	h.start()
	h.fw.mu.Lock()
	inKernel := len(h.fw.set)
	h.fw.mu.Unlock()
	damagedIn := h.fw.has(key)
	if inKernel != 299 || damagedIn {
		t.Fatalf("%d bans in the kernel (the damaged one %v), want the 299 others", inKernel, damagedIn)
	}
	var named []string
	for _, l := range strings.Split(h.log.String(), "\n") {
		if strings.Contains(l, key) {
			named = append(named, l)
		}
	}
	counted := slices.ContainsFunc(strings.Split(h.log.String(), "\n"), func(l string) bool {
		return strings.Contains(l, "level=WARN") && strings.Contains(l, "do not decode") && strings.HasSuffix(l, " count=1")
	})
	if len(named) != 1 || !strings.Contains(named[0], "level=WARN") || !strings.Contains(named[0], "key="+key) || !counted {
		t.Fatalf("the damaged record in the log: %q\n%s", named, h.log.String())
	}

	list, err := h.client().Bans(context.Background())
	if err != nil || len(list.Bans) != 299 || list.Damaged.Count != 1 || !slices.Equal(list.Damaged.Keys, []string{key}) {
		t.Fatalf("list: %d bans, damaged %+v, %v", len(list.Bans), list.Damaged, err)
	}
	var apiBans api.Bans
	if code := getJSON(t, http.DefaultClient, "http://"+h.d.APIAddr()+"/api/v1/bans", tok, &apiBans); code != 200 ||
		apiBans.Total != 299 || apiBans.Damaged != 1 || !slices.Equal(apiBans.DamagedKeys, []string{key}) {
		t.Fatalf("API bans: %d, total %d, damaged %d %q", code, apiBans.Total, apiBans.Damaged, apiBans.DamagedKeys)
	}

	lifted, err := h.client().Unban(context.Background(), netip.MustParsePrefix(key))
	if err != nil || !slices.Equal(lifted, []netip.Prefix{netip.MustParsePrefix(key)}) {
		t.Fatalf("unban %s: %v, %v", key, lifted, err)
	}
	t.Logf("the start's warnings:\n%s", strings.Join(named, "\n"))
	if list, err := h.client().Bans(context.Background()); err != nil || len(list.Bans) != 299 || list.Damaged.Count != 0 {
		t.Fatalf("after the unban: %d bans, damaged %+v, %v", len(list.Bans), list.Damaged, err)
	}
	h.halt()
	before := len(h.log.String())
	h.start()
	if again := h.log.String()[before:]; strings.Contains(again, "does not decode") {
		t.Fatalf("the next start still warns:\n%s", again)
	}
}
