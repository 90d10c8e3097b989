package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSecretFileModes: every key naming a file that holds a secret is
// checked as api.token_file was: one that every user may read is a
// warning naming the key, the file's line, the file and its mode; one
// that only its owner (or group) may read is not.
func TestSecretFileModes(t *testing.T) {
	dir := t.TempDir()
	keys := []struct{ table, key string }{
		{"api", "token_file"}, {"api", "tls_key"},
		{"alerts.email", "password_file"}, {"alerts.sms", "auth_token_file"}, {"alerts.webhook", "url_file"},
		{"fleet", "creds_file"}, {"fleet", "nkey_file"}, {"fleet", "token_file"}, {"fleet", "password_file"}, {"fleet", "key_file"},
	}
	var text strings.Builder
	var want []string
	table := ""
	line := 0
	for i, k := range keys {
		f := filepath.Join(dir, fmt.Sprint("secret", i))
		mode := os.FileMode(0o644)
		if i%2 == 1 {
			mode = 0o640 // its group's: not every user's
		}
		if err := os.WriteFile(f, []byte("s3cret\n"), mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(f, mode)
		if k.table != table {
			table = k.table
			fmt.Fprintf(&text, "[%s]\n", table)
			line++
			if table == "api" {
				text.WriteString("tls_cert = \"/etc/ssl/api.pem\"\n") // tls_key's other half, no secret
				line++
			}
		}
		fmt.Fprintf(&text, "%s = %q\n", k.key, f)
		line++
		if mode == 0o644 {
			want = append(want, fmt.Sprintf("c.toml:%d: %s.%s: %s is readable by every user (mode 0644): anyone on this machine can ", line, k.table, k.key, f))
		}
	}
	c, err := parse("c.toml", []byte(text.String()))
	if err != nil {
		t.Fatal(err)
	}
	got := c.Warnings()
	if len(got) != len(want) {
		t.Fatalf("warnings:\n%s\nwant %d, of\n%s", strings.Join(got, "\n"), len(want), text.String())
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) || !strings.HasSuffix(got[i], "; chmod o-r it") {
			t.Errorf("warning %d: %s\nwant %s...", i, got[i], want[i])
		}
	}
}
