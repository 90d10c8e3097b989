package fleet

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"testing"
	"time"

	"sshguard-go/internal/api"
	"sshguard-go/internal/share"
)

// FuzzHostSummary: whatever a host answers to /api/v1/summary (or puts in
// the summaries' bucket), reading it neither panics nor makes the fleet's
// total negative or wrap: its numbers are summed only within 0 to 2^40.
// Seeded with a real host's answer.
func FuzzHostSummary(f *testing.F) {
	h := startHost(f, 10, "", 0)
	resp, err := http.Get(h.url + "/api/v1/summary")
	if err != nil {
		f.Fatal(err)
	}
	real, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	f.Add(real)
	f.Add([]byte(`{"days":[{"date":"2026-11-30","failed":-9223372036854775807}]}`))
	f.Add([]byte(`{"days":[{"date":"2026-11-30","failed":1099511627775,"hours":[{"hour":"x","bans":1e3}]}]}`))
	day := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, data []byte) {
		var sum api.Summary
		if json.Unmarshal(data, &sum) != nil {
			return
		}
		// A host's answer, taken thrice, beside an honest host.
		src := &KVSource{now: func() time.Time { return day }, hosts: map[string]share.HostSummary{}, bad: map[string]string{}}
		for _, name := range []string{"a", "b", "c"} {
			src.hosts[name] = share.HostSummary{Updated: day, Summary: sum}
		}
		src.hosts["honest"] = share.HostSummary{Updated: day, Summary: api.Summary{Days: []api.Day{{Date: "2026-11-30", Failed: 1}}}}
		s := src.Summary(context.Background(), day)
		for _, d := range append([]api.Day{s.Total}, s.Days...) {
			for _, v := range []int64{d.Failed, d.Probes, d.Connections, d.Logins, d.Bans, d.Addresses} {
				if v < 0 || v >= 4*MaxCount {
					t.Fatalf("fleet total %+v from %q", d, data)
				}
			}
		}
		if s.Total.Failed < 1 || s.Answered+s.Failed != 4 {
			t.Fatalf("the honest host lost: %+v", s)
		}
	})
}

// FuzzHostsFile: whatever the hosts file holds, reading it neither panics
// nor yields a host without a name or URL. Seeded with the example.
func FuzzHostsFile(f *testing.F) {
	ex, err := os.ReadFile("../../deploy/hosts.toml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(ex))
	f.Add("timeout = \"1s\"\n[[host]]\nname = \"a\"\nurl = \"http://127.0.0.1:1\"\n")
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, text string) {
		p := dir + "/hosts.toml"
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		hf, err := Load(p)
		if err != nil {
			return
		}
		for _, h := range hf.Hosts {
			if h.Name == "" || h.URL == "" {
				t.Fatalf("host %+v from %q", h, text)
			}
		}
	})
}
