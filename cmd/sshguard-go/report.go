package main

import (
	"bufio"
	"cmp"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"sshguard-go/internal/detect"
)

// maxUsers bounds the distinct user names kept per address; the count
// beyond it is still exact in UsersMore.
const maxUsers = 200

// clientSummary is one address's line in a report.
type clientSummary struct {
	Client    string
	Failed    int64 // counted failed attempts
	Probes    int64 // counted probes
	Successes int64
	Users     []string // distinct users tried or logged in, in first-seen order
	usersSet  map[string]struct{}
	UsersMore int64 // distinct users beyond maxUsers
	First     time.Time
	Last      time.Time
}

func (c *clientSummary) add(r *detect.Record) {
	switch r.Kind {
	case detect.KindFailure:
		c.Failed += int64(r.Counted)
	case detect.KindProbe:
		c.Probes += int64(r.Counted)
	case detect.KindSuccess:
		c.Successes++
	}
	if r.User != "" && (r.Kind == detect.KindFailure || r.Kind == detect.KindSuccess) {
		if _, ok := c.usersSet[r.User]; !ok {
			if len(c.Users) < maxUsers {
				u := strings.Clone(r.User)
				c.usersSet[u] = struct{}{}
				c.Users = append(c.Users, u)
			} else {
				c.UsersMore++ // may count a name twice past the bound; documented as approximate
			}
		}
	}
	if !r.Time.IsZero() {
		if c.First.IsZero() || r.Time.Before(c.First) {
			c.First = r.Time
		}
		if r.Time.After(c.Last) {
			c.Last = r.Time
		}
	}
}

func newReportCmd() *cobra.Command {
	var (
		asJSON bool
		top    int
		since  time.Duration
	)
	cmd := &cobra.Command{
		Use:   "report [--json] [--top N] [--since DURATION] [FILE|-]...",
		Short: "Summarise failed attempts, probes and logins per client address",
		Long: `report reads log files like scan and prints one line per client address:
counted failed attempts (each guess once, however many lines it wrote),
counted probes, successful logins, the users tried, and first and last seen.
Addresses are sorted by failed attempts, then probes.`,
		Example: `  sshguard-go report --top 20 /var/log/auth.log*
  sshguard-go report --since 24h --json /var/log/auth.log | jq 'to_entries[0]'`,
		RunE: func(cmd *cobra.Command, args []string) error {
			byClient := map[string]*clientSummary{}
			cutoff := time.Time{}
			if since > 0 {
				cutoff = time.Now().Add(-since)
			}
			emit := func(r *detect.Record) {
				if !cutoff.IsZero() && (r.Time.IsZero() || r.Time.Before(cutoff)) {
					return
				}
				key := r.Client()
				if key == "" {
					return
				}
				c := byClient[key]
				if c == nil {
					c = &clientSummary{Client: strings.Clone(key), usersSet: map[string]struct{}{}}
					byClient[c.Client] = c
				}
				c.add(r)
			}
			err := scanInputs(args, cmd.InOrStdin(), cmd.ErrOrStderr(), emit)
			list := sortSummaries(byClient)
			if top > 0 && len(list) > top {
				list = list[:top]
			}
			w := bufio.NewWriter(cmd.OutOrStdout())
			if asJSON {
				writeReportJSON(w, list)
			} else {
				writeReportText(w, list)
			}
			if ferr := w.Flush(); ferr != nil && err == nil {
				err = ferr
			}
			return err
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON object keyed by address")
	cmd.Flags().IntVar(&top, "top", 0, "show only the first N addresses")
	cmd.Flags().DurationVar(&since, "since", 0, "only count events newer than this (e.g. 24h)")
	return cmd
}

func sortSummaries(m map[string]*clientSummary) []*clientSummary {
	list := make([]*clientSummary, 0, len(m))
	for _, c := range m {
		list = append(list, c)
	}
	slices.SortFunc(list, func(a, b *clientSummary) int {
		if c := cmp.Compare(b.Failed, a.Failed); c != 0 {
			return c
		}
		if c := cmp.Compare(b.Probes, a.Probes); c != 0 {
			return c
		}
		if c := cmp.Compare(b.Successes, a.Successes); c != 0 {
			return c
		}
		return strings.Compare(a.Client, b.Client)
	})
	return list
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Format(time.RFC3339)
}

func writeReportText(w io.Writer, list []*clientSummary) {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "ADDRESS\tFAILED\tPROBES\tLOGINS\tFIRST SEEN\tLAST SEEN\tUSERS")
	for _, c := range list {
		users := make([]string, 0, min(len(c.Users), 5))
		for i, u := range c.Users {
			if i == 5 {
				break
			}
			users = append(users, strconv.Quote(u))
		}
		more := ""
		if n := int64(len(c.Users)) - int64(len(users)) + c.UsersMore; n > 0 {
			more = fmt.Sprintf(" +%d more", n)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t%s\t%s%s\n", c.Client, c.Failed, c.Probes, c.Successes,
			fmtTime(c.First), fmtTime(c.Last), strings.Join(users, ","), more)
	}
	tw.Flush()
}

func writeReportJSON(w io.Writer, list []*clientSummary) {
	var b []byte
	b = append(b, '{')
	for i, c := range list {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, "\n  "...)
		b = strconv.AppendQuote(b, c.Client)
		b = append(b, `: {"failed": `...)
		b = strconv.AppendInt(b, c.Failed, 10)
		b = append(b, `, "probes": `...)
		b = strconv.AppendInt(b, c.Probes, 10)
		b = append(b, `, "successes": `...)
		b = strconv.AppendInt(b, c.Successes, 10)
		b = append(b, `, "users": [`...)
		for j, u := range c.Users {
			if j > 0 {
				b = append(b, ", "...)
			}
			b = detect.AppendJSONString(b, u)
		}
		b = append(b, `], "users_more": `...)
		b = strconv.AppendInt(b, c.UsersMore, 10)
		b = append(b, `, "first_seen": `...)
		b = appendJSONTime(b, c.First)
		b = append(b, `, "last_seen": `...)
		b = appendJSONTime(b, c.Last)
		b = append(b, '}')
		if len(b) > 64<<10 {
			w.Write(b)
			b = b[:0]
		}
	}
	b = append(b, "\n}\n"...)
	w.Write(b)
}

func appendJSONTime(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(b, "null"...)
	}
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}
