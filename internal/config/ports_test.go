package config

import (
	"strings"
	"testing"
)

// TestPortsAndDays: a port out of 1..65535 (0 too for a listener) is
// refused wherever one is written, in a listen address or a URL, naming
// the key and never quoting a URL's credentials; working_days is checked
// whether or not working_hours is set.
func TestPortsAndDays(t *testing.T) {
	for _, c := range []struct {
		text, want string // want "": accepted
	}{
		{"[metrics]\nlisten = \"127.0.0.1:9611\"\n", ""},
		{"[metrics]\nlisten = \"127.0.0.1:0\"\n", ""},
		{"[metrics]\nlisten = \"127.0.0.1:70000\"\n", `c.toml:2: metrics.listen: "127.0.0.1:70000": the port must be a number, 0 to 65535`},
		{"[metrics]\nlisten = \"127.0.0.1:http\"\n", `c.toml:2: metrics.listen: "127.0.0.1:http": the port must be a number, 0 to 65535`},
		{"[api]\nlisten = \"[::1]:9612\"\n", ""},
		{"[api]\nlisten = \"[::1]:99999\"\n", `c.toml:2: api.listen: "[::1]:99999": the port must be a number, 0 to 65535`},
		{"[fleet]\nnats_url = \"nats://a:4222, nats://b\"\nname = \"x\"\n", ""},
		{"[fleet]\nnats_url = \"nats://a:4222, nats://sg:PASS@b:422200\"\nname = \"x\"\n", `c.toml:2: fleet.nats_url: "nats://********@b:422200": the port must be 1 to 65535`},
		{"[fleet]\nnats_url = \"nats://a:0\"\nname = \"x\"\n", `c.toml:2: fleet.nats_url: "nats://a:0": the port must be 1 to 65535`},
		{"[alerts.webhook]\nurl = \"https://hooks.example.org:8443/x\"\n", ""},
		{"[alerts.webhook]\nurl = \"https://hooks.example.org:84430/x\"\n", `c.toml:2: alerts.webhook.url: the port must be 1 to 65535`},
		{"[alerts.sms]\nbase_url = \"https://u:PASS@proxy.example.org:100000\"\n", `c.toml:2: alerts.sms.base_url: "https://********@proxy.example.org:100000": the port must be 1 to 65535`},
		{"[alerts]\nworking_days = [\"mon\", \"SUN\"]\n", ""},
		{"[alerts]\nworking_days = [\"monday\"]\n", `c.toml:2: alerts.working_days: working day "monday": use mon, tue, wed, thu, fri, sat, sun`},
		{"[alerts]\nworking_hours = \"08:00-18:00\"\nworking_days = [\"monday\"]\n", `c.toml:3: alerts.working_days: working day "monday": use mon, tue, wed, thu, fri, sat, sun`},
		{"[alerts]\nworking_hours = \"8-18\"\n", `c.toml:2: alerts.working_hours: working hours "8-18": "8" is not HH:MM`},
	} {
		_, err := parse("c.toml", []byte(c.text))
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s refused: %v", c.text, err)
		case c.want != "" && (err == nil || err.Error() != c.want):
			t.Errorf("%s: %v\nwant %s", c.text, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "PASS") {
			t.Errorf("%s: the error quotes a password: %v", c.text, err)
		}
	}
}
