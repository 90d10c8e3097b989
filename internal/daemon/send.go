package daemon

import (
	"context"
	"fmt"
	"time"

	"sshguard-go/internal/alert"
	"sshguard-go/internal/config"
)

// SendNow sends m, now and without the outbox, through each channel of
// cfg that its routing names (m.Deliveries), and returns each channel's
// error (nil: sent). For commands that run once (report --notify).
func SendNow(ctx context.Context, cfg *config.Config, m *alert.Message) (map[string]error, error) {
	chans, err := cfg.Alerts.Channels()
	if err != nil {
		return nil, fmt.Errorf("alerts: %w", err)
	}
	out := map[string]error{}
	for _, c := range chans {
		if _, routed := m.Deliveries[c.Name()]; !routed {
			continue
		}
		sctx, cancel := context.WithTimeout(ctx, time.Minute)
		out[c.Name()] = c.Send(sctx, alert.Render(m, fmt.Sprintf("archive-%d.%s.%s", m.Time.UnixNano(), c.Name(), cfg.Alerts.Host())))
		cancel()
	}
	return out, nil
}
