package daemon

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"sshguard-go/internal/control"
	"sshguard-go/internal/source"
	"sshguard-go/internal/testkit"
)

// TestDryRunKeptApart: a dry run (backend "none") decides as a real run
// would, and keeps what it would ban apart: listed marked as a dry run's,
// never a ban in force, never restored by the real run that follows on
// the same database, which bans the same client afresh.
func TestDryRunKeptApart(t *testing.T) {
	h := newHarness(t)
	writeConfig(t, h.dir, "[detection]\nthreshold = 3\n[firewall]\nbackend = \"none\"\n[audit]\nlog = \"\"\n")
	h.start()
	h.attack("203.0.113.77")
	dry := h.waitBan("203.0.113.77/32", true)
	if !dry.DryRun || dry.Origin != "detected" {
		t.Fatalf("the dry run's ban %+v", dry)
	}
	if st, err := h.client().Status(context.Background()); err != nil || !st.DryRun {
		t.Fatalf("status of a dry run: %+v %v", st, err)
	}
	if active, _ := h.d.db.ActiveBans(time.Now()); len(active) != 0 {
		t.Fatalf("the dry run stored bans in force: %+v", active)
	}
	h.attack("203.0.113.77") // banned already, in the dry run too
	testkit.Eventually(t, 10*time.Second, "the second attack judged", func() (bool, string) {
		r := h.d.guard.Refused()
		return r["detected already"] == 1, fmt.Sprint(r)
	})
	h.halt()

	// The real run on the same database.
	writeConfig(t, h.dir, "[detection]\nthreshold = 3\n[audit]\nlog = \"\"\n")
	h.start()
	if len(h.fw.set) != 0 {
		t.Fatalf("the real run restored the dry run's bans: %v", h.fw.set)
	}
	if bans := h.bans(); len(bans) != 0 {
		t.Fatalf("the real run lists %v", bans)
	}
	list, err := h.client().DryRunBans(context.Background())
	dr := list.Bans
	if err != nil || len(dr) != 1 || dr[0].Prefix != netip.MustParsePrefix("203.0.113.77/32") || !dr[0].DryRun {
		t.Fatalf("list --dry-run: %+v %v", dr, err)
	}
	if st, _ := h.client().Status(context.Background()); st.DryRun {
		t.Fatal("the real run says dry run")
	}
	h.attack("203.0.113.77")
	if b := h.waitBan("203.0.113.77/32", true); b.DryRun || b.Count != 1 || !h.fw.has("203.0.113.77/32") {
		t.Fatalf("the real run's ban %+v, kernel %v", b, h.fw.set)
	}
}

// TestMissingSourceStopsStart: a log file that does not exist (a typo)
// stops the start with an error naming it, and check-config says so; with
// log.wait the daemon waits for it (status: waiting, why) and reads it
// once it appears; journald that cannot be read is an error that says
// why.
func TestMissingSourceStopsStart(t *testing.T) {
	h := newHarness(t)
	writeConfig(t, h.dir, "[audit]\nlog = \"\"\n")
	cfg := h.config()
	cfg.Log.File = filepath.Join(h.dir, "auth.lgo")
	if _, err := CheckSource(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "auth.lgo does not exist") {
		t.Fatalf("check: %v", err)
	}
	d, err := New(context.Background(), cfg, WithFirewall(h.fw))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- d.Run(context.Background()) }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "auth.lgo does not exist") {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the daemon runs on a log file that does not exist")
	}
	d.Close()

	// log.wait: it waits, and says so.
	writeConfig(t, h.dir, "[log]\nwait = true\nfile = \""+filepath.Join(h.dir, "late.log")+"\"\n[audit]\nlog = \"\"\n")
	h2 := &harness{t: t, dir: h.dir, fw: h.fw}
	cfg = h2.config()
	cfg.Log.File = filepath.Join(h.dir, "late.log")
	if name, err := CheckSource(context.Background(), cfg); err != nil || name != cfg.Log.File {
		t.Fatalf("check with log.wait: %s %v", name, err)
	}
	d, err = New(context.Background(), cfg, WithFirewall(h.fw), WithNotify(func(string) {}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done = make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	defer func() { cancel(); <-done; d.Close() }()
	testkit.Eventually(t, 10*time.Second, "waiting", func() (bool, string) {
		st := d.Stats().Sources[0]
		return st.State == "waiting" && strings.Contains(st.Why, "late.log does not exist"), fmt.Sprintf("%+v", st)
	})
	os.WriteFile(cfg.Log.File, []byte(time.Now().Format(time.Stamp)+" web-01 sshd[9]: Failed password for root from 203.0.113.9 port 1 ssh2\n"), 0o644)
	testkit.Eventually(t, 10*time.Second, "reading", func() (bool, string) {
		st := d.Stats().Sources[0]
		return st.State == "reading" && st.Lines == 1 && st.Behind == 0 && !st.Newest.IsZero(), fmt.Sprintf("%+v", st)
	})

	// journald that cannot be read.
	checkJournal := func(bin string) error { return source.CheckJournal(context.Background(), bin) }
	bin := filepath.Join(h.dir, "journalctl")
	os.WriteFile(bin, []byte("#!/bin/sh\necho 'No journal files were opened due to insufficient permissions.' >&2\n"), 0o755)
	if err := checkJournal(bin); err == nil || !strings.Contains(err.Error(), "run as root") {
		t.Errorf("journald unreadable: %v", err)
	}
	os.WriteFile(bin, []byte("#!/bin/sh\necho 'No journal files were found.' >&2\n"), 0o755)
	if err := checkJournal(bin); err == nil || !strings.Contains(err.Error(), "no journal files") {
		t.Errorf("no journal: %v", err)
	}
	if err := checkJournal(filepath.Join(h.dir, "nothing-here")); err == nil || !strings.Contains(err.Error(), "not installed") && !strings.Contains(err.Error(), "no such file") {
		t.Errorf("no journalctl: %v", err)
	}
}

// TestAllowAndUnbanExplain: allow add of an address inside a wider ban in
// force names that ban and asks for --force; with it, or for bans inside
// the entry, it says which it lifted; allow rm makes those bans again for
// the time they had left; unban of a prefix lifts the bans inside it;
// unban --all --origin lifts only that origin's.
func TestAllowAndUnbanExplain(t *testing.T) {
	h := newHarness(t)
	writeConfig(t, h.dir, "[detection]\nthreshold = 3\n[audit]\nlog = \"\"\n")
	h.start()
	c := h.client()
	ban := func(p string, r control.BanRequest) {
		t.Helper()
		r.Prefix = netip.MustParsePrefix(p)
		if _, err := c.Ban(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	ban("10.0.0.0/8", control.BanRequest{For: time.Hour, Force: true})
	_, err := c.AllowAdd(context.Background(), control.AllowRequest{Prefix: netip.MustParsePrefix("10.1.2.3/32")})
	if err == nil || !strings.Contains(err.Error(), "inside the ban of 10.0.0.0/8") || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("allow add inside a wider ban: %v", err)
	}
	if !h.fw.has("10.0.0.0/8") {
		t.Fatal("the /8 was lifted without --force")
	}
	res, err := c.AllowAdd(context.Background(), control.AllowRequest{Prefix: netip.MustParsePrefix("10.1.2.3/32"), Force: true})
	if err != nil || len(res.Lifted) != 1 || res.Lifted[0].Prefix != netip.MustParsePrefix("10.0.0.0/8") || h.fw.has("10.0.0.0/8") {
		t.Fatalf("allow add --force: %+v %v", res, err)
	}

	for _, every := range []string{"0.0.0.0/0", "::/0", "::ffff:0.0.0.0/96"} {
		if _, err := c.AllowAdd(context.Background(), control.AllowRequest{Prefix: netip.MustParsePrefix(every), Force: true}); err == nil || !strings.Contains(err.Error(), "every address") {
			t.Errorf("allow add %s: %v", every, err)
		}
	}

	// A /24 over a permanent ban of one address: lifted and named; allow
	// rm makes it again, permanent still.
	ban("198.51.100.7/32", control.BanRequest{Permanent: true, Reason: "by hand"})
	res, err = c.AllowAdd(context.Background(), control.AllowRequest{Prefix: netip.MustParsePrefix("198.51.100.0/24"), Comment: "office"})
	if err != nil || res.Already || len(res.Lifted) != 1 || res.Lifted[0].Prefix.String() != "198.51.100.7/32" || h.fw.has("198.51.100.7/32") {
		t.Fatalf("allow add over a permanent ban: %+v %v", res, err)
	}
	// Added again (a tired administrator repeats the command): it says
	// so, keeps the comment and the ban it lifted, for allow rm.
	res, err = c.AllowAdd(context.Background(), control.AllowRequest{Prefix: netip.MustParsePrefix("198.51.100.0/24")})
	if err != nil || !res.Already || res.CommentChanged || len(res.Lifted) != 0 {
		t.Fatalf("allow add again: %+v %v", res, err)
	}
	entries, err := c.AllowList(context.Background())
	if err != nil || !slices.ContainsFunc(entries, func(e control.AllowInfo) bool {
		return e.Prefix.String() == "198.51.100.0/24" && e.Comment == "office"
	}) {
		t.Fatalf("the entry added again lost its comment: %+v %v", entries, err)
	}
	res, err = c.AllowRemove(context.Background(), netip.MustParsePrefix("198.51.100.0/24"))
	if err != nil || len(res.Restored) != 1 || !res.Restored[0].Expires.IsZero() || !h.fw.has("198.51.100.7/32") {
		t.Fatalf("allow rm: %+v %v", res, err)
	}

	// unban of a prefix lifts what is inside it.
	ban("203.0.113.5/32", control.BanRequest{For: time.Hour})
	ban("203.0.113.6/32", control.BanRequest{For: time.Hour})
	lifted, err := c.Unban(context.Background(), netip.MustParsePrefix("203.0.113.0/24"))
	if err != nil || len(lifted) != 2 || h.fw.has("203.0.113.5/32") || h.fw.has("203.0.113.6/32") {
		t.Fatalf("unban 203.0.113.0/24: %v %v", lifted, err)
	}

	// unban --all --origin detected: only the detected ones.
	h.attack("192.0.2.44")
	h.waitBan("192.0.2.44/32", true)
	lifted, err = c.UnbanAll(context.Background(), "detected")
	if err != nil || len(lifted) != 1 || lifted[0].String() != "192.0.2.44/32" || !h.fw.has("198.51.100.7/32") {
		t.Fatalf("unban --all --origin detected: %v %v", lifted, err)
	}
	lifted, err = c.UnbanAll(context.Background(), "")
	if err != nil || len(lifted) != 1 || len(h.fw.set) != 0 {
		t.Fatalf("unban --all: %v %v, kernel %v", lifted, err, h.fw.set)
	}
}

// TestFleetServersAllowed: the NATS servers of fleet.nats_url (an address,
// an IPv6 one in brackets, a host name) are on the allowlist whoever asks:
// a ban of one is refused (a peer's would cut this host off from the fleet
// and from the unban that would lift it), and allow list shows them.
func TestFleetServersAllowed(t *testing.T) {
	h := newHarness(t)
	writeConfig(t, h.dir, "[audit]\nlog = \"\"\n[fleet]\nname = \"t\"\nnats_url = \"nats://198.51.100.5:4222, tls://[2001:db8::7]:4222, nats://localhost:4222\"\n")
	h.start()
	c := h.client()
	for _, p := range []string{"198.51.100.5/32", "2001:db8::7/128", "198.51.100.0/24"} {
		_, err := c.Ban(context.Background(), control.BanRequest{Prefix: netip.MustParsePrefix(p), For: time.Hour})
		if err == nil || !strings.Contains(err.Error(), "allowlist") {
			t.Errorf("ban %s: %v", p, err)
		}
	}
	entries, err := c.AllowList(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var fleet []string
	for _, e := range entries {
		if e.Source == "fleet" {
			fleet = append(fleet, e.Prefix.String())
		}
	}
	if !slices.Contains(fleet, "198.51.100.5/32") || !slices.Contains(fleet, "2001:db8::7/128") || !slices.Contains(fleet, "127.0.0.1/32") {
		t.Errorf("allow list's fleet entries: %v", fleet)
	}
	if _, err := c.Ban(context.Background(), control.BanRequest{Prefix: netip.MustParsePrefix("198.51.100.6/32"), For: time.Hour}); err != nil {
		t.Errorf("a neighbour of the server: %v", err)
	}
}

// TestBanByHandReplaces: a ban by hand of a prefix banned already says
// which ban it replaced; one that would end sooner (a permanent ban
// shortened to a second, by a slip of --for) is refused unless forced.
func TestBanByHandReplaces(t *testing.T) {
	h := newHarness(t)
	writeConfig(t, h.dir, "[audit]\nlog = \"\"\n")
	h.start()
	c := h.client()
	p := netip.MustParsePrefix("203.0.113.20/32")
	if _, err := c.Ban(context.Background(), control.BanRequest{Prefix: p, Permanent: true}); err != nil {
		t.Fatal(err)
	}
	_, err := c.Ban(context.Background(), control.BanRequest{Prefix: p, For: time.Second})
	if err == nil || !strings.Contains(err.Error(), "ends sooner") || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("a permanent ban shortened to 1s: %v", err)
	}
	if !h.fw.has("203.0.113.20/32") {
		t.Fatal("the permanent ban is gone")
	}
	bi, err := c.Ban(context.Background(), control.BanRequest{Prefix: p, For: time.Hour, Force: true})
	if err != nil || bi.Replaced == nil || !bi.Replaced.Expires.IsZero() || bi.Replaced.Origin != "admin" || bi.Expires.IsZero() {
		t.Fatalf("forced: %+v %v", bi, err)
	}
	bi, err = c.Ban(context.Background(), control.BanRequest{Prefix: p, For: 2 * time.Hour})
	if err != nil || bi.Replaced == nil || bi.Replaced.Expires.IsZero() {
		t.Fatalf("made longer: %+v %v", bi, err)
	}
	bi, err = c.Ban(context.Background(), control.BanRequest{Prefix: netip.MustParsePrefix("203.0.113.21/32"), For: time.Hour})
	if err != nil || bi.Replaced != nil {
		t.Fatalf("a new ban: %+v %v", bi, err)
	}
}
