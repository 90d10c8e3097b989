package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"sshguard-go/internal/config"
	"sshguard-go/internal/testkit"
)

// TestDurationFlagsAreTheConfigurations: every duration flag of every
// command takes what the configuration file takes (d and w included),
// not Go's syntax.
func TestDurationFlagsAreTheConfigurations(t *testing.T) {
	var walk func(c *cobra.Command)
	n := 0
	walk = func(c *cobra.Command) {
		c.Flags().VisitAll(func(f *pflag.Flag) {
			switch f.Value.(type) {
			case *config.DurationFlag, *config.Duration:
				n++
			default:
				if f.Value.Type() == "duration" {
					t.Errorf("%s --%s is a %T, not a configuration duration", c.CommandPath(), f.Name, f.Value)
				}
			}
		})
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(newRootCmd())
	if n < 8 {
		t.Errorf("only %d duration flags", n)
	}
}

// TestDurationFlags: days, weeks and combinations wherever a command
// takes a duration; a bare number or a sub-second value is refused with
// the flag named and exit status 2.
func TestDurationFlags(t *testing.T) {
	dir := t.TempDir()
	cfg := testkit.WriteConfig(t, "[log]\nfile = \""+recorded+"\"\n[firewall]\nbackend = \"none\"\n")
	state := []string{"--db", filepath.Join(dir, "s.db"), "--socket", filepath.Join(dir, "none.sock"), "--config", cfg}
	log := filepath.Join(dir, "auth.log")
	line := fmt.Sprintf("%s h sshd[1]: Invalid user a from 192.0.2.9 port 1\n", time.Now().UTC().Add(-36*time.Hour).Format(time.RFC3339))
	if err := os.WriteFile(log, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}

	out, _, err := run(t, "", "run", "-t", "--config", cfg, "--ban-time", "7d", "--window", "1d12h")
	if err != nil || !strings.Contains(out, "ban_time = '7d'") || !strings.Contains(out, "window = '36h'") {
		t.Errorf("run -t --ban-time 7d --window 1d12h: %v\n%s", err, out)
	}
	for _, c := range []struct {
		args []string
		want string // in the output
	}{
		{[]string{"scan", "--since", "2d", log}, "192.0.2.9"},
		{[]string{"scan", "--since", "1d", log}, ""},
		{[]string{"scan", "--since", "1w", "--until", "2d", log}, ""},
		{[]string{"scan", "--since", "1w", "--until", "1d", log}, "192.0.2.9"},
		{[]string{"report", "--since", "2d", log}, "192.0.2.9"},
		{[]string{"report", "--since", "2d", "--until", "1d", log}, "192.0.2.9"},
		{[]string{"sessions", "--since", "2w", log}, ""},
		{append([]string{"ban", "203.0.113.7", "--for", "1d"}, state...), "would ban 203.0.113.7/32 until"}, // a dry run: backend "none"
		{append([]string{"report", "--threshold", "1", "--ban", "--for", "3d12h", log}, state...), "192.0.2.9"},
	} {
		out, stderr, err := run(t, "", c.args...)
		if err != nil || !strings.Contains(out, c.want) || c.want == "" && strings.Contains(out, "192.0.2.9") {
			t.Errorf("%v: %v\n%s%s", c.args, err, out, stderr)
		}
	}
	// The ban --for 1d ends in a day.
	out, _, err = run(t, "", append([]string{"list", "--json"}, state...)...)
	var bans []struct {
		Prefix         string
		Since, Expires time.Time
	}
	if err != nil || json.Unmarshal([]byte(out), &bans) != nil {
		t.Fatalf("list: %v\n%s", err, out)
	}
	found := false
	for _, b := range bans {
		if b.Prefix == "203.0.113.7/32" {
			found = true
			if b.Expires.Sub(b.Since) != 24*time.Hour {
				t.Errorf("ban --for 1d: %v to %v", b.Since, b.Expires)
			}
		}
	}
	if !found {
		t.Errorf("ban --for 1d not listed:\n%s", out)
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "-t", "--config", cfg, "--ban-time", "3600"}, `--ban-time: 3600 has no unit: did you mean "3600s" or "1h"?`},
		{[]string{"run", "-t", "--config", cfg, "--ban-time", "1ms"}, `--ban-time: "1ms" is shorter than the shortest unit: durations are whole seconds (units s, m, h, d and w)`},
		{[]string{"run", "-t", "--config", cfg, "--ban-time", "0s"}, `--ban-time: must be at least 1s, is 0s`},
		{[]string{"run", "-t", "--config", cfg, "--window", "31d"}, `--window: must be 1s to 30d, is 31d`},
		{[]string{"run", "-t", "--config", cfg, "--window", "500ms"}, `--window: "500ms" is shorter than the shortest unit: durations are whole seconds (units s, m, h, d and w)`},
		{[]string{"scan", "--since", "99999999999w", log}, `--since: "99999999999w" is too long: the most is 106751d (292 years)`},
		{[]string{"report", "--since", "2 days", log}, `--since: "2 days" is not a duration: write e.g. 30s, 10m, 1h, 7d, 2w or 1d12h`},
		{[]string{"report", "--until", "-1h", log}, `--until: -1h is negative: a duration is 0 or more`},
		{append([]string{"report", "--threshold", "1", "--ban", "--for", "0s", log}, state...), `--for: must be at least 1s, is 0s`},
		{[]string{"sessions", "--since", "86400", log}, `--since: 86400 has no unit: did you mean "86400s" or "1d"?`},
		{append([]string{"ban", "203.0.113.8", "--for", "90"}, state...), `--for: 90 has no unit: did you mean "90s" or "1m30s"?`},
	} {
		_, _, err := run(t, "", c.args...)
		if exitCode(err) != 2 || err.Error() != c.want {
			t.Errorf("%v: %v (exit %d)\nwant %s", c.args, err, exitCode(err), c.want)
		}
	}
	// The range a flag shares with its key: --window 30d is the most.
	if out, _, err := run(t, "", "run", "-t", "--config", cfg, "--window", "30d"); err != nil || !strings.Contains(out, "window = '30d'") {
		t.Errorf("--window 30d: %v", err)
	}
}

// TestManWritesTheConfigurationPage: `sshguard-go man DIR` writes
// sshguard-go.toml.5 beside the command pages, dated by
// SOURCE_DATE_EPOCH, and man formats it where it is installed.
func TestManWritesTheConfigurationPage(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("SOURCE_DATE_EPOCH", "1798761600") // 2027-01-01
	if _, _, err := run(t, "", "man", dir); err != nil {
		t.Fatal(err)
	}
	page, err := os.ReadFile(filepath.Join(dir, "sshguard-go.toml.5"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`.TH "SSHGUARD-GO.TOML" "5" "Jan 2027" "sshguard-go dev"`, ".SS [ban]", `\fBban_time\fR = "1h"`} {
		if !strings.Contains(string(page), want) {
			t.Errorf("sshguard-go.toml.5 lacks %q", want)
		}
	}
	if one, err := os.ReadFile(filepath.Join(dir, "sshguard-go-check-config.1")); err != nil || !strings.Contains(string(one), "sshguard-go.toml(5)") {
		t.Errorf("check-config's page does not point at sshguard-go.toml(5): %v", err)
	}
	if _, err := exec.LookPath("man"); err != nil {
		t.Log("man is not installed: the page is not formatted")
		return
	}
	cmd := exec.Command("man", "--warnings", "-l", filepath.Join(dir, "sshguard-go.toml.5"))
	cmd.Env = append(os.Environ(), "MANWIDTH=80", "MANPAGER=cat")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if out, err := cmd.Output(); err != nil || !strings.Contains(string(out), "ban_time") || stderr.Len() > 0 {
		t.Errorf("man -l: %v\n%s", err, stderr.String())
	}
}
