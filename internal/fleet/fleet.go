package fleet

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/sync/singleflight"

	"sshguard-go/internal/api"
	"sshguard-go/internal/httpserve"
	"sshguard-go/internal/share"
)

// Days is how many days, up to the date asked, the fleet's chart shows.
const Days = share.SummaryDays

// maxAnswer bounds what one host's answer may weigh.
const maxAnswer = 4 << 20

// HostDay is one host's answer for a date.
type HostDay struct {
	Name    string    `json:"name"`
	OK      bool      `json:"ok"`
	Error   string    `json:"error"`
	Day     *api.Day  `json:"day"`              // null when the host did not answer
	MS      int64     `json:"latency_ms"`       // how long it took
	Updated time.Time `json:"updated,omitzero"` // its last summary the aggregator has (absent: none yet)
	days    []api.Day
	top     []api.AddrCount // its top addresses of the last days, checked (see cleanTop)
}

// Summary is the fleet's answer for a date.
type Summary struct {
	Date     string    `json:"date"`
	Hosts    []HostDay `json:"hosts"`
	Total    api.Day   `json:"total"` // over the hosts that answered
	Answered int       `json:"answered"`
	Failed   int       `json:"failed"`
	Days     []api.Day `json:"days"` // the fleet's last days up to date, summed over the hosts that answered
	// Attackers are the addresses in the most hosts' top addresses (the
	// hosts that answered, their last days), at most MaxAttackers.
	Attackers []Attacker `json:"attackers"`
}

// Attacker is one address of the fleet's top attackers.
type Attacker struct {
	IP       string   `json:"ip"`
	Hosts    int      `json:"hosts"`     // the hosts that list it among their top addresses
	Failed   int64    `json:"failed"`    // summed over those hosts
	Probes   int64    `json:"probes"`    // likewise
	Banned   int      `json:"banned"`    // the hosts where it is banned
	BannedOn []string `json:"banned_on"` // their names, sorted, at most maxBannedOn
	addr     netip.Addr
}

// Bounds of the fleet's top attackers.
const (
	MaxAttackers  = 25      // addresses listed
	maxTopPerHost = 20      // a host's top addresses taken (the API gives 20)
	maxBannedOn   = 20      // host names listed per address
	maxCount      = 1 << 40 // a host's count above this is taken as this
)

// Source is where the fleet view's numbers come from: the hosts' own
// APIs (hosts.toml, *Hosts) or the summaries' bucket (*KVSource).
type Source interface {
	// Summary is the fleet's day: every host, with what it said or why
	// it said nothing.
	Summary(ctx context.Context, day time.Time) *Summary
	// API is the named host's API, or nil when the source has no such
	// host to ask (the aggregator then answers 404 for /hosts/NAME/).
	API(name string) HostAPI
}

// HostAPI asks one host's API, with the host's credentials.
type HostAPI interface {
	// Ask GETs path (with its query, e.g. "/api/v1/bans?limit=100") and
	// returns what the host answered, whatever it is: a redirect is not
	// followed, a body over maxAnswer is an error. Judging the answer is
	// the caller's (see Handler).
	Ask(ctx context.Context, path string) (*Answer, error)
}

// Answer is a host's answer to one request.
type Answer struct {
	Status int
	Type   string // the media type of its Content-Type, e.g. "application/json"
	Body   []byte // at most maxAnswer bytes
}

// Fleet is the fleet view over a Source, its answers cached and one fetch
// per date at a time. It is safe for concurrent use.
type Fleet struct {
	src Source
	ttl time.Duration
	now func() time.Time

	group  singleflight.Group // one fetch per date at a time
	mu     sync.Mutex
	cache  map[string]cached
	lastOK map[string]time.Time // each host's last answer (hosts.toml: the hosts are not asked between)
}

// Hosts asks the hosts of a hosts.toml. It is safe for concurrent use.
type Hosts struct {
	clients []*client
	byName  map[string]*client
	timeout time.Duration
	sem     chan struct{} // bounds the requests in flight
}

type cached struct {
	s  *Summary
	at time.Time
}

// New makes the aggregator of f.
func New(f *File) (*Fleet, error) {
	h := &Hosts{byName: map[string]*client{}, timeout: time.Duration(f.Timeout), sem: make(chan struct{}, f.Concurrency)}
	for _, host := range f.Hosts {
		c, err := newClient(host, h.timeout)
		if err != nil {
			return nil, err
		}
		h.clients = append(h.clients, c)
		h.byName[host.Name] = c
	}
	return NewView(h, time.Duration(f.Cache)), nil
}

// NewView makes the fleet view of src, its answers reused for ttl.
func NewView(src Source, ttl time.Duration) *Fleet {
	return &Fleet{src: src, ttl: ttl, now: time.Now, cache: map[string]cached{}, lastOK: map[string]time.Time{}}
}

// remember dates each host's answer in s: when it answered, the time of
// its summary (now, unless the source said); when it did not, its last
// answer seen. The memory holds s's hosts only. f.mu is held.
func (f *Fleet) remember(s *Summary) {
	last := make(map[string]time.Time, len(s.Hosts))
	for i := range s.Hosts {
		h := &s.Hosts[i]
		if h.OK && h.Updated.IsZero() {
			h.Updated = f.now()
		}
		if h.Updated.IsZero() {
			h.Updated = f.lastOK[h.Name]
		}
		if h.OK || !h.Updated.IsZero() {
			last[h.Name] = h.Updated
		}
	}
	f.lastOK = last
}

// Limits are fleet serve's. Its clients are the fleet dashboard's
// viewers and scripts; its longest answer is the fleet's summary, which
// waits for every host: with hosts.toml, as long as every round of
// "concurrency" hosts taking its whole timeout (1,000 hosts that all hang,
// at the defaults of 32 and 5 s: 160 s), so the answer may take that and
// 30 s more, a minute at least. 128 connections; 16 requests worked on at
// once (each may hold a host's answer of up to 4 MiB) with 5 s to wait; a
// 256 KiB send buffer.
func (f *Fleet) Limits() httpserve.Limits {
	write := time.Minute
	if s, ok := f.src.(interface{ Longest() time.Duration }); ok {
		write = max(write, s.Longest()+30*time.Second)
	}
	return httpserve.Limits{ReadHeader: 5 * time.Second, Read: 10 * time.Second, Write: write, Idle: time.Minute,
		MaxHeaderBytes: 16 << 10, MaxConns: 128, MaxRequests: 16, Queue: 5 * time.Second, SendBuffer: 256 << 10, Grace: 5 * time.Second}
}

// Longest is the longest Summary may take: every round of cap(h.sem)
// hosts taking its whole timeout.
func (h *Hosts) Longest() time.Duration {
	rounds := (len(h.clients) + cap(h.sem) - 1) / cap(h.sem)
	return time.Duration(rounds) * h.timeout
}

// Summary is the fleet's day date (YYYY-MM-DD), from the cache when it is
// younger than the cache setting.
func (f *Fleet) Summary(ctx context.Context, date string) (*Summary, error) {
	day, err := time.Parse(time.DateOnly, date)
	if err != nil {
		return nil, fmt.Errorf("date %q: want YYYY-MM-DD", date)
	}
	f.mu.Lock()
	c, ok := f.cache[date]
	f.mu.Unlock()
	if ok && f.now().Sub(c.at) < f.ttl {
		return c.s, nil
	}
	v, err, _ := f.group.Do(date, func() (any, error) {
		s := f.src.Summary(context.WithoutCancel(ctx), day)
		f.mu.Lock()
		defer f.mu.Unlock()
		f.remember(s)
		for k, c := range f.cache { // keep the cache small: drop the stale
			if f.now().Sub(c.at) >= f.ttl {
				delete(f.cache, k)
			}
		}
		if len(f.cache) < 64 {
			f.cache[date] = cached{s, f.now()}
		}
		return s, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*Summary), nil
}

// Summary asks every host, at most cap(h.sem) at once.
func (h *Hosts) Summary(ctx context.Context, day time.Time) *Summary {
	date := day.Format(time.DateOnly)
	s := &Summary{Date: date, Hosts: make([]HostDay, len(h.clients))}
	q := url.Values{"from": {day.AddDate(0, 0, -(Days - 1)).Format(time.DateOnly)}, "to": {date}}.Encode()
	var wg sync.WaitGroup
	for i, c := range h.clients {
		wg.Add(1)
		h.sem <- struct{}{}
		go func() {
			defer func() { <-h.sem; wg.Done() }()
			s.Hosts[i] = ask(ctx, c, q, date)
		}()
	}
	wg.Wait()
	total(s, day)
	return s
}

// API is the named host's, or nil.
func (h *Hosts) API(name string) HostAPI {
	c := h.byName[name]
	if c == nil {
		return nil // not a nil *client in a non-nil HostAPI
	}
	return c
}

// total sums the hosts that answered into s's total and days.
func total(s *Summary, day time.Time) {
	for d := day.AddDate(0, 0, -(Days - 1)); !d.After(day); d = d.AddDate(0, 0, 1) {
		s.Days = append(s.Days, api.Day{Date: d.Format(time.DateOnly)})
	}
	for _, h := range s.Hosts {
		if !h.OK {
			s.Failed++
			continue
		}
		s.Answered++
		s.Total.Add(*h.Day)
		for _, d := range h.days {
			for i := range s.Days {
				if s.Days[i].Date == d.Date {
					s.Days[i].Add(d)
				}
			}
		}
	}
	s.Total.Date = s.Date
	s.Attackers = attackers(s.Hosts)
}

// attackers are the addresses in the most top lists of the hosts that
// answered, then the most attempts.
func attackers(hosts []HostDay) []Attacker {
	by := map[string]*Attacker{}
	for _, h := range hosts {
		if !h.OK {
			continue
		}
		for _, a := range h.top {
			at := by[a.IP]
			if at == nil {
				ip, _ := netip.ParseAddr(a.IP) // cleanTop checked it
				at = &Attacker{IP: a.IP, BannedOn: []string{}, addr: ip}
				by[a.IP] = at
			}
			at.Hosts++
			at.Failed += a.Failed
			at.Probes += a.Probes
			if a.Banned {
				at.Banned++
				if len(at.BannedOn) < maxBannedOn {
					at.BannedOn = append(at.BannedOn, h.Name)
				}
			}
		}
	}
	all := make([]*Attacker, 0, len(by))
	for _, a := range by {
		all = append(all, a)
	}
	slices.SortFunc(all, func(a, b *Attacker) int {
		if c := cmp.Compare(b.Hosts, a.Hosts); c != 0 {
			return c
		}
		if c := cmp.Compare(b.Failed+b.Probes, a.Failed+a.Probes); c != 0 {
			return c
		}
		return a.addr.Compare(b.addr)
	})
	out := make([]Attacker, 0, min(len(all), MaxAttackers))
	for _, a := range all[:min(len(all), MaxAttackers)] {
		slices.Sort(a.BannedOn)
		out = append(out, *a)
	}
	return out
}

// maxDays bounds the days kept of a host's summary (it gives 14).
const maxDays = 31

// cleanDays is a host's days as the fleet takes them: at most maxDays,
// each a valid date given once (a date repeated is taken the first time,
// or the chart would count it as often as the host repeats it), its
// counts in [0, maxCount], without hours.
func cleanDays(days []api.Day) []api.Day {
	out := make([]api.Day, 0, min(len(days), maxDays))
	clamp := func(n int64) int64 { return min(max(n, 0), maxCount) }
	for _, d := range days {
		if len(out) == maxDays {
			break
		}
		if _, err := time.Parse(time.DateOnly, d.Date); err != nil {
			continue
		}
		if slices.ContainsFunc(out, func(o api.Day) bool { return o.Date == d.Date }) {
			continue
		}
		out = append(out, api.Day{Date: d.Date, Failed: clamp(d.Failed), Probes: clamp(d.Probes), Connections: clamp(d.Connections),
			Logins: clamp(d.Logins), Bans: clamp(d.Bans), Addresses: clamp(d.Addresses)})
	}
	return out
}

// cleanTop is a host's top addresses as the fleet takes them: at most
// maxTopPerHost, each a valid address (written the canonical way) listed
// once, its counts in [0, maxCount]. What a host says is not trusted.
func cleanTop(top []api.AddrCount) []api.AddrCount {
	out := make([]api.AddrCount, 0, min(len(top), maxTopPerHost))
	clamp := func(n int64) int64 { return min(max(n, 0), maxCount) }
	seen := map[netip.Addr]bool{}
	for _, a := range top {
		if len(out) == maxTopPerHost {
			break
		}
		ip, err := netip.ParseAddr(a.IP)
		ip = ip.Unmap().WithZone("")
		if err != nil || len(a.IP) > 64 || seen[ip] {
			continue
		}
		seen[ip] = true
		out = append(out, api.AddrCount{IP: ip.String(), Failed: clamp(a.Failed), Probes: clamp(a.Probes), Banned: a.Banned})
	}
	return out
}

// MaxCount is the largest number a host's day may hold: 2^40, a thousand
// billion attempts a day; more is a broken or lying host, whose numbers
// would make the fleet's total overflow.
const MaxCount = 1 << 40

// checkDays returns an error, "bad answer: ...", when a number of days
// (or of their hours) is negative or over MaxCount: such a host's numbers
// are not summed.
func checkDays(days []api.Day) error {
	check := func(d *api.Day) error {
		for _, f := range []struct {
			name string
			v    int64
		}{{"failed", d.Failed}, {"probes", d.Probes}, {"connections", d.Connections}, {"logins", d.Logins}, {"bans", d.Bans}, {"addresses", d.Addresses}} {
			if f.v < 0 || f.v >= MaxCount {
				when := cmp.Or(d.Date, d.Hour)
				if len(when) > 40 {
					when = when[:40]
				}
				return fmt.Errorf("bad answer: %q: %s = %d, not within 0 to 2^40", when, f.name, f.v)
			}
		}
		return nil
	}
	for i := range days {
		if err := check(&days[i]); err != nil {
			return err
		}
		for k := range days[i].Hours {
			if err := check(&days[i].Hours[k]); err != nil {
				return err
			}
		}
	}
	return nil
}

// ask gets one host's summary of the days up to date.
func ask(ctx context.Context, c *client, query, date string) HostDay {
	start := time.Now()
	hd := HostDay{Name: c.Name}
	var sum api.Summary
	err := c.get(ctx, "/api/v1/summary?"+query, &sum)
	hd.MS = time.Since(start).Milliseconds()
	if err == nil {
		// Its numbers are judged as it sent them, then kept bounded.
		berr := checkDays(sum.Days)
		sum.Days = cleanDays(sum.Days)
		for _, d := range sum.Days {
			if d.Date == date {
				hd.Day = &d
			}
		}
		if hd.Day == nil {
			err = fmt.Errorf("its answer has no day %s", date)
		} else if berr != nil {
			err = berr
		}
	}
	if err != nil {
		hd.Error, hd.Day = err.Error(), nil
		return hd
	}
	hd.OK, hd.days, hd.top = true, sum.Days, cleanTop(sum.TopAddresses)
	return hd
}

// maxHostText bounds the text of a host's own error that the fleet keeps:
// it is cached and sent again in every summary and on the dashboard.
const maxHostText = 256

// hostText is a host's error text as the fleet keeps it: at most
// maxHostText bytes, cut at a character (text output escapes it when
// printed, as every host's text).
func hostText(s string) string {
	if len(s) > maxHostText {
		cut := maxHostText
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + fmt.Sprintf("... (%d bytes in all)", len(s))
	}
	return s
}

// get reads path of the host's API into v.
func (c *client) get(ctx context.Context, path string, v any) error {
	a, err := c.Ask(ctx, path)
	if err != nil {
		return err
	}
	if a.Status != http.StatusOK {
		var e struct{ Error string }
		json.Unmarshal(a.Body, &e)
		if e.Error != "" {
			return fmt.Errorf("%d %s: %s", a.Status, http.StatusText(a.Status), hostText(e.Error))
		}
		return fmt.Errorf("%d %s", a.Status, http.StatusText(a.Status))
	}
	if err := json.Unmarshal(a.Body, v); err != nil {
		return fmt.Errorf("its answer is not the API's JSON: %v", err)
	}
	return nil
}

// Ask GETs path of the host's API with its token; no header of the
// browser's is passed on.
func (c *client) Ask(ctx context.Context, path string) (*Answer, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", c.base+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is the host's, already named
		}
		if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
			return nil, fmt.Errorf("no answer within %v", c.http.Timeout)
		}
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	if err != nil {
		if isTimeout(err) {
			return nil, fmt.Errorf("no answer within %v", c.http.Timeout)
		}
		return nil, fmt.Errorf("its answer broke off: %v", err)
	}
	if len(body) > maxAnswer {
		return nil, fmt.Errorf("its answer is over %d MiB", maxAnswer>>20)
	}
	a := &Answer{Status: resp.StatusCode, Body: body}
	a.Type, _, _ = mime.ParseMediaType(resp.Header.Get("Content-Type"))
	return a, nil
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}
