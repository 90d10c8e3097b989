package daemon

import (
	"context"
	"errors"
	"fmt"
	"time"

	"sshguard-go/internal/alert"
	"sshguard-go/internal/config"
)

// SendNow sends m, now and without the outbox, through each channel of
// cfg that its routing names (m.Deliveries), and returns each channel's
// error (nil: sent). For commands that run once (report --notify).
func SendNow(ctx context.Context, cfg *config.Config, m *alert.Message) (map[string]error, error) {
	return send(ctx, cfg, func(name string) *alert.Message {
		if _, routed := m.Deliveries[name]; routed {
			return m
		}
		return nil
	})
}

// ErrUnrouted is the error of SendArchive when no channel takes the
// message: nobody would be told.
var ErrUnrouted = errors.New("no alert channel takes the message")

// unrouted is ErrUnrouted in the words of alert.Policy.ArchiveUnrouted.
type unrouted struct{ error }

func (unrouted) Is(target error) bool { return target == ErrUnrouted }

// SendArchive sends the alert of an analysis of log archives (report
// --notify), now, through the channels of cfg that take reports, and
// returns each channel's error (nil: sent). With no offender in a it
// sends nothing (nil, nil). When no channel takes the message the error
// is ErrUnrouted, saying what to change in the file configPath.
func SendArchive(ctx context.Context, cfg *config.Config, configPath string, a alert.Archive, at time.Time) (map[string]error, error) {
	if len(a.Offenders) == 0 {
		return nil, nil
	}
	p := cfg.Alerts.Policy()
	m := p.ArchiveMessage(a, at)
	if m == nil {
		return nil, unrouted{p.ArchiveUnrouted(len(a.Offenders), configPath)}
	}
	return SendNow(ctx, cfg, m)
}

// SendFailures is the error of sends (SendNow, SendTest, SendArchive)
// some channel of which failed, "F of N channels failed"; nil when every
// one was sent.
func SendFailures(results map[string]error) error {
	failed := 0
	for _, err := range results {
		if err != nil {
			failed++
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d channels failed", failed, len(results))
	}
	return nil
}

// SendTest sends a test message through each channel of cfg (only
// channel, when not ""), now, and returns each one's error (nil: sent).
func SendTest(ctx context.Context, cfg *config.Config, channel string) (map[string]error, error) {
	host := cfg.Alerts.Host()
	return send(ctx, cfg, func(name string) *alert.Message {
		if channel != "" && name != channel {
			return nil
		}
		return &alert.Message{Kind: alert.KindTest, Severity: alert.High, Time: time.Now(), Host: host,
			Text: "This is a test message from sshguard-go on " + host + ". If you read it, the " + name + " channel works."}
	})
}

// send sends what msg gives for each channel of cfg (nil: nothing), each
// within a minute.
func send(ctx context.Context, cfg *config.Config, msg func(channel string) *alert.Message) (map[string]error, error) {
	chans, err := cfg.Alerts.Channels()
	if err != nil {
		return nil, fmt.Errorf("alerts: %w", err)
	}
	out := map[string]error{}
	for _, c := range chans {
		m := msg(c.Name())
		if m == nil {
			continue
		}
		sctx, cancel := context.WithTimeout(ctx, time.Minute)
		out[c.Name()] = c.Send(sctx, alert.Render(m, fmt.Sprintf("%s-%d.%s.%s", m.Kind, m.Time.UnixNano(), c.Name(), cfg.Alerts.Host())))
		cancel()
	}
	return out, nil
}
