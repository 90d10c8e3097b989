package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sshguard-go/internal/testkit"
)

// TestReportNotifyNoReportChannel: report --notify with addresses over
// the threshold and only a channel that takes no report messages says so
// and what to change, and exits 1 (it said "nothing to notify").
func TestReportNotifyNoReportChannel(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "auth.log")
	var b strings.Builder
	for i := range 20 {
		fmt.Fprintf(&b, "Nov 23 20:14:%02d h sshd[%d]: Failed password for root from 203.0.113.%d port 1 ssh2\n", i, 100+i, 1+i%5)
	}
	os.WriteFile(log, []byte(b.String()), 0o644)
	asked := 0
	hook := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { asked++ }))
	defer hook.Close()
	cfg := testkit.WriteConfig(t, fmt.Sprintf("[alerts.webhook]\nurl = %q\n", hook.URL))
	out, _, err := run(t, "", "report", "--config", cfg, "--threshold", "3", "--notify", log)
	if exitCode(err) != 1 || !strings.Contains(err.Error(), "5 addresses over the threshold, but no alert channel takes report messages") ||
		!strings.Contains(err.Error(), `add "report" to kinds of [alerts.webhook]`) || asked != 0 || !strings.Contains(out, "203.0.113.1") {
		t.Fatalf("exit %d, %v, %d requests\n%s", exitCode(err), err, asked, out)
	}
	cfg = testkit.WriteConfig(t, fmt.Sprintf("[alerts.webhook]\nurl = %q\nkinds = [\"report\"]\nmin_severity = \"high\"\n", hook.URL))
	_, _, err = run(t, "", "report", "--config", cfg, "--threshold", "3", "--notify", log)
	if exitCode(err) != 1 || !strings.Contains(err.Error(), `lower min_severity of [alerts.webhook] from "high" to "warning"`) || asked != 0 {
		t.Fatalf("min_severity high: exit %d, %v", exitCode(err), err)
	}
}
