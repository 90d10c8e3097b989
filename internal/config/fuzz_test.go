package config

import (
	"os"
	"strings"
	"testing"
)

// FuzzConfig: whatever the configuration file holds, reading it neither
// panics nor returns a configuration Validate refuses; an error names the
// file. Seeded with the default file and the test configurations.
func FuzzConfig(f *testing.F) {
	def, err := os.ReadFile("../../deploy/sshguard-go.toml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(def))
	f.Add("[ban]\nban_time = \"1d12h\"\nallow = [\"192.0.2.0/24\", \"2001:db8::/32\"]\n")
	f.Add("[log]\njournal = true\n[fleet]\nurl = \"nats://127.0.0.1:4222\"\n")
	f.Add("ban_time = 3600\n[ban]\nthreshold = -1e308\n")
	f.Fuzz(func(t *testing.T, text string) {
		cfg, err := parse("/etc/sshguard-go/fuzz.toml", []byte(text))
		if err != nil {
			if !strings.Contains(err.Error(), "fuzz.toml") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("parse accepted what Validate refuses: %v", err)
		}
	})
}
