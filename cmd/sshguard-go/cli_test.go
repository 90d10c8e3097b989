package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"sshguard-go/internal/loggen"
	"sshguard-go/internal/store"
	"sshguard-go/internal/testkit"
)

// run executes the CLI with args and returns stdout, stderr and the error.
func run(t *testing.T, stdin string, args ...string) (string, string, error) {
	t.Helper()
	cmd := newRootCmd()
	var out, errb bytes.Buffer
	cmd.SetArgs(args)
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetOut(&out)
	cmd.SetErr(&errb)
	err := cmd.Execute()
	return out.String(), errb.String(), err
}

const recorded = "../../testdata/recorded/openssh-9.2-traditional.log"

func TestScanJSONContract(t *testing.T) {
	out, _, err := run(t, "", "scan", "--json", recorded, "../../testdata/samples/openssh-versions.log")
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]bool{"failure": true, "probe": true, "success": true, "session_open": true,
		"session_close": true, "transfer": true, "notice": true}
	lastFile, lastLine := "", 0.0
	seen := map[string]int{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not JSON: %s: %v", l, err)
		}
		for _, f := range []string{"file", "line", "kind", "reason", "counted"} {
			if _, ok := m[f]; !ok {
				t.Fatalf("field %s missing: %s", f, l)
			}
		}
		kind := m["kind"].(string)
		if !kinds[kind] {
			t.Fatalf("kind %q: %s", kind, l)
		}
		seen[kind]++
		file, line := m["file"].(string), m["line"].(float64)
		if file == lastFile && line <= lastLine {
			t.Fatalf("out of input order: %s after line %v", l, lastLine)
		}
		lastFile, lastLine = file, line
		if ip, ok := m["ip"].(string); ok && (ip == "10.9.9.9" || ip == "10.9.9.8") {
			t.Fatalf("spoofed address reported: %s", l)
		}
	}
	for k := range kinds {
		if seen[k] == 0 {
			t.Errorf("no %s events", k)
		}
	}
}

func TestScanStdinAndText(t *testing.T) {
	in := "Nov 23 20:14:49 web sshd[1]: Failed password for root from 203.0.113.7 port 41536 ssh2\n"
	out, _, err := run(t, in, "scan")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "failure") || !strings.Contains(out, "203.0.113.7:41536") || !strings.Contains(out, `user="root"`) || !strings.Contains(out, "-:1") {
		t.Fatalf("text output: %q", out)
	}
}

func TestScanUnreadableInputKeepsTheRest(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope.log")
	out, stderr, err := run(t, "", "scan", "--json", missing, recorded)
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != 1 {
		t.Fatalf("err = %v, want exit status 1", err)
	}
	if !strings.Contains(stderr, "nope.log") {
		t.Fatalf("stderr does not name the file: %q", stderr)
	}
	if strings.Count(out, "\n") < 50 {
		t.Fatalf("the readable input was not scanned: %d lines", strings.Count(out, "\n"))
	}
}

func TestReportJSON(t *testing.T) {
	out, _, err := run(t, "", "report", "--json", recorded)
	if err != nil {
		t.Fatal(err)
	}
	var rep map[string]struct {
		Failed, Probes, Successes int
		Users                     []string
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	c := rep["10.200.0.2"]
	if c.Failed != 7 || c.Probes != 3 || c.Successes != 3 || len(c.Users) != 6 {
		t.Fatalf("10.200.0.2: %+v", c)
	}
	if rep["fd00:200::2"].Failed != 1 {
		t.Fatalf("fd00:200::2: %+v", rep["fd00:200::2"])
	}
	if _, ok := rep["10.9.9.9"]; ok {
		t.Fatal("spoofed address in report")
	}
}

func TestReportTopAndSince(t *testing.T) {
	out, _, err := run(t, "", "report", "--top", "1", recorded)
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 2 || !strings.HasPrefix(lines[1], "10.200.0.2") {
		t.Fatalf("--top 1:\n%s", out)
	}
	// The sample's lines are older than a minute: nothing is left.
	old := filepath.Join(t.TempDir(), "old.log")
	os.WriteFile(old, []byte("2020-01-01T00:00:00Z h sshd[1]: Invalid user a from 192.0.2.1 port 1\n"), 0o644)
	out, _, err = run(t, "", "report", "--since", "1m", old)
	if err != nil || strings.Contains(out, "192.0.2.1") {
		t.Fatalf("--since: err %v\n%s", err, out)
	}
}

// TestScanWindow: scan --since and --until print only the events in the
// span, whether the inputs are read one after the other or at once.
func TestScanWindow(t *testing.T) {
	dir := t.TempDir()
	now := time.Now().UTC()
	var names []string
	for i, ago := range []time.Duration{3 * time.Hour, 90 * time.Minute, 10 * time.Minute} {
		name := filepath.Join(dir, fmt.Sprintf("auth.log.%d", i))
		line := fmt.Sprintf("%s h sshd[1]: Invalid user a from 192.0.2.%d port 1\n", now.Add(-ago).Format(time.RFC3339), i+1)
		os.WriteFile(name, []byte(line), 0o644)
		names = append(names, name)
	}
	for _, j := range []string{"1", "4"} {
		out, _, err := run(t, "", append([]string{"scan", "-j", j, "--since", "2h", "--until", "1h"}, names...)...)
		if err != nil || strings.Count(out, "\n") != 1 || !strings.Contains(out, "192.0.2.2") {
			t.Fatalf("-j %s: err %v\n%s", j, err, out)
		}
		out, _, err = run(t, "", append([]string{"scan", "-j", j, "--since", "2h"}, names...)...)
		if err != nil || strings.Count(out, "\n") != 2 || strings.Contains(out, "192.0.2.1") {
			t.Fatalf("-j %s --since: err %v\n%s", j, err, out)
		}
	}
}

func TestRunRefusesDamagedDatabase(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "state.db")
	os.WriteFile(db, bytes.Repeat([]byte("junk"), 8192), 0o600)
	os.WriteFile(filepath.Join(dir, "auth.log"), nil, 0o600)
	_, _, err := run(t, "", "run", "--dry-run", "--config", "../../deploy/sshguard-go.toml", "--db", db,
		"--log", filepath.Join(dir, "auth.log"), "--socket", filepath.Join(dir, "c.sock"))
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != 78 || !strings.Contains(err.Error(), db) || !strings.Contains(err.Error(), "mv ") {
		t.Fatalf("err = %v", err)
	}
}

// TestHelpHasExamples: every command a user runs shows examples in its
// help (and so in its man page).
func TestHelpHasExamples(t *testing.T) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Hidden || c.Name() == "help" || (c.Parent() != nil && c.Parent().Name() == "completion") {
			return
		}
		if c.Runnable() && c.Example == "" {
			t.Errorf("%q has no examples", c.CommandPath())
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	root := newRootCmd()
	root.InitDefaultCompletionCmd()
	walk(root)
}

func TestCheckConfig(t *testing.T) {
	p := testkit.WriteConfig(t, "[log]\nfile = \""+recorded+"\"\n[alerts.email]\nhost = \"mail.example.org\"\nfrom = \"a@example.org\"\nto = [\"b@example.org\"]\nusername = \"u\"\npassword = \"hunter2\"\n[alerts.webhook]\nurl = \"https://hooks.example.org/services/T000/B000/XXXXSECRET\"\n")
	out, _, err := run(t, "", "check-config", p)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, "hunter2") || strings.Contains(out, "XXXXSECRET") || !strings.Contains(out, "password = '********'") ||
		!strings.Contains(out, "url = 'https://hooks.example.org/********'") || !strings.Contains(out, "window = '10m'") {
		t.Fatalf("check-config output:\n%s", out)
	}
	os.Chmod(p, 0o644)
	_, stderr, _ := run(t, "", "check-config", "-q", p)
	if !strings.Contains(stderr, "holds secrets and is readable by others") {
		t.Errorf("no warning about a world-readable file with secrets: %q", stderr)
	}
	bad := testkit.WriteConfig(t, "[ban]\nban_time = \"1h\"\nfactor = 0.5\n")
	_, _, err = run(t, "", "check-config", bad)
	if exitCode(err) != 2 || !strings.Contains(err.Error(), bad+":3: ban.factor") {
		t.Fatalf("bad file: %v", err)
	}
	out, _, err = run(t, "", "run", "-t", "--config", p, "--threshold", "3")
	if err != nil || !strings.Contains(out, "threshold = 3.0") {
		t.Fatalf("run -t: %v\n%s", err, out)
	}
}

func TestDBCompact(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "state.db")
	d, err := store.Open(db, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = run(t, "", "db", "compact", "--db", db, "--config", "../../deploy/sshguard-go.toml")
	if exitCode(err) != 1 || !strings.Contains(err.Error(), "stop it first") {
		t.Fatalf("compact of a database in use: %v", err)
	}
	d.Close()
	out, _, err := run(t, "", "db", "compact", "--db", db, "--config", "../../deploy/sshguard-go.toml")
	if err != nil || !strings.Contains(out, " MB -> ") {
		t.Fatalf("compact: %v\n%s", err, out)
	}
}

// TestBanFlags: --for must be at least 1s, --permanent is the only way to
// no expiry, and the caller's own SSH session is not banned without
// --force.
func TestBanFlags(t *testing.T) {
	dir := t.TempDir()
	cfg := testkit.WriteConfig(t, "[firewall]\nbackend = \"none\"\n")
	args := func(a ...string) []string {
		return append(a, "--db", filepath.Join(dir, "s.db"), "--socket", filepath.Join(dir, "none.sock"), "--config", cfg)
	}
	for _, bad := range [][]string{{"--for", "1ns"}, {"--for", "0"}, {"--for", "-1h"}, {"--for", "1h", "--permanent"}} {
		if _, _, err := run(t, "", args(append([]string{"ban", "203.0.113.7"}, bad...)...)...); exitCode(err) != 2 {
			t.Errorf("ban %v: %v", bad, err)
		}
	}
	t.Setenv("SSH_CLIENT", "203.0.113.9 51234 22")
	if _, _, err := run(t, "", args("ban", "203.0.113.0/24", "--for", "1h")...); exitCode(err) != 1 || !strings.Contains(err.Error(), "your own SSH session") {
		t.Fatalf("ban of the caller's own network: %v", err)
	}
	if out, _, err := run(t, "", args("ban", "203.0.113.0/24", "--for", "1h", "--force")...); err != nil || !strings.Contains(out, "dry run (firewall.backend = \"none\"): would ban 203.0.113.0/24") {
		t.Fatalf("forced: %v %s", err, out)
	}
}

func TestScanUnrecognised(t *testing.T) {
	log := filepath.Join(t.TempDir(), "auth.log")
	os.WriteFile(log, []byte("Nov 23 20:14:49 h sshd[1]: Invalid user a from 192.0.2.1 port 1\n"+
		"Nov 23 20:14:49 h sshd[2]: a message no sshd writes\n"+
		"Nov 23 20:14:49 h cron[3]: sshd[4]: not ours\n"+
		"{{weird}} h sshd_x[5] sshd[6] no tag where one belongs\n"), 0o644)
	out, _, err := run(t, "", "scan", "--unrecognised", log)
	if err != nil {
		t.Fatal(err)
	}
	want := log + ":2: unknown_shape: Nov 23 20:14:49 h sshd[2]: a message no sshd writes\n" +
		log + ":4: unknown_header: {{weird}} h sshd_x[5] sshd[6] no tag where one belongs\n"
	if out != want {
		t.Fatalf("scan --unrecognised:\n%s\nwant:\n%s", out, want)
	}
}

// TestParallelInputs: -j reads inputs at once; scan keeps the input
// order, and report's merged summary is the one read in sequence.
func TestParallelInputs(t *testing.T) {
	dir := t.TempDir()
	var files []string
	for i := range 4 {
		p := filepath.Join(dir, fmt.Sprintf("auth.log.%d", i))
		var b strings.Builder
		if err := loggen.Write(&b, 3000, uint64(i+1), loggen.Traditional); err != nil {
			t.Fatal(err)
		}
		// A host of its own per file: no connection runs across two files
		// (read one after the other, they would be joined).
		os.WriteFile(p, []byte(strings.ReplaceAll(b.String(), " web-01 ", fmt.Sprintf(" web-%d ", i))), 0o644)
		files = append(files, p)
	}
	cfg := testkit.WriteConfig(t, "")
	for _, cmd := range [][]string{{"scan", "--json"}, {"report", "--json", "--config", cfg}} {
		one, _, err1 := run(t, "", append(append(cmd, "-j", "1"), files...)...)
		four, _, err4 := run(t, "", append(append(cmd, "-j", "4"), files...)...)
		if err1 != nil || err4 != nil || one != four || len(one) < 1000 {
			t.Fatalf("%v: -j 1 and -j 4 differ (%v %v, %d and %d bytes)", cmd, err1, err4, len(one), len(four))
		}
	}
}

// TestReportThresholdAllow: --threshold keeps the addresses whose weighted
// attempts reach it; the allowlist (configuration and --allow) leaves
// addresses out, counted on standard error.
func TestReportThresholdAllow(t *testing.T) {
	log := filepath.Join(t.TempDir(), "auth.log")
	var b strings.Builder
	for i, ip := range []string{"192.0.2.1", "192.0.2.1", "192.0.2.1", "198.51.100.7", "198.51.100.7", "198.51.100.7", "203.0.113.5"} {
		fmt.Fprintf(&b, "Nov 23 20:14:%02d h sshd[%d]: Failed password for root from %s port 1 ssh2\n", i, 100+i, ip)
	}
	os.WriteFile(log, []byte(b.String()), 0o644)
	cfg := testkit.WriteConfig(t, "[ban]\nallow = [\"192.0.2.0/24\"]\n")
	out, stderr, err := run(t, "", "report", "--json", "--config", cfg, "--threshold", "2", "--allow", "203.0.113.0/24", log)
	if err != nil || !strings.Contains(out, `"198.51.100.7"`) || strings.Contains(out, "192.0.2.1") || strings.Contains(out, "203.0.113.5") ||
		!strings.Contains(stderr, "2 allowlisted addresses left out") {
		t.Fatalf("%v\n%s\n%s", err, out, stderr)
	}
}

// TestHostileArchivesKeepTheRest: scan and report, one input after the
// other and -j 2, refuse a zstd archive asking for a 512 MiB window, an xz
// archive asking for a 4 GiB dictionary, one of 2,000 empty blocks
// asking for 64 MiB each and one whose LZMA2 chunk hides a block asking
// for 4 GiB after where its decoder stops, each named with its reason; the
// other input is read, and the exit status says inputs failed.
func TestHostileArchivesKeepTheRest(t *testing.T) {
	dir := t.TempDir()
	line := "Nov 23 20:14:49 h sshd[1]: Invalid user a from 192.0.2.1 port 1\n"
	lines := []byte(strings.Repeat(line, 1000))
	zst, xzf, blocks := filepath.Join(dir, "long29.log.zst"), filepath.Join(dir, "dict4g.log.xz"), filepath.Join(dir, "blocks.log.xz")
	os.WriteFile(zst, testkit.HostileZstd(t, lines, 29), 0o644)
	os.WriteFile(xzf, testkit.HostileXZ(t, lines, 40), 0o644)
	os.WriteFile(blocks, testkit.BlocksXZ(28, append([][]byte{[]byte(line)}, make([][]byte, 2000)...)...), 0o644)
	smuggled := filepath.Join(dir, "smuggled.log.xz")
	os.WriteFile(smuggled, testkit.SmuggledXZ(40, []byte(strings.Repeat("Nov 23 20:14:49 h sshd[1]: Invalid user hidden from 192.0.2.99 port 1\n", 1000))), 0o644)
	cfg := testkit.WriteConfig(t, "")
	for _, cmd := range [][]string{{"scan", "--json"}, {"report", "--json", "--config", cfg}} {
		for _, j := range []string{"1", "2"} {
			out, stderr, err := run(t, "", append(append(cmd, "-j", j), zst, recorded, xzf, blocks, smuggled)...)
			var ee *exitError
			if !errors.As(err, &ee) || ee.code != 1 {
				t.Fatalf("%v -j %s: err = %v, want exit status 1", cmd, j, err)
			}
			if !strings.Contains(stderr, "long29.log.zst: zstd window larger than the 128 MiB") || !strings.Contains(stderr, "dict4g.log.xz: xz dictionary of 4095 MiB") ||
				!strings.Contains(stderr, "blocks.log.xz: xz blocks whose dictionaries come to 128 MiB by block 2") ||
				!strings.Contains(stderr, "smuggled.log.xz: xz: damaged: the LZMA2 data of block 1 ends inside a chunk") {
				t.Fatalf("%v -j %s: stderr does not name the four archives and why: %q", cmd, j, stderr)
			}
			if strings.Contains(out, "192.0.2.99") {
				t.Fatalf("%v -j %s: the lines hidden in smuggled.log.xz were read: %q", cmd, j, out)
			}
			if !strings.Contains(out, "10.200.0.2") {
				t.Fatalf("%v -j %s: the readable input was not read: %q", cmd, j, out)
			}
		}
	}
}
