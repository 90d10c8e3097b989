package session

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"sshguard-go/internal/control"
	"sshguard-go/internal/textsafe"
)

// Filter keeps the sessions of user and from ip when set, that started
// at or after since, and only the open ones when active.
type Filter struct {
	User   string
	IP     string
	Since  time.Time
	Active bool
}

// Keep reports whether f keeps s.
func (f Filter) Keep(s *Session) bool {
	return (f.User == "" || s.User == f.User) && (f.IP == "" || s.IP == f.IP) && !s.Start.Before(f.Since) && (!f.Active || s.Active)
}

// WriteJSON writes list as a JSON array.
func WriteJSON(w io.Writer, list []*Session) error {
	if list == nil {
		list = []*Session{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false) // commands keep their > and &
	return enc.Encode(list)
}

// duration is s's length so far (now: the end of an open one).
func duration(s *Session, now time.Time) time.Duration {
	if s.End != nil {
		return s.End.Sub(s.Start).Round(time.Second)
	}
	return now.Sub(s.Start).Round(time.Second)
}

// WriteText writes list as a table, one session a line; with active the
// table of who is logged in now.
func WriteText(w io.Writer, list []*Session, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "START\tDURATION\tUSER\tFROM\tMETHOD\tEND\tTRANSFERS\tCOMMANDS")
	for _, s := range list {
		end := s.EndReason
		if s.Active {
			end = "(active)"
		}
		tr := "-"
		if n := len(s.Transfers) + s.TransfersMore; n > 0 {
			tr = fmt.Sprintf("%d (%s)", n, textsafe.Bytes(s.Bytes(), "B"))
			if s.TransfersMore > 0 {
				tr += fmt.Sprintf(", %d dropped", s.TransfersMore)
			}
		}
		cmds := strconv.Itoa(len(s.Commands) + s.CommandsMore)
		if s.CommandsMore > 0 { // over the audit trail's bounds: counted, not kept
			cmds += fmt.Sprintf(" (%d dropped, %s)", s.CommandsMore, textsafe.Bytes(s.CommandBytesMore, "B"))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Start.Format(time.RFC3339), duration(s, now), quote(s.User),
			textsafe.String(net(s)), textsafe.String(s.Method), textsafe.String(end), tr, cmds)
	}
	tw.Flush()
}

// WriteCSV writes list as CSV with a header line.
func WriteCSV(w io.Writer, list []*Session, now time.Time) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"start", "end", "duration_s", "user", "ip", "port", "method", "key", "end_reason", "active", "transfers", "bytes_read", "bytes_written", "commands", "host", "pid",
		"commands_dropped", "commands_bytes_dropped", "transfers_dropped", "transfers_bytes_dropped"})
	for _, s := range list {
		end := ""
		if s.End != nil {
			end = s.End.Format(time.RFC3339Nano)
		}
		var rd, wr int64
		for _, t := range s.Transfers {
			rd, wr = rd+t.BytesRead, wr+t.BytesWritten
		}
		cw.Write([]string{s.Start.Format(time.RFC3339Nano), end, strconv.FormatFloat(duration(s, now).Seconds(), 'f', 0, 64), s.User, s.IP,
			strconv.Itoa(s.Port), s.Method, s.Key, s.EndReason, strconv.FormatBool(s.Active), strconv.Itoa(len(s.Transfers) + s.TransfersMore),
			strconv.FormatInt(rd, 10), strconv.FormatInt(wr, 10), strconv.Itoa(len(s.Commands) + s.CommandsMore), s.Host, strconv.Itoa(s.PID),
			strconv.Itoa(s.CommandsMore), strconv.FormatInt(s.CommandBytesMore, 10), strconv.Itoa(s.TransfersMore), strconv.FormatInt(s.TransferBytesMore, 10)})
	}
	cw.Flush()
	return cw.Error()
}

func net(s *Session) string { return s.IP + " port " + strconv.Itoa(s.Port) }

// quote shows a user name as it is, or quoted when it is empty or has
// spaces or characters a terminal would obey (names come from the log):
// strconv.Quote escapes them all (textsafe).
func quote(u string) string {
	if u != "" && !strings.Contains(u, " ") && textsafe.Safe(u) {
		return u
	}
	return strconv.Quote(u)
}

// WriteHistory prints a user's history (sshguard-go history) for a person.
func WriteHistory(w io.Writer, h control.History) {
	safe := textsafe.String
	fmt.Fprintf(w, "User %s: %d logins, %d failed attempts at the account (in the kept hourly counts)\n", safe(h.User), len(h.Logins), h.Failed)
	fmt.Fprintf(w, "Sources: %s\nMethods: %s\n", counts(h.Sources), counts(h.Methods))
	if len(h.FailedDays) > 0 {
		days := make([]string, 0, len(h.FailedDays))
		for d := range h.FailedDays {
			days = append(days, d)
		}
		sort.Sort(sort.Reverse(sort.StringSlice(days)))
		var parts []string
		for _, d := range days[:min(len(days), 14)] {
			parts = append(parts, fmt.Sprintf("%s %d", d, h.FailedDays[d]))
		}
		fmt.Fprintf(w, "Failed attempts by day (latest first): %s\n", strings.Join(parts, ", "))
	}
	fmt.Fprintln(w, "\nLogins (latest last):")
	for _, l := range h.Logins[max(0, len(h.Logins)-50):] {
		fmt.Fprintf(w, "  %s  %-39s %-10s %s\n", l.Time.Format(time.RFC3339), safe(l.IP), safe(l.Method), safe(l.Severity))
	}
	fmt.Fprintln(w, "\nSessions with transfers:")
	for _, r := range h.Sessions {
		s, err := Unmarshal(r)
		if err != nil || len(s.Transfers) == 0 {
			continue
		}
		fmt.Fprintf(w, "  %s from %s:\n", s.Start.Format(time.RFC3339), safe(s.IP))
		for _, t := range s.Transfers {
			fmt.Fprintf(w, "    %s  read %d  written %d\n", safe(t.Path), t.BytesRead, t.BytesWritten)
		}
	}
}

// counts writes "a 3, b 1", the most first.
func counts(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return m[keys[i]] > m[keys[j]] || m[keys[i]] == m[keys[j]] && keys[i] < keys[j] })
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", textsafe.String(k), m[k]))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}
