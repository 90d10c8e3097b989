package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"sshguard-go/internal/roottest"
)

const unitFile = "../../deploy/sshguard-go.service"

// TestUnitSecurity: the shipped unit's exposure, as systemd itself rates
// it, is 2.0 or lower (Debian's fail2ban and sshguard units: 9.6).
func TestUnitSecurity(t *testing.T) {
	roottest.Require(t, "systemd-analyze")
	out, err := exec.Command("systemd-analyze", "security", "--offline=true", "--no-pager", unitFile).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`Overall exposure level for sshguard-go.service: (\d+\.\d+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no exposure level in:\n%s", out)
	}
	level, _ := strconv.ParseFloat(string(m[1]), 64)
	t.Logf("exposure %.1f", level)
	if level > 2.0 {
		t.Fatalf("exposure %.1f, want 2.0 or lower:\n%s", level, out)
	}
}

// TestUnitVerify: systemd-analyze verify finds nothing to say about the
// unit. It checks that ExecStart's program exists, so the unit is checked
// with the path of this test's binary in its place (and as it is when the
// package is installed; .ci/run checks that one with its man pages too).
func TestUnitVerify(t *testing.T) {
	roottest.Require(t, "systemd-analyze")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	text, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(text), "ExecStart=/usr/bin/sshguard-go run") {
		t.Fatal("the unit does not start /usr/bin/sshguard-go run")
	}
	dir := t.TempDir()
	unit := filepath.Join(dir, "sshguard-go.service")
	if err := os.WriteFile(unit, []byte(strings.ReplaceAll(string(text), "/usr/bin/sshguard-go", self)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("systemd-analyze", "verify", "--man=no", unit).CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}
