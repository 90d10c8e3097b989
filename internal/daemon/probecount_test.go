package daemon

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sshguard-go/internal/api"
)

// TestAPICountsProbeTakenBack: the running daemon's hourly counts, as its
// API answers them (the day, its hours and its top addresses), count a
// connection that probed, then failed, as detection does: one failure,
// no probe. OpenSSH 9.2's lines of four such connections (a refused key,
// then closed while authenticating), with rsyslog's RFC 3339 stamps; the
// API said 4 failed and 4 probes.
func TestAPICountsProbeTakenBack(t *testing.T) {
	h := newHarness(t)
	data, err := os.ReadFile("../../testdata/samples/openssh-9.2-key-refused.log")
	if err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		stamp, rest, _ := strings.Cut(l, " vm ")
		if stamp != "Dec  5 11:16:04" && stamp != "Dec  5 11:16:05" {
			t.Fatalf("line %q: not a stamp of the sample", l)
		}
		log.WriteString("2026-11-24T11:16:0" + stamp[len(stamp)-1:] + ".000000+00:00 vm " + rest + "\n")
	}
	if err := os.WriteFile(filepath.Join(h.dir, "auth.log"), []byte(log.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	writeConfig(t, h.dir, `[log]
from_start = true
[alerts]
timezone = "UTC"
[audit]
log = ""
[api]
listen = "127.0.0.1:0"
`)
	h.start()
	h.readAll(t, 8, 20*time.Second)
	base := "http://" + h.d.APIAddr()
	var day api.Day
	if code := getJSON(t, http.DefaultClient, base+"/api/v1/days/2026-11-24", "", &day); code != 200 {
		t.Fatalf("day: %d", code)
	}
	hour := day.Hours[11]
	if day.Failed != 4 || day.Probes != 0 || hour.Failed != 4 || hour.Probes != 0 || hour.Connections != 4 {
		t.Errorf("day %d failed, %d probes; 11:00 %+v: want 4 failed, no probe", day.Failed, day.Probes, hour)
	}
	var sum api.Summary
	if code := getJSON(t, http.DefaultClient, base+"/api/v1/summary?from=2026-11-24&to=2026-11-24", "", &sum); code != 200 {
		t.Fatalf("summary: %d", code)
	}
	if len(sum.TopAddresses) != 1 || sum.TopAddresses[0].IP != "10.77.0.6" || sum.TopAddresses[0].Failed != 4 || sum.TopAddresses[0].Probes != 0 {
		t.Errorf("top addresses %+v: want 10.77.0.6 with 4 failed, no probe", sum.TopAddresses)
	}
}
