// Package api is the daemon's read-only HTTP API and its dashboard: what
// the state database knows (hourly counts, bans, logins) and the recent
// events, as JSON with stable names, dates in the daemon's time zone. A
// request reads hourly buckets, never the event history.
package api

import (
	"cmp"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"sshguard-go/internal/httpserve"
	"sshguard-go/internal/session"
	"sshguard-go/internal/store"
)

// Limits are the API's, as the daemon serves it. Its clients are the
// dashboards (a page asks a few endpoints at once, every minute), the
// fleet's aggregator (at most two connections a host) and scripts; its
// largest answers are lists of up to 10,000 bans, logins, events or
// sessions, megabytes gathered from the store in well under a second:
// a minute to answer, sent through a 256 KiB send buffer (a client that
// never reads pins no more of the kernel), 128 connections, 8 requests
// worked on at once (each may read a week of sessions) with 5 s to wait
// for a place. Anyone who reaches the port is a client before its
// credentials are checked: these hold for them too.
func Limits() httpserve.Limits {
	return httpserve.Limits{ReadHeader: 5 * time.Second, Read: 10 * time.Second, Write: time.Minute, Idle: time.Minute,
		MaxHeaderBytes: 16 << 10, MaxConns: 128, MaxRequests: 8, Queue: 5 * time.Second, SendBuffer: 256 << 10, Grace: 5 * time.Second}
}

// Server answers the API of one host.
type Server struct {
	DB     *store.DB
	Host   string
	Loc    *time.Location // days begin at midnight here
	Events *Events        // recent events (nil: none)
	// Token is the bearer token that opens the Private routes (and the
	// Counts ones where they are not open); "": none does, and only a
	// client certificate verified by the TLS configuration opens them.
	Token string
	// OpenCounts serves the Counts routes without credentials, to
	// connections made to a loopback address: the daemon sets it when
	// the API listens on loopback only. The Private routes always need
	// credentials.
	OpenCounts bool
	Now        func() time.Time
	// Counts, if set, is where the hourly counts are read (the daemon's
	// engine: the database's and those not written yet); else DB.
	Counts interface {
		Hours(from, to time.Time, fn func(hour time.Time, c store.Counts)) error
	}
}

// Day is one day's (or one hour's) numbers.
type Day struct {
	Date        string `json:"date,omitempty"` // YYYY-MM-DD, a day
	Hour        string `json:"hour,omitempty"` // RFC 3339, an hour
	Failed      int64  `json:"failed"`         // counted failed attempts
	Probes      int64  `json:"probes"`         // counted probes
	Connections int64  `json:"connections"`    // distinct sshd connections (host and pid)
	Logins      int64  `json:"logins"`
	Bans        int64  `json:"bans"`      // bans started
	Addresses   int64  `json:"addresses"` // distinct client addresses
	Hours       []Day  `json:"hours,omitempty"`
}

// Add adds o's numbers to d.
func (d *Day) Add(o Day) {
	d.Failed += o.Failed
	d.Probes += o.Probes
	d.Connections += o.Connections
	d.Logins += o.Logins
	d.Bans += o.Bans
	d.Addresses += o.Addresses
}

// Summary is the answer of /api/v1/summary.
type Summary struct {
	Host         string      `json:"host"`
	Timezone     string      `json:"timezone"`
	From         string      `json:"from"`
	To           string      `json:"to"`
	Days         []Day       `json:"days"`
	TopAddresses []AddrCount `json:"top_addresses"`
	TopUsers     []UserCount `json:"top_users"`
}

type AddrCount struct {
	IP     string `json:"ip"`
	Failed int64  `json:"failed"`
	Probes int64  `json:"probes"`
	Banned bool   `json:"banned"`
}

type UserCount struct {
	User   string `json:"user"`
	Failed int64  `json:"failed"`
}

// Ban is an active ban.
type Ban struct {
	Prefix   string     `json:"prefix"`
	Reason   string     `json:"reason"`
	Since    time.Time  `json:"since"`
	Expires  *time.Time `json:"expires"` // null: permanent
	Attempts float64    `json:"attempts"`
	Nth      int        `json:"nth"`
	Users    []string   `json:"users"`
}

// Bans is the answer of /api/v1/bans.
type Bans struct {
	Total int   `json:"total"`
	Bans  []Ban `json:"bans"`
	// Damaged counts the ban records of the database that do not decode,
	// left out (`sshguard-go unban PREFIX` deletes one); DamagedKeys are
	// the keys of the first ones (store.DamagedKey).
	Damaged     int      `json:"damaged,omitempty"`
	DamagedKeys []string `json:"damaged_keys,omitempty"`
}

// Login is a successful login.
type Login struct {
	Time     time.Time `json:"time"`
	User     string    `json:"user"`
	IP       string    `json:"ip"`
	Method   string    `json:"method"`
	Key      string    `json:"key"`
	Severity string    `json:"severity"`
	Tags     []string  `json:"tags"`
}

// Limits of one request.
const (
	topAddresses = 20
	topUsers     = 20
	maxDays      = 400   // a summary's range
	maxList      = 10000 // bans, logins, events per answer
	defaultList  = 1000
)

// Access is who may read a route.
type Access int

const (
	_ Access = iota // not decided: Handler refuses to start
	// Static routes hold no data (the pages, their assets, the API's
	// documents): anyone reads them, wherever the API listens.
	Static
	// Counts routes hold the aggregate counts (per day and hour, the top
	// addresses and users): anyone on this machine reads them when the API
	// listens on loopback (Server.OpenCounts); else they are Private.
	Counts
	// Private routes name individual logins, sessions and their commands,
	// events and bans: only the bearer token or a verified client
	// certificate opens them, wherever the API listens.
	Private
)

func (a Access) String() string {
	switch a {
	case Static:
		return "static"
	case Counts:
		return "counts"
	case Private:
		return "private"
	}
	return fmt.Sprintf("Access(%d)", int(a))
}

// Route is one path Handler serves (a net/http pattern, GET only) and
// who may read it.
type Route struct {
	Path   string
	Access Access
}

// route is a Route and what serves it: data, an endpoint documented in
// openapi.json, or page.
type route struct {
	Route
	data func(*http.Request) (any, error)
	page http.Handler
}

// Routes lists every path Handler serves, with its access.
func Routes() []Route {
	var out []Route
	for _, rt := range (&Server{}).routes() {
		out = append(out, rt.Route)
	}
	return out
}

// Handler serves the API, its documents and the dashboard.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	kept := &keptAnswers{now: time.Now}
	for _, rt := range s.routes() {
		h := rt.page
		if rt.data != nil {
			h = serveData(kept, rt.data)
		}
		mux.Handle("GET "+rt.Path, s.guard(rt.Access, h))
	}
	return Secure(mux)
}

// routes is every path served. An endpoint (data) is documented in
// openapi.json, its security there as its access here.
func (s *Server) routes() []route {
	return []route{
		{Route{"/api/v1/summary", Counts}, s.summary, nil},
		{Route{"/api/v1/days/{date}", Counts}, s.day, nil},
		{Route{"/api/v1/bans", Private}, s.bans, nil},
		{Route{"/api/v1/logins", Private}, s.logins, nil},
		{Route{"/api/v1/events", Private}, s.events, nil},
		{Route{"/api/v1/sessions", Private}, s.sessions, nil},
		{Route{"/api/v1/openapi.json", Static}, nil, http.HandlerFunc(serveOpenAPI)},
		{Route{"/api/docs", Static}, nil, http.HandlerFunc(serveDocs)},
		{Route{"/assets/", Static}, nil, http.StripPrefix("/assets/", Assets())},
		{Route{"/{$}", Static}, nil, Page("index.html")},
	}
}

// Secure sets the headers every answer carries: nothing loads from
// another origin, no framing, no sniffing.
func Secure(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		h.ServeHTTP(w, r)
	})
}

// guard serves h to the requests access lets in, and answers 401 to the
// others.
func (s *Server) guard(access Access, h http.Handler) http.Handler {
	switch access {
	case Static:
		return h
	case Counts, Private:
	default:
		panic(fmt.Sprintf("api: a route with no access decided (%v)", access))
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if access == Counts && s.OpenCounts && toLoopback(r) || s.credentials(r) {
			h.ServeHTTP(w, r)
			return
		}
		unauthorized(w)
	})
}

// credentials reports whether r carries the server's bearer token or
// came over TLS with a client certificate the configuration verified.
func (s *Server) credentials(r *http.Request) bool {
	return bearer(r, s.Token) || r.TLS != nil && len(r.TLS.VerifiedChains) > 0
}

// toLoopback reports whether r came on a connection made to a loopback
// address (a listener on 0.0.0.0 also takes connections to 127.0.0.1:
// OpenCounts alone says where the API listens).
func toLoopback(r *http.Request) bool {
	a, ok := r.Context().Value(http.LocalAddrContextKey).(*net.TCPAddr)
	return ok && a.AddrPort().Addr().Unmap().IsLoopback()
}

// serveData answers with f's value as JSON (never cached by the client).
// The answers are made one at a time (answering): a burst of requests
// takes at most one processor from the ban path, whatever their number;
// each answer is made whole in memory inside that turn, and sent to the
// client after it (a slow reader holds no turn). An answer made is kept a
// second (kept, unless nil): the same question asked again within it is
// answered from there.
func serveData(kept *keptAnswers, f func(*http.Request) (any, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code, body, ok := answerInTurn(kept, f, r)
		if !ok {
			return // the client left while it waited
		}
		if code == http.StatusOK {
			w.Header().Set("Cache-Control", "no-store")
		}
		writeBody(w, code, body)
	})
}

// answerInTurn waits for the turn (503 after answerWait; not ok when
// the client leaves first) and makes the answer in it; the turn ends even
// if making it panics.
func answerInTurn(kept *keptAnswers, f func(*http.Request) (any, error), r *http.Request) (code int, body []byte, ok bool) {
	key := r.URL.Path + "?" + r.URL.RawQuery
	if body, ok := kept.get(key); ok {
		return http.StatusOK, body, true
	}
	waiting.Add(1)
	wait := time.NewTimer(answerWait)
	defer wait.Stop()
	select {
	case answering <- struct{}{}:
		waiting.Add(-1)
	case <-wait.C:
		waiting.Add(-1)
		return http.StatusServiceUnavailable, marshal(map[string]string{"error": "busy: other answers are being made; try again"}), true
	case <-r.Context().Done():
		waiting.Add(-1)
		return 0, nil, false
	}
	defer func() { <-answering }()
	if body, ok := kept.get(key); ok { // made while this one waited
		return http.StatusOK, body, true
	}
	code, body = answer(f, r)
	if code == http.StatusOK {
		kept.put(key, body)
	}
	return code, body, true
}

// answering holds the turn of the one answer being made; waiting counts
// the requests waiting for it (what a test looks at); answerWait is the
// longest one waits.
var (
	answering  = make(chan struct{}, 1)
	waiting    atomic.Int32
	answerWait = 10 * time.Second
)

// answer is f's value for r as JSON with its status: 200, or 400 and 500
// with the error (500 too when the value cannot be written as JSON).
func answer(f func(*http.Request) (any, error), r *http.Request) (int, []byte) {
	v, err := f(r)
	if err == nil {
		var b []byte
		if b, err = json.Marshal(v); err == nil {
			return http.StatusOK, append(b, '\n')
		}
	}
	code := http.StatusInternalServerError
	if errors.As(err, new(badRequest)) {
		code = http.StatusBadRequest
	}
	return code, marshal(map[string]string{"error": err.Error()})
}

// marshal is v as JSON and a newline (an error's text if v cannot be).
func marshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		b, _ = json.Marshal(map[string]string{"error": err.Error()})
	}
	return append(b, '\n')
}

func writeBody(w http.ResponseWriter, code int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(body)
}

// Authorized reports whether r carries token as its bearer token (any
// request does when token is ""); if not, it has answered 401. The
// comparison takes the same time whatever the token sent.
func Authorized(w http.ResponseWriter, r *http.Request, token string) bool {
	if token == "" || bearer(r, token) {
		return true
	}
	unauthorized(w)
	return false
}

// bearer reports whether r carries token as its bearer token (never when
// token is ""), in a time that does not depend on what was sent.
func bearer(r *http.Request, token string) bool {
	if token == "" {
		return false
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(got), []byte(token)) == 1
}

func unauthorized(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="sshguard-go"`)
	WriteJSON(w, http.StatusUnauthorized, map[string]string{"error": "a valid bearer token is needed"})
}

type badRequest struct{ error }

func bad(format string, args ...any) error { return badRequest{fmt.Errorf(format, args...)} }

// WriteJSON writes v with code, as JSON (compact: a person reads it
// through jq or the dashboard).
func WriteJSON(w http.ResponseWriter, code int, v any) { writeBody(w, code, marshal(v)) }

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Server) loc() *time.Location {
	if s.Loc == nil {
		return time.Local
	}
	return s.Loc
}

// midnight is the start of date's day.
func (s *Server) midnight(date string) (time.Time, error) {
	t, err := time.ParseInLocation(time.DateOnly, date, s.loc())
	if err != nil {
		return t, bad("date %q: want YYYY-MM-DD", date)
	}
	return t, nil
}

func (s *Server) today() time.Time {
	y, m, d := s.now().In(s.loc()).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, s.loc())
}

// dateOf is the day hour h (a UTC hour's start) belongs to.
func (s *Server) dateOf(h time.Time) string { return h.In(s.loc()).Format(time.DateOnly) }

// hours calls fn with each hour in [from, to) that has counts.
func (s *Server) hours(from, to time.Time, fn func(hour time.Time, c store.Counts)) error {
	if s.Counts != nil {
		return s.Counts.Hours(from, to, fn)
	}
	return s.DB.Hours(from, to, fn)
}

func hourDay(c store.Counts) Day {
	return Day{Failed: c.Failed, Probes: c.Probes, Connections: c.Conns, Logins: c.Logins(), Bans: c.Bans, Addresses: c.Addresses}
}

// dayPart is what an hour adds to its day: the connections and addresses
// first seen that day.
func dayPart(c store.Counts) Day {
	d := hourDay(c)
	d.Connections, d.Addresses = c.DayConns, c.DayAddresses
	return d
}

func (s *Server) summary(r *http.Request) (any, error) {
	q := r.URL.Query()
	to, from := s.today(), s.today().AddDate(0, 0, -6)
	var err error
	if v := q.Get("to"); v != "" {
		if to, err = s.midnight(v); err != nil {
			return nil, err
		}
		if q.Get("from") == "" {
			from = to.AddDate(0, 0, -6)
		}
	}
	if v := q.Get("from"); v != "" {
		if from, err = s.midnight(v); err != nil {
			return nil, err
		}
	}
	if to.Before(from) {
		return nil, bad("from %s is after to %s", from.Format(time.DateOnly), to.Format(time.DateOnly))
	}
	if to.Sub(from) > maxDays*24*time.Hour {
		return nil, bad("at most %d days at once", maxDays)
	}
	return s.Summary(from, to)
}

// LastDays is the summary of the last n days, today included.
func (s *Server) LastDays(n int) (Summary, error) {
	return s.Summary(s.today().AddDate(0, 0, -(n-1)), s.today())
}

// Summary is the answer of /api/v1/summary for the days from from to to
// (midnights in the server's zone).
func (s *Server) Summary(from, to time.Time) (Summary, error) {
	var err error
	out := Summary{Host: s.Host, Timezone: s.loc().String(), From: from.Format(time.DateOnly), To: to.Format(time.DateOnly),
		TopAddresses: []AddrCount{}, TopUsers: []UserCount{}}
	index := map[string]int{}
	for d := from; !d.After(to); d = d.AddDate(0, 0, 1) {
		index[d.Format(time.DateOnly)] = len(out.Days)
		out.Days = append(out.Days, Day{Date: d.Format(time.DateOnly)})
	}
	var sum store.Counts
	err = s.hours(from, to.AddDate(0, 0, 1), func(h time.Time, c store.Counts) {
		if i, ok := index[s.dateOf(h)]; ok {
			out.Days[i].Add(dayPart(c))
			sum.Merge(c)
		}
	})
	if err != nil {
		return Summary{}, err
	}
	keys := store.Top(sum.Addrs, topAddresses, store.Tries.Cmp)
	addrs := make([]netip.Addr, 0, len(keys))
	for _, k := range keys {
		if a, err := netip.ParseAddr(k); err == nil {
			addrs = append(addrs, a)
		}
	}
	banned, err := s.DB.Banned(addrs, s.now())
	if err != nil {
		return Summary{}, err
	}
	for _, k := range keys {
		a, _ := netip.ParseAddr(k)
		t := sum.Addrs[k]
		out.TopAddresses = append(out.TopAddresses, AddrCount{IP: k, Failed: t.Failed, Probes: t.Probes, Banned: banned[a]})
	}
	for _, u := range store.Top(sum.Users, topUsers, func(a, b int64) int { return cmp.Compare(b, a) }) {
		out.TopUsers = append(out.TopUsers, UserCount{User: u, Failed: sum.Users[u]})
	}
	return out, nil
}

func (s *Server) day(r *http.Request) (any, error) {
	start, err := s.midnight(r.PathValue("date"))
	if err != nil {
		return nil, err
	}
	end := start.AddDate(0, 0, 1)
	out := Day{Date: start.Format(time.DateOnly), Hours: []Day{}}
	byHour := map[int64]store.Counts{}
	err = s.hours(start, end, func(h time.Time, c store.Counts) {
		byHour[h.Unix()] = c
		out.Add(dayPart(c))
	})
	// Every hour of the day, in the zone (23 or 25 when clocks change).
	for h := start; h.Before(end); h = h.Add(time.Hour) {
		d := hourDay(byHour[h.Truncate(time.Hour).Unix()])
		d.Hour = h.Format(time.RFC3339)
		out.Hours = append(out.Hours, d)
	}
	return out, err
}

// list reads the since and limit parameters.
func list(r *http.Request, since time.Time) (time.Time, int, error) {
	q := r.URL.Query()
	limit := defaultList
	if v := q.Get("since"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return since, 0, bad("since %q: want RFC 3339, e.g. 2026-11-28T00:00:00Z", v)
		}
		since = t
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxList {
			return since, 0, bad("limit %q: want 1 to %d", v, maxList)
		}
		limit = n
	}
	return since, limit, nil
}

func (s *Server) bans(r *http.Request) (any, error) {
	_, limit, err := list(r, time.Time{})
	if err != nil {
		return nil, err
	}
	total, newest, damaged, err := s.DB.NewestInForce(s.now(), limit)
	if err != nil {
		return nil, err
	}
	out := Bans{Total: total, Bans: []Ban{}, Damaged: damaged.N, DamagedKeys: damaged.Keys}
	for _, b := range newest {
		v := Ban{Prefix: b.Prefix.String(), Reason: b.Reason, Since: b.Start.In(s.loc()), Attempts: b.Attempts, Nth: b.Count, Users: b.Users}
		if !b.Expires.IsZero() {
			e := b.Expires.In(s.loc())
			v.Expires = &e
		}
		if v.Users == nil {
			v.Users = []string{}
		}
		out.Bans = append(out.Bans, v)
	}
	return out, nil
}

func (s *Server) logins(r *http.Request) (any, error) {
	since, limit, err := list(r, s.now().Add(-7*24*time.Hour))
	if err != nil {
		return nil, err
	}
	ls, err := s.DB.NewestLogins(since, limit)
	if err != nil {
		return nil, err
	}
	out := []Login{}
	for _, l := range ls {
		v := Login{Time: l.Time.In(s.loc()), User: l.User, IP: l.Addr.String(), Method: l.Method, Key: l.Key, Severity: l.Severity, Tags: l.Tags}
		if v.Tags == nil {
			v.Tags = []string{}
		}
		out = append(out, v)
	}
	return out, nil
}

func (s *Server) events(r *http.Request) (any, error) {
	since, limit, err := list(r, time.Time{})
	if err != nil {
		return nil, err
	}
	out := s.Events.Since(since, limit)
	for i := range out {
		out[i].Time = out[i].Time.In(s.loc())
	}
	return out, nil
}

// defaultSessions is how many sessions /api/v1/sessions returns unless
// asked for fewer or more.
const defaultSessions = 100

// sessions lists the audit trail's sessions, newest first: the open ones
// with active=1, else those that started at or after since.
func (s *Server) sessions(r *http.Request) (any, error) {
	since, limit, err := list(r, s.now().Add(-7*24*time.Hour))
	if err != nil {
		return nil, err
	}
	if r.URL.Query().Get("limit") == "" {
		limit = defaultSessions
	}
	all, err := session.Stored(s.DB, session.Query{Since: since, Active: r.URL.Query().Get("active") == "1", Limit: limit})
	slices.Reverse(all)
	return all, err
}
