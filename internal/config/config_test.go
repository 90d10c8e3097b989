package config

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"sshguard-go/internal/testkit"
)

func TestShippedConfigIsTheDefaults(t *testing.T) {
	cfg, err := Load("../../deploy/sshguard-go.toml", true)
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.Ban.Allow = []string{}
	want.Path = "../../deploy/sshguard-go.toml"
	cfg.data = nil // the file's text, kept for the lines of later errors
	if !reflect.DeepEqual(cfg, want) {
		t.Fatalf("deploy/sshguard-go.toml differs from the defaults:\n got %+v\nwant %+v", cfg, want)
	}
}

func TestConfigValues(t *testing.T) {
	p := testkit.WriteConfig(t, `
[detection]
threshold = 3
window = "2w"
[ban]
ban_time = "1d"
allow = ["192.0.2.0/24", "localhost"]
[firewall]
backend = "none"
`)
	cfg, err := Load(p, true)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Detection.Threshold != 3 || time.Duration(cfg.Detection.Window) != 14*24*time.Hour ||
		time.Duration(cfg.Ban.BanTime) != 24*time.Hour || cfg.Firewall.Backend != "none" || cfg.Detection.IPv6Prefix != 64 {
		t.Fatalf("config %+v", cfg)
	}
	got := cfg.AllowPrefixes(context.Background(), func(string) {})
	var s []string
	for _, p := range got {
		s = append(s, p.String())
	}
	if !strings.Contains(strings.Join(s, " "), "192.0.2.0/24") || !strings.Contains(strings.Join(s, " "), "127.0.0.1/32") {
		t.Fatalf("allow resolved to %v", s)
	}
}

func TestConfigErrorsNameKeyAndLine(t *testing.T) {
	tests := []struct {
		name, text string
		want       []string
	}{
		{"unknown key", "[detection]\nthreshold = 5\nthreshhold = 4\n", []string{":3:", `"detection.threshhold"`}},
		{"unknown table", "[alert]\nx = 1\n", []string{":1:", "alert"}},
		{"unknown alert key", "[alerts.email]\nhost = \"m\"\npasword = \"x\"\n", []string{":3:", `"alerts.email.pasword"`}},
		{"bad severity", "[alerts.sms]\nmin_severity = \"urgent\"\naccount_sid = \"AC1\"\nauth_token = \"t\"\nfrom = \"+1\"\nto = [\"+2\"]\n", []string{"alerts.sms.min_severity", "urgent"}},
		{"bad email", "[alerts.email]\nhost = \"m\"\nfrom = \"a@b.c\"\nto = [\"admin at example\"]\n", []string{":4:", "alerts.email.to", "admin at example"}},
		{"bad phone", "[alerts.sms]\naccount_sid = \"AC1\"\nauth_token = \"t\"\nfrom = \"+15005550006\"\nto = [\"0170 123\"]\n", []string{":5:", "alerts.sms.to", "E.164"}},
		{"bad hours", "[alerts]\nworking_hours = \"8-18\"\n", []string{"alerts.working_hours"}},
		{"two secrets", "[alerts.email]\nhost = \"m\"\nfrom = \"a@b\"\nto = [\"c@d\"]\npassword = \"x\"\npassword_file = \"/f\"\n", []string{"alerts.email.password", "not both"}},
		{"bad duration", "[ban]\n\nban_time = \"ten minutes\"\n", []string{":3:", "ban_time", "is not a duration"}},
		{"wrong type", "[detection]\nthreshold = \"five\"\n", []string{":2:", "threshold"}},
		{"out of range", "[detection]\nipv6_prefix = 200\n", []string{"detection.ipv6_prefix", "16..128"}},
		{"bad allow", "[ban]\nallow = [\"not an address!\"]\n", []string{"ban.allow", "not an address!"}},
		{"bad backend", "[firewall]\nbackend = \"iptables\"\n", []string{"firewall.backend"}},
		{"syntax", "[detection\n", []string{":1:"}},
		{"infinite threshold", "[detection]\nthreshold = inf\n", []string{":2:", "detection.threshold", "+Inf"}},
		{"NaN threshold", "[detection]\nthreshold = nan\n", []string{":2:", "detection.threshold", "NaN"}},
		{"overflowing threshold", "[detection]\nthreshold = 214748364.8\n", []string{":2:", "detection.threshold"}},
		{"unreachable threshold", "[detection]\nthreshold = 200\n", []string{":2:", "more than 255 attempts"}},
		{"NaN weight", "[detection]\nfailure_weight = nan\n", []string{":2:", "detection.failure_weight", "NaN"}},
		{"NaN probe weight", "[detection]\nprobe_weight = nan\n", []string{":2:", "detection.probe_weight"}},
		{"sub-second window", "[detection]\nwindow = \"999ms\"\n", []string{":2:", "detection.window", "whole seconds"}},
		{"long window", "[detection]\nwindow = \"31d\"\n", []string{":2:", "detection.window", "1s to 30d"}},
		{"NaN factor", "[ban]\nfactor = nan\n", []string{":2:", "ban.factor", "NaN"}},
		{"overflowing duration", "[ban]\nmax_ban_time = \"99999999999w\"\n", []string{":2:", "max_ban_time", "too long"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := testkit.WriteConfig(t, tt.text)
			_, err := Load(p, true)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range append(tt.want, p) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestValueErrorsNameTheLine(t *testing.T) {
	p := testkit.WriteConfig(t, "# comment\n[detection]\nthreshold = 5\nipv6_prefix = 200\n\n[alerts.email]\nhost = \"mail\"\n")
	_, err := Load(p, true)
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{p + ":4: detection.ipv6_prefix: must be 16..128", p + ":6: alerts.email: from and to are required"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestLoadMissingFile(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "none.toml")
	cfg, err := Load(missing, false)
	if err != nil || cfg.Path != "" || cfg.Detection.Threshold != 5 {
		t.Fatalf("missing default file: %+v, %v", cfg, err)
	}
	if _, err := Load(missing, true); err == nil {
		t.Fatal("a missing file named by the user was accepted")
	}
}

// TestPrintMasksSecrets: what check-config and run -t print holds no
// password, token, webhook path or user info in a URL.
func TestPrintMasksSecrets(t *testing.T) {
	p := testkit.WriteConfig(t, `[alerts.sms]
account_sid = "AC1"
auth_token = "TOKENSECRET"
from = "+15005550006"
to = ["+15551230001"]
base_url = "https://proxyuser:PROXYSECRET@sms-proxy.example.org"
[alerts.webhook]
url = "https://hooks.example.org/services/HOOKSECRET"
headers = { "X-Api-Key" = "KEYSECRET" }
`)
	cfg, err := Load(p, true)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := cfg.Print(&b); err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"TOKENSECRET", "PROXYSECRET", "proxyuser", "HOOKSECRET", "KEYSECRET"} {
		if strings.Contains(b.String(), secret) {
			t.Errorf("printed %s:\n%s", secret, b.String())
		}
	}
	if !strings.Contains(b.String(), "sms-proxy.example.org") {
		t.Errorf("the host went too:\n%s", b.String())
	}
}

// TestAPIAsFlags: the API settings' errors name the file's keys, or the
// flags fleet serve takes them as.
func TestAPIAsFlags(t *testing.T) {
	for _, c := range []struct {
		a    APIConfig
		want []string
	}{
		{APIConfig{Listen: "0.0.0.0:9612"}, []string{"api.listen:", "set api.token_file, or api.tls_cert, api.tls_key and api.client_ca"}},
		{APIConfig{Listen: "0.0.0.0:9612", AsFlags: true}, []string{"--listen:", "set --token-file, or --tls-cert, --tls-key and --client-ca"}},
		{APIConfig{TLSCert: "/c", AsFlags: true}, []string{"--tls-cert: --tls-cert and --tls-key go together"}},
	} {
		err := c.a.Check()
		for _, w := range c.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%+v: %v, want %q", c.a, err, w)
			}
		}
	}
	if _, err := (APIConfig{TokenFile: "/nonexistent", AsFlags: true}).Token(); err == nil || !strings.HasPrefix(err.Error(), "--token-file: ") {
		t.Errorf("token: %v", err)
	}
}

// TestConfigErrorWording: type errors and unknown keys in the file's
// terms, with the line, the key and the name probably meant.
func TestConfigErrorWording(t *testing.T) {
	for text, want := range map[string]string{
		"# tuned\n\n[detection]\nthreshold = \"five\"\n": `:4: detection.threshold: want a number, got the string "five"`,
		"[detection]\nipv4_prefix = 24.5\n":              `:2: detection.ipv4_prefix: want a whole number, got the number 24.5`,
		"[firewall]\nforward = \"yes\"\n":                `:2: firewall.forward: want true or false, got the string "yes"`,
		"[firewall]\ntable = 7\n":                        `:2: firewall.table: want a string, got the number 7`,
		"[ban]\nallow = \"192.0.2.1\"\n":                 `:2: ban.allow: want a list of strings, got the string "192.0.2.1"`,
		"[ban]\nallow = [1, 2]\n":                        `:2: ban.allow: want a list of strings, got a list of numbers`,
		"log = true\n":                                   `:1: log: want a table, got true`,
		"[alerts.webhook]\nheaders = [\"X-Key: 1\"]\n":   `:2: alerts.webhook.headers: want a table of strings, got a list of strings`,
		"[ban]\nban_tme = \"2h\"\n":                      `:2: unknown key "ban.ban_tme": did you mean ban_time?`,
		"[detection]\nthreshhold = 4\n":                  `:2: unknown key "detection.threshhold": did you mean threshold?`,
		"[detecton]\nthreshold = 4\n":                    `:1: unknown table [detecton]: did you mean [detection]?`,
		"[alerts.emial]\nhost = \"mail\"\n":              `:1: unknown table [alerts.emial]: did you mean [alerts.email]?`,
		"[ban]\nwindow = \"5m\"\n":                       `:2: unknown key "ban.window": window is a key of [detection]`,
		"[ban]\nzzz = 1\n":                               `:2: unknown key "ban.zzz"`,
		"[fail2ban]\nbantime = 3600\n":                   `:1: unknown table [fail2ban]`,
	} {
		p := testkit.WriteConfig(t, text)
		_, err := Load(p, true)
		if err == nil || err.Error() != p+want {
			t.Errorf("%q:\n got %v\nwant %s%s", text, err, p, want)
		}
	}
}

// TestURLCredentials: credentials in fleet.nats_url (user:password@, a
// token@) and alerts.sms.base_url are masked by Print, make a file others
// may read worth a warning, and are masked in the errors that quote
// them.
func TestURLCredentials(t *testing.T) {
	for _, c := range []struct{ text, secret, shown string }{
		{"[fleet]\nnats_url = \"nats://sg:NATSPASS@nats-1.example.net:4222, tls://sg:NATSPASS2@nats-2.example.net:4222\"\n", "NATSPASS",
			"nats_url = 'nats://********@nats-1.example.net:4222, tls://********@nats-2.example.net:4222'"},
		{"[fleet]\nnats_url = \"nats://NATSTOKEN@nats.example.net\"\n", "NATSTOKEN", "nats_url = 'nats://********@nats.example.net'"},
		{"[fleet]\nnats_url = \"nats://sg:PASS/WITH@SLASH@nats.example.net/\"\n", "SLASH", "nats_url = 'nats://********@nats.example.net/'"},
		{"[alerts.sms]\nbase_url = \"https://proxy:PROXYPASS@sms-proxy.example.org\"\n", "PROXYPASS", "base_url = 'https://********@sms-proxy.example.org'"},
	} {
		p := testkit.WriteConfig(t, c.text)
		cfg, err := Load(p, true)
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		if err := cfg.Print(&b); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(b.String(), c.secret) || !strings.Contains(b.String(), c.shown) {
			t.Errorf("%s: printed\n%s\nwant %s", c.text, b.String(), c.shown)
		}
		if w := cfg.SecretWarning(); w != "" {
			t.Errorf("mode 0600: %s", w)
		}
		os.Chmod(p, 0o644)
		if w := cfg.SecretWarning(); !strings.Contains(w, p+" holds secrets and is readable by others (mode 0644)") {
			t.Errorf("%s: mode 0644: %q", c.text, w)
		}
	}
	_, err := parse("bad.toml", []byte("[fleet]\nnats_url = \"sg:NATSPASS@nats.example.net:4222\"\n"))
	if err == nil || err.Error() != `bad.toml:2: fleet.nats_url: "********@nats.example.net:4222": want nats://host:4222 (or tls://, several comma-separated)` {
		t.Errorf("a URL without a scheme: %v", err)
	}
}
