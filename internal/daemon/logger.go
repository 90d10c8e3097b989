package daemon

import (
	"io"
	"log/slog"
)

// NewLogger logs to w in logfmt. Under systemd (journald: JOURNAL_STREAM
// set) the time is left out: journald stamps every line itself.
func NewLogger(w io.Writer, journald bool) *slog.Logger {
	opts := &slog.HandlerOptions{}
	if journald {
		opts.ReplaceAttr = func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
