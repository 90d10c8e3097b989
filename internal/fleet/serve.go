package fleet

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"sshguard-go/internal/api"
)

// Handler serves the fleet dashboard at /, the fleet's summary at
// /api/v1/fleet/summary?date=, and each host's dashboard at /hosts/NAME/.
// token, when set, is asked of every request for data; the pages and
// their assets load without it.
//
// A host is trusted with its numbers, never with the browser. The fleet
// token sits in the tab's session storage on this origin, and on this
// origin /hosts/OTHER/api/v1/... carries the other hosts' credentials: a
// script of a host's running here could read and use both. So no host's
// page, script or style is ever served here: /hosts/NAME/ is this
// binary's own host dashboard (the files internal/api embeds), its assets
// and the API's documents too, and that page reads the host's data
// through /hosts/NAME/api/v1/..., the one thing asked of the host: a GET
// of one of its API's JSON endpoints (api.Endpoints), nothing else. The
// answer passes only if it is JSON (see hostAnswer) and goes out as
// application/json, nosniff, under a sandboxing CSP: no browser runs it,
// and were it opened as a page it would have no origin, no storage. The
// dashboard writes the host's strings with textContent, never as HTML.
func (f *Fleet) Handler(token string) http.Handler {
	mux := http.NewServeMux()
	auth := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if api.Authorized(w, r, token) {
				h.ServeHTTP(w, r)
			}
		})
	}
	mux.Handle("GET /api/v1/fleet/summary", sandboxed(auth(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		date := r.URL.Query().Get("date")
		if date == "" {
			date = time.Now().Format(time.DateOnly)
		}
		s, err := f.Summary(r.Context(), date)
		if err != nil {
			api.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		api.WriteJSON(w, http.StatusOK, s)
	}))))

	// What the aggregator knows of a host without asking it: its line of
	// today's view, its last days and top addresses (with --nats, its last
	// summary in the bucket, also when it is down).
	mux.Handle("GET /api/v1/fleet/hosts/{name}", sandboxed(auth(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hp, err := f.Host(r.Context(), r.PathValue("name"))
		switch {
		case err != nil:
			api.WriteJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
		case hp == nil:
			api.WriteJSON(w, http.StatusNotFound, map[string]string{"error": "no host " + r.PathValue("name") + " in the fleet"})
		default:
			api.WriteJSON(w, http.StatusOK, hp)
		}
	}))))
	// A host's page when its dashboard cannot be shown: the host is down, or
	// the view is the bucket's and its API is not known. The page is the
	// aggregator's and reads /api/v1/fleet/hosts/NAME. With --nats it is
	// served for any name (which hosts exist is told only with the token).
	_, bucket := f.src.(*KVSource)
	status := func(w http.ResponseWriter, r *http.Request) {
		if !bucket && f.src.API(r.PathValue("name")) == nil || !validName(r.PathValue("name")) {
			http.NotFound(w, r)
			return
		}
		api.Page("fleethost.html")(w, r)
	}
	mux.HandleFunc("GET /hosts/{name}/status", status)
	mux.HandleFunc("GET /hosts/{name}/{$}", func(w http.ResponseWriter, r *http.Request) {
		if f.src.API(r.PathValue("name")) != nil {
			api.Page("index.html")(w, r)
			return
		}
		status(w, r)
	})

	// A host's pages: the aggregator's own files, for a host it can ask.
	known := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if f.src.API(r.PathValue("name")) == nil {
				http.NotFound(w, r)
				return
			}
			h.ServeHTTP(w, r)
		})
	}
	mux.Handle("GET /hosts/{name}/assets/{file...}", known(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r2 := *r
		r2.URL = &url.URL{Path: "/" + r.PathValue("file")}
		api.Assets().ServeHTTP(w, &r2)
	})))
	mux.Handle("GET /hosts/{name}/api/docs", known(api.Docs()))
	mux.Handle("GET /hosts/{name}/api/v1/openapi.json", known(api.OpenAPI()))
	// A host's data: its API's JSON, and only that.
	for _, rt := range api.Endpoints() {
		h := f.hostJSON(rt.Path)
		if rt.Access == api.Private && token == "" {
			// Without a token of its own the aggregator would hand every
			// host's logins, sessions and commands to anyone on its
			// machine: only the counts pass.
			h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if f.src.API(r.PathValue("name")) == nil {
					writeJSON(w, http.StatusNotFound, errorBody("no host "+r.PathValue("name")))
					return
				}
				writeJSON(w, http.StatusForbidden, errorBody("fleet serve runs without --token-file: a host's bans, logins, events and sessions are not shown here"))
			})
		}
		mux.Handle("GET /hosts/{name}"+rt.Path, sandboxed(auth(h)))
	}
	// Anything else under a host is nothing: never asked of the host.
	mux.HandleFunc("GET /hosts/{name}/", http.NotFound)
	mux.HandleFunc("GET /hosts/{name}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, r.URL.Path+"/", http.StatusMovedPermanently)
	})
	mux.Handle("GET /assets/", http.StripPrefix("/assets/", api.Assets()))
	mux.HandleFunc("GET /{$}", api.Page("fleet.html"))
	return api.Secure(mux)
}

// HostPage is what the aggregator knows of one host without asking it.
type HostPage struct {
	HostDay
	Source string          `json:"source"` // "nats": the summaries' bucket; "hosts": hosts.toml
	Live   bool            `json:"live"`   // its own dashboard is served at /hosts/NAME/ (its API known)
	Days   []api.Day       `json:"days"`   // its last days, as it last told them
	Top    []api.AddrCount `json:"top_addresses"`
}

// Host is the named host's page from today's view (cached as the fleet
// page's), or nil when the fleet has no such host.
func (f *Fleet) Host(ctx context.Context, name string) (*HostPage, error) {
	s, err := f.Summary(ctx, f.now().Format(time.DateOnly))
	if err != nil {
		return nil, err
	}
	for _, h := range s.Hosts {
		if h.Name != name {
			continue
		}
		hp := &HostPage{HostDay: h, Source: "hosts", Live: f.src.API(name) != nil, Days: h.days, Top: h.top}
		if _, ok := f.src.(*KVSource); ok {
			hp.Source = "nats"
		}
		if hp.Days == nil {
			hp.Days = []api.Day{}
		}
		if hp.Top == nil {
			hp.Top = []api.AddrCount{}
		}
		return hp, nil
	}
	return nil, nil
}

// sandboxCSP is the policy of the answers that carry a host's data: were
// one opened as a page, it would run nothing, load nothing and have an
// opaque origin (no storage, no cookies, no same-origin requests).
const sandboxCSP = "sandbox; default-src 'none'; frame-ancestors 'none'"

// sandboxed sets the headers of a JSON answer that holds a host's data
// before h answers, its errors included.
func sandboxed(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", sandboxCSP)
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Cache-Control", "no-store")
		h.ServeHTTP(w, r)
	})
}

// hostJSON asks the named host for the API endpoint pattern (its
// wildcards filled from the request's, the query passed as is) and
// answers with what hostAnswer lets through, or a 502 naming the host.
// No header of the browser's goes to the host, none of the host's comes
// back: the answer's headers are the aggregator's.
func (f *Fleet) hostJSON(pattern string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		h := f.src.API(name)
		if h == nil {
			writeJSON(w, http.StatusNotFound, errorBody("no host "+name))
			return
		}
		path := fill(pattern, r)
		if r.URL.RawQuery != "" {
			path += "?" + r.URL.RawQuery
		}
		a, err := h.Ask(r.Context(), path)
		if err == nil {
			err = hostAnswer(a)
		}
		if err != nil {
			writeJSON(w, http.StatusBadGateway, errorBody("host "+name+": "+err.Error()))
			return
		}
		writeJSON(w, a.Status, a.Body)
	})
}

// hostAnswer is nil when a host's answer may go to the browser: JSON
// (said and checked), not a redirect, not its refusal of the
// aggregator's own credentials (which the browser would take for a
// refusal of its token).
func hostAnswer(a *Answer) error {
	switch {
	case a.Status < 200 || a.Status >= 300 && a.Status < 400:
		return fmt.Errorf("it answered %d %s, not the API's JSON (a redirect is not followed)", a.Status, http.StatusText(a.Status))
	case a.Status == http.StatusUnauthorized || a.Status == http.StatusForbidden:
		return fmt.Errorf("it refused the aggregator's credentials (%d %s)", a.Status, http.StatusText(a.Status))
	case a.Type != "application/json":
		return fmt.Errorf("its answer is %q, not JSON", a.Type)
	case !json.Valid(a.Body):
		return fmt.Errorf("its answer is not JSON")
	}
	return nil
}

// fill is pattern (e.g. "/api/v1/days/{date}") with each wildcard the
// request's value, escaped: the host is asked that endpoint, no other.
func fill(pattern string, r *http.Request) string {
	parts := strings.Split(pattern, "/")
	for i, p := range parts {
		if strings.HasPrefix(p, "{") && strings.HasSuffix(p, "}") {
			parts[i] = url.PathEscape(r.PathValue(strings.Trim(p, "{}.")))
		}
	}
	return strings.Join(parts, "/")
}

func errorBody(msg string) []byte {
	b, _ := json.Marshal(map[string]string{"error": msg})
	return append(b, '\n')
}

// writeJSON writes body, JSON, with code; sandboxed has set the rest.
func writeJSON(w http.ResponseWriter, code int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(code)
	w.Write(body)
}
