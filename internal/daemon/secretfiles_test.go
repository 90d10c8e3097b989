package daemon

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSecretFilesWarned: every secret file that every user may read is
// named at the start, with its key, its file's line and its mode (one
// function for all: config.Config.Warnings), and again on reload; one
// of mode 0600 is not.
func TestSecretFilesWarned(t *testing.T) {
	h := newHarness(t)
	hook, pw := filepath.Join(h.dir, "webhook-url"), filepath.Join(h.dir, "smtp-password")
	os.WriteFile(hook, []byte("https://hooks.example.org/services/SECRET\n"), 0o644)
	os.WriteFile(pw, []byte("hunter2\n"), 0o600)
	p := writeConfig(t, h.dir, "[audit]\nlog = \"\"\n[alerts.email]\nhost = \"mail.example.org\"\nfrom = \"a@example.org\"\nto = [\"b@example.org\"]\nusername = \"u\"\n"+
		"password_file = \""+pw+"\"\n[alerts.webhook]\nurl_file = \""+hook+"\"\n")
	h.start()
	want := p + ":10: alerts.webhook.url_file: " + hook + " is readable by every user (mode 0644): anyone on this machine can post to the webhook; chmod o-r it"
	if log := h.log.String(); !strings.Contains(log, want) || strings.Contains(log, "alerts.email.password_file") {
		t.Errorf("start: want the webhook's file named, not the password's:\n%s", log)
	}
	os.Chmod(pw, 0o604)
	if err := h.d.Reload(context.Background(), h.config()); err != nil {
		t.Fatal(err)
	}
	if log := h.log.String(); !strings.Contains(log, "reload: "+p+":8: alerts.email.password_file: "+pw+" is readable by every user (mode 0604): anyone on this machine can send mail as the alerts' account") {
		t.Errorf("reload: the password's file not named:\n%s", log)
	}
}
