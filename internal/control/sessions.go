package control

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// SessionQuery selects sessions: those that started at or after Since
// (zero: all kept), of User and from IP when set, only the open ones when
// Active, at most Limit (the newest).
type SessionQuery struct {
	User   string
	IP     string
	Since  time.Time
	Active bool
	Limit  int
}

// DefaultSessionLimit is how many sessions a query returns by default.
const DefaultSessionLimit = 1000

// History is what the state database knows of one user: logins, where
// from and how, failed attempts at the account, and the sessions (with
// their transfers).
type History struct {
	User       string            `json:"user"`
	Logins     []LoginInfo       `json:"logins"`
	Sources    map[string]int    `json:"sources"` // address -> logins
	Methods    map[string]int    `json:"methods"` // method -> logins
	Failed     int64             `json:"failed"`  // counted failed attempts at the account, in the kept hourly counts
	FailedDays map[string]int64  `json:"failed_days"`
	Sessions   []json.RawMessage `json:"sessions"`
}

// LoginInfo is one login as listed.
type LoginInfo struct {
	Time     time.Time `json:"time"`
	IP       string    `json:"ip"`
	Method   string    `json:"method"`
	Key      string    `json:"key,omitempty"`
	Severity string    `json:"severity,omitempty"`
}

// sessionsHandlers adds the sessions' endpoints to mux.
func sessionsHandlers(mux *http.ServeMux, b Backend) {
	mux.HandleFunc("GET /v1/sessions", func(w http.ResponseWriter, r *http.Request) {
		q, err := parseSessionQuery(r.URL.Query())
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		v, err := b.Sessions(r.Context(), q)
		reply(w, v, err)
	})
	mux.HandleFunc("GET /v1/history", func(w http.ResponseWriter, r *http.Request) {
		v, err := b.History(r.Context(), r.URL.Query().Get("user"))
		reply(w, v, err)
	})
}

func (q SessionQuery) values() url.Values {
	v := url.Values{"user": {q.User}, "ip": {q.IP}, "limit": {strconv.Itoa(q.Limit)}}
	if !q.Since.IsZero() {
		v.Set("since", q.Since.Format(time.RFC3339Nano))
	}
	if q.Active {
		v.Set("active", "1")
	}
	return v
}

func parseSessionQuery(v url.Values) (SessionQuery, error) {
	q := SessionQuery{User: v.Get("user"), IP: v.Get("ip"), Active: v.Get("active") == "1", Limit: DefaultSessionLimit}
	if s := v.Get("since"); s != "" {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return q, err
		}
		q.Since = t
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return q, strconv.ErrSyntax
		}
		q.Limit = n
	}
	return q, nil
}

// Sessions asks the daemon for sessions.
func (c *Client) Sessions(ctx context.Context, q SessionQuery) ([]json.RawMessage, error) {
	var v []json.RawMessage
	return v, c.do(ctx, "GET", "/v1/sessions?"+q.values().Encode(), nil, &v)
}

// History asks the daemon for a user's history.
func (c *Client) History(ctx context.Context, user string) (History, error) {
	var v History
	return v, c.do(ctx, "GET", "/v1/history?"+url.Values{"user": {user}}.Encode(), nil, &v)
}
