package fleet

import (
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"

	"sshguard-go/internal/api"
)

// Handler serves the fleet dashboard at /, the fleet's summary at
// /api/v1/fleet/summary?date=, and each host's own dashboard and API at
// /hosts/NAME/ (proxied with the host's credentials: the browser needs
// no access to the hosts). token, when set, is asked of every request but
// the static pages.
func (f *Fleet) Handler(token string) http.Handler {
	mux := http.NewServeMux()
	auth := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if api.Authorized(w, r, token) {
				h.ServeHTTP(w, r)
			}
		})
	}
	mux.Handle("GET /api/v1/fleet/summary", auth(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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
	})))
	mux.Handle("GET /hosts/{name}/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		rest := strings.TrimPrefix(r.URL.Path, "/hosts/"+name)
		p := f.src.Proxy(name, rest)
		if p == nil {
			http.NotFound(w, r)
			return
		}
		// The host's pages and assets carry no data: only its API asks
		// for the aggregator's token.
		if strings.HasPrefix(rest, "/api/v1/") && rest != "/api/v1/openapi.json" {
			auth(p).ServeHTTP(w, r)
			return
		}
		p.ServeHTTP(w, r)
	}))
	mux.HandleFunc("GET /hosts/{name}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, r.URL.Path+"/", http.StatusMovedPermanently)
	})
	mux.Handle("GET /assets/", http.StripPrefix("/assets/", api.Assets()))
	mux.HandleFunc("GET /{$}", api.Page("fleet.html"))
	return api.Secure(mux)
}

// proxy forwards a GET to path on the host, with the host's credentials
// in place of the browser's.
func (c *client) proxy(path string) http.Handler {
	target, _ := url.Parse(c.base)
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme, pr.Out.URL.Host = target.Scheme, target.Host
			pr.Out.URL.Path, pr.Out.URL.RawPath = strings.TrimSuffix(target.Path, "/")+path, ""
			pr.Out.Host = target.Host
			pr.Out.Header.Del("Authorization")
			pr.Out.Header.Del("Cookie")
			if c.token != "" {
				pr.Out.Header.Set("Authorization", "Bearer "+c.token)
			}
		},
		Transport: c.http.Transport,
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			api.WriteJSON(w, http.StatusBadGateway, map[string]string{"error": "host " + c.Name + ": " + err.Error()})
		},
	}
}
