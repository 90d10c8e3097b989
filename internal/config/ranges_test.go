package config

import (
	"strings"
	"testing"
)

// TestNumericRanges: every number with a range is accepted at both of its
// ends and refused one step beyond each, naming its key.
func TestNumericRanges(t *testing.T) {
	fleet := "[fleet]\nnats_url = \"nats://127.0.0.1:4222\"\nname = \"a\"\ncount_fleetwide = true\n"
	cases := []struct {
		table, key string // the table's header lines (without the key) and the key
		ok, bad    []string
	}{
		{"[detection]\nfailure_weight = 12.75\nprobe_weight = 0\nhorizons = []\nnetwork_horizons = []\n", "threshold", []string{"0.5", "3251.25"}, []string{"0", "3251.26", "-1"}},
		{"[detection]\nthreshold = 1\nwide_prefix_v6 = 0\nprobe_weight = 0\nhorizons = []\nnetwork_horizons = []\n", "failure_weight", []string{"0.05", "12.75"}, []string{"0", "0.01", "12.76"}},
		{"[detection]\nhorizons = []\nnetwork_horizons = []\n", "probe_weight", []string{"0", "12.75"}, []string{"-0.01", "0.04", "12.76"}},
		{"[detection]\n", "ipv4_prefix", []string{"8", "32"}, []string{"7", "33"}},
		{"[detection]\nwide_prefix_v6 = 0\n", "ipv6_prefix", []string{"16", "128"}, []string{"15", "129"}},
		{"[detection]\n", "wide_prefix_v6", []string{"0", "16", "63"}, []string{"15", "64"}},
		{"[detection]\nwide_threshold = 20\n", "wide_prefix_v4", []string{"0", "8", "31"}, []string{"7", "32"}},
		{"[detection]\nwide_prefix_v6 = 48\nprobe_weight = 0\n", "wide_threshold", []string{"1", "255"}, []string{"0", "256"}},
		{"[detection]\n", "max_tracked", []string{"1000"}, []string{"999"}},
		{"[detection]\n", "network_prefix_v4", []string{"0", "8", "32"}, []string{"7", "33"}},
		{"[detection]\n", "network_prefix_v6", []string{"0", "16", "128"}, []string{"15", "129"}},
		{"[detection]\n", "horizons", []string{`[{ window = "1h", threshold = 1 }, { window = "90d", threshold = 1000 }]`},
			[]string{`[{ window = "59m", threshold = 6 }]`, `[{ window = "91d", threshold = 6 }]`, `[{ window = "1d", threshold = 0.5 }]`, `[{ window = "1d", threshold = 1001 }]`,
				`[{ window = "1d", threshold = 6 }, { window = "2d", threshold = 6 }, { window = "3d", threshold = 6 }, { window = "4d", threshold = 6 }, { window = "5d", threshold = 6 }]`}},
		{"[ban]\n", "factor", []string{"1", "100"}, []string{"0.99", "100.01"}},
		{"[ban]\n", "permanent_after", []string{"0"}, []string{"-1"}},
		{"[firewall]\n", "priority", []string{"-400", "0", "400"}, []string{"-401", "401", "9999999999", "-2147483649"}},
		{"[alerts]\n", "flood_rate", []string{"1"}, []string{"0"}},
		{"[alerts]\n", "transfer_alert_bytes", []string{"0"}, []string{"-1"}},
		{"[alerts]\n", "local_min_uid", []string{"0"}, []string{"-1"}},
		{"[alerts]\n", "report_hour", []string{"0", "23"}, []string{"-1", "24"}},
		{"[alerts.email]\n", "port", []string{"0", "1", "587", "65535"}, []string{"-1", "65536", "70000"}},
		{"[alerts]\n", "history", []string{"100"}, []string{"99"}},
		{"[api]\n", "events", []string{"0", "100000"}, []string{"-1", "100001"}},
		{"[fleet]\n", "min_prefix_v4", []string{"1", "32"}, []string{"0", "33"}},
		{"[fleet]\n", "max_peer_bans", []string{"1", "10000000"}, []string{"0", "-1", "10000001"}},
		{"[fleet]\n", "min_prefix_v6", []string{"1", "128"}, []string{"0", "129"}},
		{fleet, "fleet_threshold", []string{"1", "3251.25"}, []string{"0.99", "3251.26"}},
		{fleet, "fleet_quorum", []string{"1", "4"}, []string{"0", "5"}},
		{fleet, "fleet_horizons", []string{`[{ window = "1h", threshold = 1 }, { window = "90d", threshold = 1000 }]`},
			[]string{`[{ window = "59m", threshold = 6 }]`, `[{ window = "91d", threshold = 6 }]`, `[{ window = "1d", threshold = 0 }]`, `[{ window = "1d", threshold = 1001 }]`,
				`[{ window = "1d", threshold = 6 }, { window = "2d", threshold = 6 }, { window = "3d", threshold = 6 }]`}},
	}
	for _, c := range cases {
		name := strings.TrimSpace(strings.SplitN(c.table, "\n", 2)[0])
		name = strings.Trim(name, "[]") + "." + c.key
		for _, v := range c.ok {
			if _, err := parse("ok.toml", []byte(c.table+c.key+" = "+v+"\n")); err != nil {
				t.Errorf("%s = %s refused: %v", name, v, err)
			}
		}
		for _, v := range c.bad {
			_, err := parse("bad.toml", []byte(c.table+c.key+" = "+v+"\n"))
			if err == nil || !strings.Contains(err.Error(), name) {
				t.Errorf("%s = %s: %v, want an error naming %s", name, v, err, name)
			}
		}
	}
}
