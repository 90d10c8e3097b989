// Package control is the daemon's control API: HTTP with JSON bodies over a
// root-only unix socket, and the client the CLI uses. Both sides speak
// through Backend, which the daemon implements over its engine and store,
// and the CLI implements directly over the store and the kernel set when no
// daemon runs.
package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"sshguard-go/internal/httpserve"
)

// DefaultSocket is where the daemon listens.
const DefaultSocket = "/run/sshguard-go/control.sock"

// BanInfo is an active ban as listed.
type BanInfo struct {
	Prefix   netip.Prefix `json:"prefix"`
	Since    time.Time    `json:"since"`
	Expires  time.Time    `json:"expires,omitzero"` // zero: permanent
	Count    int          `json:"count"`
	Reason   string       `json:"reason"`
	LastUser string       `json:"last_user,omitempty"`
	Origin   string       `json:"origin,omitempty"` // detected, admin, archive, fleetwide, fleet:<host>
	// DryRun: a dry run's (firewall.backend = "none"): would have been
	// banned, is not.
	DryRun bool `json:"dry_run,omitempty"`
	// Replaced is the ban in force this one (by hand) replaced.
	Replaced *BanInfo `json:"replaced,omitempty"`
}

// BanList is the answer of Bans and DryRunBans: the bans, and the ban
// records of the database left out because they do not decode.
type BanList struct {
	Bans    []BanInfo `json:"bans"`
	Damaged Damaged   `json:"damaged,omitzero"`
}

// UnmarshalJSON reads a BanList, or the bare list of bans an older
// daemon answers (until it is restarted after an upgrade).
func (l *BanList) UnmarshalJSON(b []byte) error {
	if b = bytes.TrimSpace(b); len(b) > 0 && b[0] == '[' {
		*l = BanList{}
		return json.Unmarshal(b, &l.Bans)
	}
	type list BanList // without this method
	return json.Unmarshal(b, (*list)(l))
}

// Damaged are the ban records of the database that do not decode (a
// value damaged on a page that is whole), left out of a list: how many,
// and the keys of the first ones, printable: a prefix, whose record
// `sshguard-go unban PREFIX` deletes, or a damaged key, quoted.
type Damaged struct {
	Count int      `json:"count"`
	Keys  []string `json:"keys,omitempty"`
}

// AllowInfo is an allowlist entry.
type AllowInfo struct {
	Prefix  netip.Prefix `json:"prefix"`
	Comment string       `json:"comment,omitempty"`
	Source  string       `json:"source"` // "config", "store", "builtin" or "fleet" (its NATS servers)
}

// NotAllowed is allow rm's answer when p is no entry added with allow add:
// the entries of entries (AllowList's) that hold p, named with where each
// comes from and how it goes.
func NotAllowed(entries []AllowInfo, p netip.Prefix) error {
	var holding []string
	for _, e := range entries {
		if e.Prefix.Bits() > p.Bits() || !e.Prefix.Contains(p.Addr()) {
			continue
		}
		switch e.Source {
		case "store":
			holding = append(holding, e.Prefix.String()+" (added with allow add: allow rm "+e.Prefix.String()+")")
		case "builtin":
			holding = append(holding, e.Prefix.String()+" (built in, always allowed)")
		case "fleet":
			holding = append(holding, e.Prefix.String()+" (a NATS server of fleet.nats_url, always allowed)")
		default:
			holding = append(holding, e.Prefix.String()+" (ban.allow in the configuration: remove it there and reload)")
		}
	}
	if len(holding) > 0 {
		return fmt.Errorf("%s is not an entry added with allow add; it is allowed by %s", p, strings.Join(holding, ", "))
	}
	return fmt.Errorf("%s is not on the allowlist (allow list shows the entries)", p)
}

// SourceStatus tells how far a log source has read.
type SourceStatus struct {
	Name     string `json:"name"`
	Position string `json:"position"`
	Lines    int64  `json:"lines"`
	// State is starting, reading, waiting (for a file that does not exist
	// yet, log.wait) or failed; Why says what it waits for or why it failed.
	State string `json:"state,omitempty"`
	Why   string `json:"why,omitempty"`
	// Behind is how many bytes of the file are not read yet (a file).
	Behind int64 `json:"behind,omitempty"`
	// Newest is the newest time a line read bore: how far the log is read.
	Newest time.Time `json:"newest,omitzero"`
}

// Status is what `sshguard-go status` shows.
type Status struct {
	Started    time.Time        `json:"started"`
	Sources    []SourceStatus   `json:"sources"`
	Tracked    int              `json:"tracked"`
	ActiveBans int              `json:"active_bans"`
	Events     map[string]int64 `json:"events"`
	// Untrusted counts journal entries tagged sshd that sshd did not
	// write (logger -t sshd): read, not believed.
	Untrusted int64 `json:"untrusted_lines"`
	// Unrecognised counts the lines naming sshd that gave no event, by
	// reason (unknown_shape, unknown_header).
	Unrecognised map[string]int64 `json:"unrecognised_lines"`
	// DryRun: firewall.backend = "none": what it would ban is kept apart
	// (list --dry-run), nothing is banned.
	DryRun bool   `json:"dry_run"`
	Policy Policy `json:"policy"`
	// BansByOrigin are the bans in force by origin ("fleet": the other
	// hosts'); BansSinceStart those made since the daemon started.
	BansByOrigin   map[string]int   `json:"bans_by_origin"`
	BansSinceStart map[string]int64 `json:"bans_since_start"`
	// Dropped counts the side work given up so that banning never waits
	// (a queue full): "counts" (events not in the hourly counts), ...
	Dropped map[string]int64 `json:"dropped,omitempty"`
}

// Policy is the ban policy in force, as status shows it.
type Policy struct {
	Threshold      float64 `json:"threshold"`
	Window         string  `json:"window"`
	BanTime        string  `json:"ban_time"`
	Factor         float64 `json:"factor"`
	MaxBanTime     string  `json:"max_ban_time"`
	Remember       string  `json:"remember"`
	PermanentAfter int     `json:"permanent_after,omitempty"`
	WideV4         int     `json:"wide_prefix_v4,omitempty"`
	WideV6         int     `json:"wide_prefix_v6,omitempty"`
	WideThreshold  float64 `json:"wide_threshold,omitempty"`
	// Horizons are the long windows: "6 in 1d"; NetworkHorizons those of
	// networks ("20 from a /24 in 1d").
	Horizons        []string `json:"horizons,omitempty"`
	NetworkHorizons []string `json:"network_horizons,omitempty"`
	Backend         string   `json:"backend"`
	Table           string   `json:"table"`
}

// AlertInfo is an alert as `sshguard-go alerts` lists it.
type AlertInfo struct {
	ID         uint64                  `json:"id"`
	Time       time.Time               `json:"time"`
	Kind       string                  `json:"kind"`
	Severity   string                  `json:"severity"`
	Subject    string                  `json:"subject"`
	Pending    bool                    `json:"pending"`
	Deliveries map[string]DeliveryInfo `json:"deliveries"`
}

// DeliveryInfo is one channel's delivery state of an alert.
type DeliveryInfo struct {
	State    string    `json:"state"` // pending, sent, failed, expired
	Attempts int       `json:"attempts"`
	Sent     time.Time `json:"sent,omitzero"`
	Next     time.Time `json:"next,omitzero"`
	Digest   bool      `json:"digest,omitempty"`
	Error    string    `json:"error,omitempty"`
	Done     []string  `json:"done,omitempty"` // recipients reached while others failed
}

// BanRequest asks for a ban.
type BanRequest struct {
	Prefix netip.Prefix  `json:"prefix"`
	For    time.Duration `json:"for"` // at least 1s, at most ban.max_ban_time; 0: by the ban policy
	// Permanent asks for a ban without end (For is then ignored).
	Permanent bool   `json:"permanent,omitempty"`
	Reason    string `json:"reason,omitempty"`
	// Origin is "admin" (by hand; "" too) or "archive" (report --ban).
	Origin string `json:"origin,omitempty"`
	// Force allows a prefix wider than the manual minimum (/16, /32), or
	// one holding Self.
	Force bool `json:"force,omitempty"`
	// Self is the address of the caller's own SSH session (SSH_CLIENT):
	// never banned without Force.
	Self netip.Addr `json:"self,omitzero"`
}

// AllowRequest asks for an allowlist entry.
type AllowRequest struct {
	Prefix  netip.Prefix `json:"prefix"`
	Comment string       `json:"comment,omitempty"`
	// Force lifts the bans in force wider than the entry (that hold it);
	// without it they make AllowAdd fail, naming them.
	Force bool `json:"force,omitempty"`
}

// AllowResult is what an allowlist change did to the bans.
type AllowResult struct {
	Prefix   netip.Prefix `json:"prefix"`
	Lifted   []BanInfo    `json:"lifted"`   // bans the new entry lifted
	Restored []BanInfo    `json:"restored"` // bans made again when the entry went
	// Already: the entry was on the allowlist before this add (which kept
	// its comment, unless CommentChanged, and the bans it had lifted).
	Already        bool `json:"already,omitempty"`
	CommentChanged bool `json:"comment_changed,omitempty"`
}

// BanResult is the outcome of one BanRequest of many: the ban, or why not.
type BanResult struct {
	Ban   *BanInfo `json:"ban,omitempty"`
	Error string   `json:"error,omitempty"`
}

// Backend is what the control API exposes.
type Backend interface {
	// Bans returns the bans in force (in a dry run, DryRunBans' too),
	// and the records left out that do not decode.
	Bans(ctx context.Context) (BanList, error)
	// DryRunBans returns what a dry run (firewall.backend = "none") would
	// have in force now: kept apart from the bans, marked DryRun.
	DryRunBans(ctx context.Context) (BanList, error)
	Ban(ctx context.Context, r BanRequest) (BanInfo, error)
	// BanMany makes many bans at once (report --ban), each as Ban would,
	// and returns their outcomes in order.
	BanMany(ctx context.Context, reqs []BanRequest) ([]BanResult, error)
	// Unban lifts the ban of p and the bans inside p or, for an address,
	// the bans that hold it (the /24 or /64 it was banned by), and returns
	// the prefixes lifted; ErrNotFound when none.
	Unban(ctx context.Context, p netip.Prefix) ([]netip.Prefix, error)
	// UnbanAll lifts every ban in force, of origin only when it is not
	// "" ("fleet" is every fleet:<host>), and returns those lifted.
	UnbanAll(ctx context.Context, origin string) ([]netip.Prefix, error)
	// AllowAdd adds an entry and lifts the bans in force it covers
	// (naming them); one wider than the entry only with Force.
	AllowAdd(ctx context.Context, r AllowRequest) (AllowResult, error)
	// AllowRemove removes an entry and makes again the bans it lifted
	// that have not ended.
	AllowRemove(ctx context.Context, p netip.Prefix) (AllowResult, error)
	AllowList(ctx context.Context) ([]AllowInfo, error)
	Status(ctx context.Context) (Status, error)
	// Alerts returns the newest alerts (at most limit; only those still
	// to be delivered if pending).
	Alerts(ctx context.Context, pending bool, limit int) ([]AlertInfo, error)
	// Sessions returns the sessions q selects, oldest first, as the
	// records the daemon stores them (internal/session decodes them).
	Sessions(ctx context.Context, q SessionQuery) ([]json.RawMessage, error)
	// History returns what is known of user.
	History(ctx context.Context, user string) (History, error)
	// Fleet returns the fleet's ban sharing status as JSON (null when it
	// is off).
	Fleet(ctx context.Context) (json.RawMessage, error)
}

// ErrNotFound is returned (and sent as 404) when a ban or allowlist entry
// does not exist.
var ErrNotFound = errors.New("not found")

// ErrNoDaemon is returned by Dial when no daemon listens on the socket.
var ErrNoDaemon = errors.New("no daemon is running")

// Limits are the control socket's. Its clients are root's: the CLI, one
// request a process, and scripts. The largest request is a BanMany of
// MaxBatch bans (under 1 MiB, read within Read); the largest answers are
// list's, 100,000 bans and more (tens of MB, several seconds to gather:
// Write allows them 25 times over) and BanMany's, a batch made in the
// kernel and the store. 16 requests worked on at once (the 1 MiB bodies
// of 16 batches), more wait up to 10 s for their turn: a script running
// the CLI in parallel is served in turn, not refused.
func Limits() httpserve.Limits {
	return httpserve.Limits{ReadHeader: 5 * time.Second, Read: 30 * time.Second, Write: 2 * time.Minute, Idle: 30 * time.Second,
		MaxHeaderBytes: 16 << 10, MaxConns: 64, MaxRequests: 16, Queue: 10 * time.Second, Grace: 5 * time.Second}
}

// Serve answers requests for b on the unix socket path (mode 0600) within
// lim (Limits, but for tests) until ctx ends. It refuses a directory that
// others may write to (they could put their own socket in its place) and a
// path that is not a socket (a typo in --socket must not delete a file).
func Serve(ctx context.Context, path string, b Backend, lim httpserve.Limits) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	if st, err := os.Stat(dir); err != nil {
		return fmt.Errorf("control socket: %w", err)
	} else if st.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("control socket: directory %s is writable by others (mode %04o): use a directory only root may write (the default %s)", dir, st.Mode().Perm(), filepath.Dir(DefaultSocket))
	} else if uid, ok := owner(st); ok && uid != os.Geteuid() {
		return fmt.Errorf("control socket: directory %s belongs to uid %d, not to this daemon's (%d): its owner could put a socket of its own in its place; use a directory only root may write (the default %s)", dir, uid, os.Geteuid(), filepath.Dir(DefaultSocket))
	}
	switch st, err := os.Lstat(path); {
	case err == nil && st.Mode()&os.ModeSocket == 0:
		return fmt.Errorf("control socket: %s exists and is not a socket; not removed", path)
	case err == nil:
		os.Remove(path) // a stale socket from a crash
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return fmt.Errorf("control socket: %w", err)
	}
	// Closing l (when ctx ends) removes the socket.
	if err := (httpserve.Server{Handler: Handler(b), Limits: lim}).Serve(ctx, l); err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	return nil
}

// Handler returns the HTTP API of b.
func Handler(b Backend) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/bans", func(w http.ResponseWriter, r *http.Request) {
		v, err := b.Bans(r.Context())
		reply(w, v, err)
	})
	mux.HandleFunc("GET /v1/bans/dryrun", func(w http.ResponseWriter, r *http.Request) {
		v, err := b.DryRunBans(r.Context())
		reply(w, v, err)
	})
	mux.HandleFunc("POST /v1/bans", func(w http.ResponseWriter, r *http.Request) {
		var req BanRequest
		if !decode(w, r, &req) {
			return
		}
		v, err := b.Ban(r.Context(), req)
		reply(w, v, err)
	})
	mux.HandleFunc("POST /v1/bans/batch", func(w http.ResponseWriter, r *http.Request) {
		var reqs []BanRequest
		if !decode(w, r, &reqs) {
			return
		}
		if len(reqs) > MaxBatch {
			http.Error(w, fmt.Sprintf("bad request: %d bans, at most %d at a time", len(reqs), MaxBatch), http.StatusBadRequest)
			return
		}
		v, err := b.BanMany(r.Context(), reqs)
		reply(w, v, err)
	})
	mux.HandleFunc("DELETE /v1/bans/{prefix...}", func(w http.ResponseWriter, r *http.Request) {
		p, ok := prefixParam(w, r)
		if ok {
			v, err := b.Unban(r.Context(), p)
			reply(w, v, err)
		}
	})
	mux.HandleFunc("GET /v1/allow", func(w http.ResponseWriter, r *http.Request) {
		v, err := b.AllowList(r.Context())
		reply(w, v, err)
	})
	mux.HandleFunc("POST /v1/allow", func(w http.ResponseWriter, r *http.Request) {
		var req AllowRequest
		if !decode(w, r, &req) {
			return
		}
		v, err := b.AllowAdd(r.Context(), req)
		reply(w, v, err)
	})
	mux.HandleFunc("DELETE /v1/allow/{prefix...}", func(w http.ResponseWriter, r *http.Request) {
		p, ok := prefixParam(w, r)
		if ok {
			v, err := b.AllowRemove(r.Context(), p)
			reply(w, v, err)
		}
	})
	mux.HandleFunc("DELETE /v1/bans", func(w http.ResponseWriter, r *http.Request) {
		v, err := b.UnbanAll(r.Context(), r.URL.Query().Get("origin"))
		reply(w, v, err)
	})
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		v, err := b.Status(r.Context())
		reply(w, v, err)
	})
	mux.HandleFunc("GET /v1/alerts", func(w http.ResponseWriter, r *http.Request) {
		limit, err := strconv.Atoi(r.URL.Query().Get("limit"))
		if err != nil {
			http.Error(w, "bad limit", http.StatusBadRequest)
			return
		}
		v, err := b.Alerts(r.Context(), r.URL.Query().Get("pending") == "1", limit)
		reply(w, v, err)
	})
	sessionsHandlers(mux, b)
	mux.HandleFunc("GET /v1/fleet", func(w http.ResponseWriter, r *http.Request) {
		v, err := b.Fleet(r.Context())
		reply(w, v, err)
	})
	return mux
}

func prefixParam(w http.ResponseWriter, r *http.Request) (netip.Prefix, bool) {
	p, err := netip.ParsePrefix(r.PathValue("prefix"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return p, false
	}
	return p, true
}

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(v); err != nil {
		http.Error(w, "bad request: "+err.Error(), http.StatusBadRequest)
		return false
	}
	return true
}

// reply writes v as JSON, or err with a status a client can branch on.
func reply(w http.ResponseWriter, v any, err error) {
	switch {
	case errors.Is(err, ErrNotFound):
		http.Error(w, err.Error(), http.StatusNotFound)
	case err != nil:
		http.Error(w, err.Error(), http.StatusConflict)
	default:
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(v)
	}
}

// Client talks to a running daemon. It implements Backend.
type Client struct {
	hc *http.Client
}

// Dial connects to the daemon's socket. It returns ErrNoDaemon when no
// daemon answers there (no socket, or a stale one), and an error that
// matches fs.ErrPermission, naming the socket and saying to run as root,
// when the caller may not use it.
func Dial(path string) (*Client, error) {
	c, err := net.DialTimeout("unix", path, 2*time.Second)
	if errors.Is(err, fs.ErrPermission) {
		return nil, fmt.Errorf("control socket %s: %w: run as root (sudo)", path, err)
	}
	if err != nil {
		return nil, fmt.Errorf("%w (%s: %w)", ErrNoDaemon, path, err)
	}
	err = checkPeer(c, path)
	c.Close()
	if err != nil {
		return nil, err
	}
	return &Client{hc: &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			c, err := d.DialContext(ctx, "unix", path)
			if err != nil {
				return nil, err
			}
			if err := checkPeer(c, path); err != nil {
				c.Close()
				return nil, err
			}
			return c, nil
		}},
	}}, nil
}

func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://sshguard-go"+path, rd)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("daemon: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return ErrNotFound
	}
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("daemon: %s", strings.TrimSpace(string(msg)))
	}
	if out == nil {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

func (c *Client) Bans(ctx context.Context) (BanList, error) {
	var v BanList
	return v, c.do(ctx, "GET", "/v1/bans", nil, &v)
}

func (c *Client) DryRunBans(ctx context.Context) (BanList, error) {
	var v BanList
	return v, c.do(ctx, "GET", "/v1/bans/dryrun", nil, &v)
}

func (c *Client) Ban(ctx context.Context, r BanRequest) (BanInfo, error) {
	var v BanInfo
	return v, c.do(ctx, "POST", "/v1/bans", r, &v)
}

func (c *Client) BanMany(ctx context.Context, reqs []BanRequest) ([]BanResult, error) {
	var v []BanResult
	if err := c.do(ctx, "POST", "/v1/bans/batch", reqs, &v); err != nil {
		return nil, err
	}
	if len(v) != len(reqs) {
		return nil, fmt.Errorf("daemon: %d outcomes for %d bans", len(v), len(reqs))
	}
	return v, nil
}

func (c *Client) Unban(ctx context.Context, p netip.Prefix) ([]netip.Prefix, error) {
	var out []netip.Prefix
	err := c.do(ctx, "DELETE", "/v1/bans/"+p.String(), nil, &out)
	return out, err
}

func (c *Client) UnbanAll(ctx context.Context, origin string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	err := c.do(ctx, "DELETE", "/v1/bans?origin="+url.QueryEscape(origin), nil, &out)
	return out, err
}

func (c *Client) AllowAdd(ctx context.Context, r AllowRequest) (AllowResult, error) {
	var v AllowResult
	return v, c.do(ctx, "POST", "/v1/allow", r, &v)
}

func (c *Client) AllowRemove(ctx context.Context, p netip.Prefix) (AllowResult, error) {
	var v AllowResult
	return v, c.do(ctx, "DELETE", "/v1/allow/"+p.String(), nil, &v)
}

func (c *Client) AllowList(ctx context.Context) ([]AllowInfo, error) {
	var v []AllowInfo
	return v, c.do(ctx, "GET", "/v1/allow", nil, &v)
}

func (c *Client) Alerts(ctx context.Context, pending bool, limit int) ([]AlertInfo, error) {
	var v []AlertInfo
	p := "0"
	if pending {
		p = "1"
	}
	return v, c.do(ctx, "GET", "/v1/alerts?pending="+p+"&limit="+strconv.Itoa(limit), nil, &v)
}

// Fleet asks the daemon for its fleet status.
func (c *Client) Fleet(ctx context.Context) (json.RawMessage, error) {
	var v json.RawMessage
	return v, c.do(ctx, "GET", "/v1/fleet", nil, &v)
}

func (c *Client) Status(ctx context.Context) (Status, error) {
	var v Status
	return v, c.do(ctx, "GET", "/v1/status", nil, &v)
}

// MaxBatch is the most bans one BanMany call takes (its request stays
// well under the API's 1 MiB limit).
const MaxBatch = 2048

// BanAll asks b for the bans of reqs, MaxBatch at a time, and returns
// those made and the errors of the others (an allowlisted address, say).
func BanAll(ctx context.Context, b Backend, reqs []BanRequest) (banned []BanInfo, errs []error) {
	for chunk := range slices.Chunk(reqs, MaxBatch) {
		res, err := b.BanMany(ctx, chunk)
		if err != nil {
			for _, r := range chunk {
				errs = append(errs, fmt.Errorf("ban %s: %w", r.Prefix, err))
			}
			continue
		}
		for _, r := range res {
			if r.Ban == nil {
				errs = append(errs, errors.New(r.Error))
				continue
			}
			banned = append(banned, *r.Ban)
		}
	}
	return banned, errs
}

// Unbanned is what one unban lifted: Asked is the prefix asked for ("all"
// for every ban in force, or those of an origin), Lifted the bans lifted
// (the prefix's own, those inside it, or the one holding it).
type Unbanned struct {
	Asked  string         `json:"asked"`
	Lifted []netip.Prefix `json:"lifted"`
}

// Relation is how l, one of u.Lifted, stands to what was asked: "" (it
// is that prefix, or every ban was asked), "inside" (a narrower ban inside
// it) or "holds" (a wider ban holding it).
func (u Unbanned) Relation(l netip.Prefix) string {
	asked, err := netip.ParsePrefix(u.Asked)
	switch {
	case err != nil || l == asked:
		return ""
	case l.Bits() > asked.Bits():
		return "inside"
	default:
		return "holds"
	}
}

// Lift asks b to lift every ban in force (of origin, "" for any) when all
// is set, else each of ps (UnbanEach), and returns what was lifted and
// the prefixes not banned.
func Lift(ctx context.Context, b Backend, ps []netip.Prefix, all bool, origin string) ([]Unbanned, []netip.Prefix, error) {
	if !all {
		return UnbanEach(ctx, b, ps)
	}
	lifted, err := b.UnbanAll(ctx, origin)
	return []Unbanned{{Asked: "all", Lifted: lifted}}, nil, err
}

// UnbanEach asks b to lift each of ps, and returns what each lifted and
// those not banned; it stops at the first other error.
func UnbanEach(ctx context.Context, b Backend, ps []netip.Prefix) (done []Unbanned, notBanned []netip.Prefix, err error) {
	for _, p := range ps {
		switch lifted, err := b.Unban(ctx, p); {
		case errors.Is(err, ErrNotFound):
			notBanned = append(notBanned, p)
		case err != nil:
			return done, notBanned, err
		default:
			done = append(done, Unbanned{p.String(), lifted})
		}
	}
	return done, notBanned, nil
}

// SessionAddr is the client address in sshClient, the SSH_CLIENT an SSH
// session sets ("address port localport"), or the zero Addr: what
// BanRequest.Self takes.
func SessionAddr(sshClient string) netip.Addr {
	f := strings.Fields(sshClient)
	if len(f) == 0 {
		return netip.Addr{}
	}
	a, err := netip.ParseAddr(f[0])
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap().WithZone("")
}
