package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"sshguard-go/internal/alerttest"
	"sshguard-go/internal/control"
	"sshguard-go/internal/roottest"
	"sshguard-go/internal/session"
	"sshguard-go/internal/share"
	"sshguard-go/internal/store"
	"sshguard-go/internal/testkit"
)

// hostile is what an attacker puts where a user name, a reason or a
// method goes: an OSC that retitles the terminal, BEL, a CSI that clears
// the screen, the same CSI as a C1 character, a byte that is not UTF-8,
// a tab and a newline that would break a table.
const hostile = "\x1b]0;pwned\x07\x1b[2J\u009b2J\x9b\tx\ny"

// terminalSafe fails t when out holds a byte a terminal would obey:
// a C0 control but the newline, DEL, a C1 control, or a byte that is not
// UTF-8.
func terminalSafe(t *testing.T, what, out string) {
	t.Helper()
	for i, r := range out {
		bad := r < 0x20 && r != '\n' || r == 0x7f || r >= 0x80 && r <= 0x9f
		if r == utf8.RuneError {
			_, n := utf8.DecodeRuneInString(out[i:])
			bad = n == 1
		}
		if bad {
			t.Errorf("%s: %U at byte %d of:\n%q", what, r, i, out)
			return
		}
	}
	if strings.Contains(out, "pwned") && !strings.Contains(out, `\x1b]0;pwned`) {
		t.Errorf("%s: the hostile text is not shown escaped:\n%q", what, out)
	}
}

// stateArgs are the flags that point a command at dir's database and
// socket, with a configuration without firewall.
func stateArgs(t *testing.T, dir string) []string {
	t.Helper()
	cfg := filepath.Join(dir, "sg.toml")
	if _, err := os.Stat(cfg); err != nil {
		os.WriteFile(cfg, []byte("[firewall]\nbackend = \"none\"\n"), 0o644)
	}
	return []string{"--config", cfg, "--db", filepath.Join(dir, "state.db"), "--socket", filepath.Join(dir, "ctl.sock")}
}

// TestReadOnlyCommandsCreateNothing: with no daemon and --db naming a
// file that does not exist, the commands that only read fail, naming the
// database and the socket, and leave no file or directory behind (list
// made an empty database and printed an empty table).
func TestReadOnlyCommandsCreateNothing(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "new", "state.db")
	sock := filepath.Join(dir, "ctl.sock")
	cfg := testkit.WriteConfig(t, "[firewall]\nbackend = \"none\"\n")
	for _, c := range [][]string{{"list"}, {"list", "--json"}, {"status"}, {"alerts"}, {"sessions"}, {"sessions", "--active"},
		{"history", "alice"}, {"allow", "list"}, {"fleet", "status"}} {
		out, _, err := run(t, "", append(c, "--config", cfg, "--db", db, "--socket", sock)...)
		if exitCode(err) <= 0 || !strings.Contains(err.Error(), db) || !strings.Contains(err.Error(), sock) || out != "" {
			t.Errorf("%v: exit %d, %v\n%s", c, exitCode(err), err, out)
		}
		if _, err := os.Stat(filepath.Dir(db)); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("%v made %s", c, filepath.Dir(db))
		}
	}
	// The completion of unban says nothing, and makes nothing either.
	out, _, _ := run(t, "", "__complete", "unban", "--config", cfg, "--db", db, "--socket", sock, "")
	if strings.Contains(out, "/") {
		t.Errorf("completion without a database: %q", out)
	}
	if _, err := os.Stat(filepath.Dir(db)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("completion made %s", filepath.Dir(db))
	}
}

// TestEnumFlags: a value a flag does not take is a usage error (exit
// status 2) that lists the values it takes; so is an --ip that is no
// address. alert test names a channel that is not configured with a
// space before "is".
func TestEnumFlags(t *testing.T) {
	dir := t.TempDir()
	args := stateArgs(t, dir)
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"list", "--origin", "bogus"}, []string{"--origin", "bogus", "detected, admin, archive, fleetwide, fleet, fleet:HOST"}},
		{[]string{"list", "--origin", "fleet:"}, []string{"--origin", "fleet:HOST"}},
		{[]string{"unban", "--all", "--origin", "bogus"}, []string{"--origin", "bogus", "detected, admin, archive, fleetwide, fleet, fleet:HOST"}},
		{[]string{"alert", "test", "--channel", "bogus"}, []string{"--channel", "email, sms, webhook"}},
		{[]string{"sessions", "--ip", "foo"}, []string{"--ip", "foo", "not an IP address"}},
	} {
		a := c.args
		if c.args[0] != "alert" {
			a = append(a, args...)
		}
		_, _, err := run(t, "", a...)
		if exitCode(err) != 2 {
			t.Errorf("%v: exit %d, %v", c.args, exitCode(err), err)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v: %q does not say %q", c.args, err, w)
			}
		}
	}
	_, _, err := run(t, "", "alert", "test", "--channel", "sms", "--config", args[1])
	if exitCode(err) != 2 || !strings.Contains(err.Error(), "no alert channel sms is configured in "+args[1]) {
		t.Errorf("alert test --channel sms without sms: %v", err)
	}
}

// banDB writes a database in dir with three bans, of three origins,
// whose reason and user are hostile.
func banDB(t *testing.T, dir string) {
	t.Helper()
	db, err := store.Open(filepath.Join(dir, "state.db"), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	now := time.Now()
	for _, b := range []store.Ban{
		{Prefix: netip.MustParsePrefix("203.0.113.7/32"), Origin: "detected", Reason: "reason " + hostile, Users: []string{"root", "user " + hostile}},
		{Prefix: netip.MustParsePrefix("198.51.100.0/24"), Origin: "fleet:web-2", Reason: "shared"},
		{Prefix: netip.MustParsePrefix("192.0.2.9/32"), Origin: "admin", Reason: "by hand"},
	} {
		b.Start, b.Expires = now.Add(-time.Minute), now.Add(time.Hour)
		testkit.RecordBans(t, db, &b)
	}
}

// TestListOriginZoneAndSafety: list shows each ban's origin and its time
// with the offset from UTC; --origin fleet keeps the bans of every host
// of the fleet; attacker text is escaped in the table and exact in JSON.
func TestListOriginZoneAndSafety(t *testing.T) {
	dir := t.TempDir()
	banDB(t, dir)
	args := stateArgs(t, dir)
	before, _ := os.ReadFile(args[3])
	out, _, err := run(t, "", append([]string{"list"}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 4 || !regexp.MustCompile(`^PREFIX +ORIGIN +BANNED SINCE +EXPIRES IN`).MatchString(lines[0]) {
		t.Fatalf("list:\n%s", out)
	}
	stampRE := regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)`)
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) < 4 || !stampRE.MatchString(f[2]) {
			t.Errorf("row without origin and a time with its zone: %q", l)
		}
	}
	if !strings.Contains(out, "fleet:web-2") || !strings.Contains(out, "detected") {
		t.Errorf("origins missing:\n%s", out)
	}
	terminalSafe(t, "list", out)
	out, _, err = run(t, "", append([]string{"list", "--origin", "fleet"}, args...)...)
	if err != nil || strings.Count(out, "\n") != 2 || !strings.Contains(out, "198.51.100.0/24") {
		t.Errorf("--origin fleet: %v\n%s", err, out)
	}
	out, _, err = run(t, "", append([]string{"list", "--origin", "fleet:web-3"}, args...)...)
	if err != nil || strings.Count(out, "\n") != 1 {
		t.Errorf("--origin fleet:web-3: %v\n%s", err, out)
	}
	out, _, err = run(t, "", append([]string{"list", "--json"}, args...)...)
	var bans []control.BanInfo
	if err != nil || json.Unmarshal([]byte(out), &bans) != nil || len(bans) != 3 {
		t.Fatalf("--json: %v\n%s", err, out)
	}
	for _, b := range bans {
		if b.Prefix.String() == "203.0.113.7/32" && (b.Reason != strings.ToValidUTF8("reason "+hostile, "\ufffd") || b.LastUser != strings.ToValidUTF8("user "+hostile, "\ufffd")) {
			t.Errorf("JSON changed the text: %+v", b)
		}
	}
	if !strings.Contains(out, `\u001b]0;pwned\u0007\u001b[2J`) {
		t.Errorf("JSON: %s", out)
	}
	if after, _ := os.ReadFile(args[3]); string(after) != string(before) {
		t.Error("list changed the database")
	}
}

// TestCompletion: shell completion offers the banned prefixes to unban
// (read from the database) and the values of --origin and --channel.
func TestCompletion(t *testing.T) {
	dir := t.TempDir()
	banDB(t, dir)
	args := stateArgs(t, dir)
	out, _, err := run(t, "", append(append([]string{"__complete", "unban"}, args...), "")...)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"203.0.113.7/32", "198.51.100.0/24", "192.0.2.9/32"} {
		if !strings.Contains(out, "\n"+p+"\t") && !strings.HasPrefix(out, p+"\t") {
			t.Errorf("unban: %s not offered:\n%s", p, out)
		}
	}
	terminalSafe(t, "completion", strings.ReplaceAll(out, "\t", " "))
	out, _, _ = run(t, "", append(append([]string{"__complete", "unban"}, args...), "198.")...)
	if !strings.Contains(out, "198.51.100.0/24") || strings.Contains(out, "203.0.113.7") {
		t.Errorf("unban 198.:\n%s", out)
	}
	out, _, _ = run(t, "", "__complete", "list", "--origin", "")
	for _, o := range []string{"detected", "admin", "archive", "fleetwide", "fleet"} {
		if !strings.Contains(out, "\n"+o+"\t") && !strings.HasPrefix(out, o+"\t") {
			t.Errorf("--origin: %s not offered:\n%s", o, out)
		}
	}
	out, _, _ = run(t, "", "__complete", "alert", "test", "--channel", "")
	for _, c := range []string{"email", "sms", "webhook"} {
		if !strings.Contains(out, c+"\t") {
			t.Errorf("--channel: %s not offered:\n%s", c, out)
		}
	}
}

// TestSessionsAndHistorySafe: a session and a login whose method, user,
// command and file name are hostile print escaped in sessions and
// history, and exact in their JSON.
func TestSessionsAndHistorySafe(t *testing.T) {
	dir := t.TempDir()
	args := stateArgs(t, dir)
	db, err := store.Open(args[3], time.Second)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now().Add(-time.Hour)
	end := start.Add(time.Minute)
	user := "eve" + strings.ToValidUTF8(hostile, "\ufffd") // as the database keeps it: JSON
	ss := &session.Session{Host: "web-01", PID: 40, User: user, IP: "198.51.100.7", Port: 50000, Method: "password" + hostile, Start: start, End: &end,
		Duration: 60, EndReason: session.EndLogout + hostile, Transfers: []session.Transfer{{Time: end, Path: "/tmp/" + hostile, BytesRead: 1}},
		Commands: []session.Command{{Time: end, Argv: []string{"printf", hostile}, Cwd: "/"}}}
	db.PutSession(store.SessionKey(ss.Start, ss.Host, ss.PID), ss.Marshal(), false)
	db.RecordLogin(store.Login{Time: start, User: user, Addr: netip.MustParseAddr("198.51.100.7"), Method: "password" + hostile, Severity: "info" + hostile},
		func(store.LoginHistory, *store.Login) []byte { return nil })
	db.Close()

	out, _, err := run(t, "", append([]string{"sessions"}, args...)...)
	if err != nil || !strings.Contains(out, "198.51.100.7") {
		t.Fatalf("sessions: %v\n%s", err, out)
	}
	terminalSafe(t, "sessions", out)
	out, _, err = run(t, "", append([]string{"sessions", "--json"}, args...)...)
	var list []*session.Session
	if err != nil || json.Unmarshal([]byte(out), &list) != nil || len(list) != 1 || list[0].Commands[0].Argv[1] != strings.ToValidUTF8(hostile, "\ufffd") {
		t.Fatalf("sessions --json: %v\n%s", err, out)
	}
	out, _, err = run(t, "", append([]string{"history", user}, args...)...)
	if err != nil || !strings.Contains(out, "1 logins") {
		t.Fatalf("history: %v\n%s", err, out)
	}
	terminalSafe(t, "history", out)
}

// TestScanAndReportSafe: scan's and report's text of a log whose user
// names and method hold control sequences escape them.
func TestScanAndReportSafe(t *testing.T) {
	log := filepath.Join(t.TempDir(), "auth.log")
	os.WriteFile(log, []byte("Nov 23 20:14:49 web sshd[1]: Invalid user a\x1b]0;pwned\x07\x1b[2J from 203.0.113.7 port 41536\n"+
		"Nov 23 20:14:50 web sshd[2]: Accepted \x1b]0;pwned\x07\x9bkey for root from 203.0.113.8 port 41537 ssh2\n"+
		"Nov 23 20:14:51 web sshd[3]: Failed password for invalid user b\x1b[31m\u009b from 203.0.113.7 port 41538 ssh2\n"), 0o644)
	out, _, err := run(t, "", "scan", "-j", "1", log)
	if err != nil || strings.Count(out, "\n") != 3 {
		t.Fatalf("scan: %v\n%s", err, out)
	}
	terminalSafe(t, "scan", out)
	out, _, err = run(t, "", "scan", "--json", log)
	if err != nil || !strings.Contains(out, `\u001b]0;pwned\u0007`) {
		t.Fatalf("scan --json: %v\n%s", err, out)
	}
	out, _, err = run(t, "", "report", "--config", testkit.WriteConfig(t, ""), log)
	if err != nil || !strings.Contains(out, "203.0.113.7") {
		t.Fatalf("report: %v\n%s", err, out)
	}
	terminalSafe(t, "report", out)
}

// fakeDaemon serves b on a control socket in dir, as a daemon would.
func fakeDaemon(t *testing.T, dir string, b control.Backend) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- control.Serve(ctx, filepath.Join(dir, "ctl.sock"), b, control.Limits()) }()
	t.Cleanup(func() { cancel(); <-done })
	waitControl(t, dir)
}

// hostileDaemon answers status, alerts and fleet status with text from
// logs, peers and hosts that holds control sequences.
type hostileDaemon struct{ control.Backend }

func (hostileDaemon) Status(context.Context) (control.Status, error) {
	return control.Status{Started: time.Now().Add(-time.Hour), Sources: []control.SourceStatus{{Name: "/var/log/" + hostile, Position: "cursor " + hostile, Lines: 3}},
		Events: map[string]int64{"failure" + hostile: 2}}, nil
}

func (hostileDaemon) Alerts(context.Context, bool, int) ([]control.AlertInfo, error) {
	return []control.AlertInfo{{ID: 1, Time: time.Now(), Kind: "login", Severity: "high", Subject: "login of " + hostile,
		Deliveries: map[string]control.DeliveryInfo{"webhook": {State: "pending", Attempts: 2, Error: "500: " + hostile}}}}, nil
}

func (hostileDaemon) Fleet(context.Context) (json.RawMessage, error) {
	st := share.Status{Name: "web-1" + hostile, Server: "nats://x" + hostile, Stream: "S" + hostile, LastError: "peer said " + hostile,
		Counts:    share.Counts{Published: 1, Received: map[string]map[string]int64{"web-2" + hostile: {"bans" + hostile: 3}}},
		Fleetwide: &share.CountStatus{Quorum: 2, Throttled: map[string]int64{"web-3" + hostile: 1}, Refused: map[string]int64{"web-4" + hostile: 1}}}
	return json.Marshal(st)
}

// TestDaemonTextSafe: status, alerts and fleet status print the
// daemon's text (source names, alert subjects and errors, the fleet's
// host names and errors) escaped, and the JSON as the daemon sent it.
func TestDaemonTextSafe(t *testing.T) {
	dir := t.TempDir()
	fakeDaemon(t, dir, hostileDaemon{})
	args := stateArgs(t, dir)
	for _, c := range [][]string{{"status"}, {"alerts"}, {"fleet", "status"}} {
		out, _, err := run(t, "", append(c, args...)...)
		if err != nil || !strings.Contains(out, "pwned") {
			t.Errorf("%v: %v\n%s", c, err, out)
		}
		terminalSafe(t, strings.Join(c, " "), out)
		out, _, err = run(t, "", append(append(c, "--json"), args...)...)
		if err != nil || !strings.Contains(out, `\u001b]0;pwned\u0007`) {
			t.Errorf("%v --json: %v\n%s", c, err, out)
		}
	}
	out, _, err := run(t, "", append([]string{"fleet", "status", "--json"}, args...)...)
	want, _ := hostileDaemon{}.Fleet(context.Background())
	if err != nil || out != string(want)+"\n" {
		t.Errorf("fleet status --json changed the daemon's JSON:\n%s\n%s", out, want)
	}
}

// TestFleetSummarySafe: a host that answers an error holding control
// sequences prints escaped in fleet summary's table (hosts.toml allows
// no such host name).
func TestFleetSummarySafe(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		json.NewEncoder(w).Encode(map[string]string{"error": "boom " + hostile})
	}))
	defer srv.Close()
	hosts := filepath.Join(t.TempDir(), "hosts.toml")
	os.WriteFile(hosts, []byte(fmt.Sprintf("timeout = \"2s\"\n[[host]]\nname = \"web-1\"\nurl = %q\n", srv.URL)), 0o600)
	out, _, err := run(t, "", "fleet", "summary", "--hosts", hosts)
	if exitCode(err) != 1 || !strings.Contains(out, "boom") || !strings.Contains(out, "web-") {
		t.Fatalf("fleet summary: %v\n%s", err, out)
	}
	terminalSafe(t, "fleet summary", out)
}

// TestAsNonRoot: another account of the machine (uid 65534) running the
// commands against root's database and socket, or banning (nftables),
// is told to run as root, with the database or socket named (it was
// told "permission denied" or "netlink receive: operation not
// permitted").
func TestAsNonRoot(t *testing.T) {
	roottest.Require(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, d := range []string{dir, filepath.Dir(dir)} { // open to all, as /var/lib and /run are
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(dir, "sshguard-go")
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "sg.toml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("[firewall]\ntable = \"sgnr%d\"\n", os.Getpid()%100000)), 0o644)
	asNobody := func(args ...string) (string, int) {
		t.Helper()
		cmd := exec.Command(bin, append(args, "--config", cfg)...)
		cmd.Env = []string{"SG_MAIN=1", "PATH=/usr/bin:/bin"}
		cmd.Dir = "/"
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := cmd.CombinedOutput()
		return string(out), procExit(err)
	}

	// Root's database (0600), no daemon.
	rootDB := filepath.Join(dir, "state.db")
	db, err := store.Open(rootDB, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	none := filepath.Join(dir, "none.sock")
	for _, c := range [][]string{{"list"}, {"status"}, {"alerts"}, {"history", "alice"}} {
		out, code := asNobody(append(c, "--db", rootDB, "--socket", none)...)
		if code == 0 || !strings.Contains(out, "run as root") || !strings.Contains(out, rootDB) {
			t.Errorf("%v with root's database: exit %d\n%s", c, code, out)
		}
	}

	// Root's socket (0600), a daemon behind it.
	sockDir := filepath.Join(dir, "run")
	os.Mkdir(sockDir, 0o755)
	fakeDaemon(t, sockDir, hostileDaemon{})
	sock := filepath.Join(sockDir, "ctl.sock")
	for _, c := range [][]string{{"list"}, {"status"}, {"unban", "203.0.113.7"}} {
		out, code := asNobody(append(c, "--db", rootDB, "--socket", sock)...)
		if code == 0 || !strings.Contains(out, "run as root") || !strings.Contains(out, sock) {
			t.Errorf("%v with root's socket: exit %d\n%s", c, code, out)
		}
	}

	// A ban needs the kernel's firewall: a database of its own is no help.
	own := filepath.Join(dir, "own")
	os.Mkdir(own, 0o777)
	os.Chmod(own, 0o777)
	out, code := asNobody("ban", "203.0.113.7", "--db", filepath.Join(own, "state.db"), "--socket", none)
	if code == 0 || !strings.Contains(out, "run as root") || !strings.Contains(out, "nftables") {
		t.Errorf("ban as uid 65534: exit %d\n%s", code, out)
	}
}

// TestServerErrorsSafe: alert test prints a server's error escaped.
func TestServerErrorsSafe(t *testing.T) {
	s := alerttest.StartSMTP(t, alerttest.Options{})
	tw := alerttest.StartTwilio(t)
	p := alerttest.WriteConfig(t, t.TempDir(), s, fmt.Sprintf("[alerts.sms]\naccount_sid = %q\nauth_token = %q\nfrom = \"+15005550006\"\nto = [\"+15551230001\"]\nbase_url = %q\n",
		tw.SID, tw.Token, tw.URL))
	tw.FailNext(400, 21211, "bad number "+hostile)
	out, _, err := run(t, "", "alert", "test", "--config", p, "--channel", "sms")
	if exitCode(err) != 1 || !strings.Contains(out, "sms: FAILED") || !strings.Contains(out, "pwned") {
		t.Fatalf("exit %d\n%s", exitCode(err), out)
	}
	terminalSafe(t, "alert test", out)
}
