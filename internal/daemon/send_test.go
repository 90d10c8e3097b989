package daemon

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"sshguard-go/internal/alert"
	"sshguard-go/internal/config"
)

// TestSendArchive: report --notify's message goes only through the
// channels that take reports; with no offender nothing is sent; with no
// channel taking it the error is ErrUnrouted, naming what to change.
func TestSendArchive(t *testing.T) {
	var asked atomic.Int32
	var status atomic.Int32
	status.Store(http.StatusOK)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		asked.Add(1)
		w.WriteHeader(int(status.Load()))
	}))
	defer hook.Close()
	ctx := context.Background()
	a := alert.Archive{Window: "all", Inputs: []string{"auth.log"}, Threshold: 3,
		Offenders: []alert.Offender{{Addr: "203.0.113.7", Attempts: 5, Failed: 5}}}

	cfg := config.Default()
	cfg.Alerts.Webhook.URL = hook.URL // kinds: ban, login, session
	res, err := SendArchive(ctx, cfg, "/etc/x.toml", a, time.Now())
	if !errors.Is(err, ErrUnrouted) || !strings.Contains(err.Error(), `add "report" to kinds of [alerts.webhook] in /etc/x.toml`) ||
		res != nil || asked.Load() != 0 {
		t.Fatalf("webhook without reports: %v, %v, %d requests", res, err, asked.Load())
	}
	if _, err := SendArchive(ctx, config.Default(), "/etc/x.toml", a, time.Now()); !errors.Is(err, ErrUnrouted) ||
		!strings.Contains(err.Error(), "no alert channel is configured in /etc/x.toml") {
		t.Fatalf("no channel: %v", err)
	}

	cfg.Alerts.Webhook.Kinds = []string{"report"}
	res, err = SendArchive(ctx, cfg, "/etc/x.toml", alert.Archive{Threshold: 3}, time.Now())
	if res != nil || err != nil || asked.Load() != 0 {
		t.Fatalf("no offender: %v, %v, %d requests", res, err, asked.Load())
	}
	res, err = SendArchive(ctx, cfg, "/etc/x.toml", a, time.Now())
	if err != nil || len(res) != 1 || res["webhook"] != nil || asked.Load() != 1 || SendFailures(res) != nil {
		t.Fatalf("sent: %v, %v, %d requests", res, err, asked.Load())
	}
	status.Store(http.StatusBadRequest)
	res, err = SendArchive(ctx, cfg, "/etc/x.toml", a, time.Now())
	if err != nil || res["webhook"] == nil || asked.Load() != 2 {
		t.Fatalf("refused: %v, %v, %d requests", res, err, asked.Load())
	}
	if err := SendFailures(res); err == nil || err.Error() != "1 of 1 channels failed" {
		t.Fatalf("SendFailures: %v", err)
	}
}

func TestSendFailures(t *testing.T) {
	boom := errors.New("boom")
	for _, c := range []struct {
		results map[string]error
		want    string
	}{
		{nil, ""},
		{map[string]error{"email": nil, "sms": nil}, ""},
		{map[string]error{"email": nil, "sms": boom, "webhook": boom}, "2 of 3 channels failed"},
	} {
		got := ""
		if err := SendFailures(c.results); err != nil {
			got = err.Error()
		}
		if got != c.want {
			t.Errorf("%v: %q, want %q", c.results, got, c.want)
		}
	}
}
