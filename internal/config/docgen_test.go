package config

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "write deploy/sshguard-go.toml from the documentation of the keys")

const shipped = "../../deploy/sshguard-go.toml"

// TestDefaultFileIsGenerated: the shipped default file is what the
// documentation of the keys makes (`make default-config` writes it).
func TestDefaultFileIsGenerated(t *testing.T) {
	want := DefaultFile()
	if *update {
		if err := os.WriteFile(shipped, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(shipped)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		gl, wl := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
		for i := range min(len(gl), len(wl)) {
			if gl[i] != wl[i] {
				t.Fatalf("deploy/sshguard-go.toml differs from the documentation of the keys (internal/config/keys.go) at line %d:\n got %q\nwant %q\nrun `make default-config` after changing keys.go", i+1, gl[i], wl[i])
			}
		}
		t.Fatalf("deploy/sshguard-go.toml has %d lines, the documentation of the keys makes %d: run `make default-config`", len(gl), len(wl))
	}
}

// TestEveryKeyDocumented: every field of Config is a documented key, and
// every documented key a field, once.
func TestEveryKeyDocumented(t *testing.T) {
	documented := map[string]int{}
	for _, s := range docs {
		for _, k := range s.Keys {
			documented[s.Table+"."+k.Name]++
		}
	}
	fields := allKeys(reflect.TypeFor[Config](), "")
	if len(fields) < 100 {
		t.Fatalf("only %d keys found in Config", len(fields))
	}
	for _, k := range fields {
		if documented[k] != 1 {
			t.Errorf("%s is documented %d times", k, documented[k])
		}
		delete(documented, k)
	}
	for k := range documented {
		t.Errorf("%s is documented and is no key of Config", k)
	}
	var tables []string
	for _, s := range docs {
		tables = append(tables, s.Table)
	}
	for _, k := range fields {
		i := strings.LastIndex(k, ".")
		if !strings.Contains(strings.Join(tables, " ")+" ", k[:i]+" ") {
			t.Errorf("%s is in no documented table", k)
		}
	}
}

// TestManPage: the manual page has every table and key with its default
// and range, and man formats it without a warning where man is installed.
func TestManPage(t *testing.T) {
	var b bytes.Buffer
	if err := ManPage(&b, "sshguard-go 1.2.3", time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	for _, want := range []string{`.TH "SSHGUARD-GO.TOML" "5" "Dec 2026" "sshguard-go 1.2.3" "sshguard-go manual"`,
		".SH NAME\nsshguard-go.toml \\- ", ".SH DESCRIPTION", ".SH SEE ALSO",
		`\fBban_time\fR = "1h" \(em 1s to ban.max_ban_time`, `\fBwindow\fR = "10m" \(em 1s to 30d`,
		`\fBsshguard\-go db compact\fR`} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	for _, s := range docs {
		if !strings.Contains(page, ".SS ["+s.Table+"]\n") {
			t.Errorf("no section [%s]", s.Table)
		}
		for _, k := range s.Keys {
			if !strings.Contains(page, `\fB`+roff(k.Name)+`\fR = `+roff(defaultValue(s.Table+"."+k.Name))) {
				t.Errorf("no key %s.%s", s.Table, k.Name)
			}
		}
	}
	for i, l := range strings.Split(page, "\n") {
		if strings.HasPrefix(l, "'") || strings.HasPrefix(l, ".") && !strings.HasPrefix(l, ".\\") && len(l) > 1 && !isRequest(l) {
			t.Errorf("line %d is read as a request: %q", i+1, l)
		}
	}
	if _, err := exec.LookPath("man"); err != nil {
		t.Log("man is not installed: the page is not formatted")
		return
	}
	p := filepath.Join(t.TempDir(), "sshguard-go.toml.5")
	if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("man", "--warnings", "-E", "UTF-8", "-l", p)
	cmd.Env = append(os.Environ(), "MANWIDTH=80", "MANPAGER=cat", "PAGER=cat")
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil || stderr.Len() > 0 {
		t.Fatalf("man -l: %v\n%s", err, stderr.String())
	}
	text := out.String()
	for _, want := range []string{"sshguard-go.toml - the configuration file of sshguard-go", "[detection]", "ban_time = \"1h\" — 1s to ban.max_ban_time"} {
		if !strings.Contains(text, want) {
			t.Errorf("man's text lacks %q:\n%s", want, text)
		}
	}
}

func isRequest(l string) bool {
	for _, r := range []string{".nh", ".ad l", ".TH ", ".SH ", ".SS ", ".PP", ".RS ", ".RE", ".br", ".TP"} {
		if l == r || strings.HasPrefix(l, r) {
			return true
		}
	}
	return false
}
