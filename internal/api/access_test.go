package api

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"sshguard-go/internal/testkit"
)

// access is who may read each route, decided here apart from the route
// table: a route added to the table without a decision here fails
// TestAccess.
var access = map[string]Access{
	"/api/v1/summary":      Counts,
	"/api/v1/days/{date}":  Counts,
	"/api/v1/bans":         Private,
	"/api/v1/logins":       Private,
	"/api/v1/events":       Private,
	"/api/v1/sessions":     Private,
	"/api/v1/openapi.json": Static,
	"/api/docs":            Static,
	"/assets/":             Static,
	"/{$}":                 Static,
}

// examplePath is a URL path that route pattern p serves.
func examplePath(p string) string {
	switch p {
	case "/assets/":
		return "/assets/app.js"
	case "/{$}":
		return "/"
	}
	return strings.ReplaceAll(p, "{date}", "2026-11-28")
}

// TestAccess: every route Handler serves is classified (here and in the
// table alike), and answers by its class: a static one to anyone; the
// counts without credentials only on a connection to loopback of a
// server with OpenCounts; the private ones (and the counts elsewhere)
// only with the token or a verified client certificate. A 401 carries
// no data.
func TestAccess(t *testing.T) {
	served := map[string]bool{}
	for _, rt := range Routes() {
		served[rt.Path] = true
		want, ok := access[rt.Path]
		switch {
		case !ok:
			t.Errorf("route %s (%v) is not classified in this test: decide who may read it", rt.Path, rt.Access)
		case want != rt.Access:
			t.Errorf("route %s is %v, want %v", rt.Path, rt.Access, want)
		}
	}
	for p := range access {
		if !served[p] {
			t.Errorf("%s is classified here but not served", p)
		}
	}

	// expect checks every route through do, which GETs a path and returns
	// the status and body: open says whether the counts are open to that
	// request, creds whether it carries valid credentials.
	expect := func(t *testing.T, do func(path string) (int, string), open, creds bool) {
		t.Helper()
		for _, rt := range Routes() {
			want := 200
			switch {
			case rt.Access == Static, creds:
			case rt.Access == Counts && open:
			default:
				want = 401
			}
			code, body := do(examplePath(rt.Path))
			if code != want {
				t.Errorf("GET %s (%v): %d, want %d: %.200s", rt.Path, rt.Access, code, want, body)
			}
			if code == 401 && (strings.Contains(body, "alice") || strings.Contains(body, "198.51.100") || strings.Contains(body, "203.0.113")) {
				t.Errorf("GET %s: a 401 with data: %s", rt.Path, body)
			}
		}
	}
	over := func(c *http.Client, base, token string) func(string) (int, string) {
		return func(path string) (int, string) {
			req, _ := http.NewRequest("GET", base+path, nil)
			if token != "" {
				req.Header.Set("Authorization", token)
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatalf("GET %s: %v", path, err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(b)
		}
	}

	t.Run("loopback", func(t *testing.T) {
		ts := server(t)
		c := http.DefaultClient
		expect(t, over(c, ts.URL, ""), true, false)
		expect(t, over(c, ts.URL, "Bearer wrong-token-0123456789abcdef"), true, false)
		expect(t, over(c, ts.URL, "Bearer "+testToken[:len(testToken)-1]), true, false)
		expect(t, over(c, ts.URL, "Basic "+testToken), true, false)
		expect(t, over(c, ts.URL, "Bearer "+testToken), true, true)
	})
	t.Run("counts closed", func(t *testing.T) { // as off loopback
		s := testServer(t)
		s.OpenCounts = false
		ts := httptest.NewServer(s.Handler())
		defer ts.Close()
		expect(t, over(http.DefaultClient, ts.URL, ""), false, false)
		expect(t, over(http.DefaultClient, ts.URL, "Bearer "+testToken), false, true)
	})
	t.Run("no token set", func(t *testing.T) { // nothing opens the private routes
		s := testServer(t)
		s.Token = ""
		ts := httptest.NewServer(s.Handler())
		defer ts.Close()
		expect(t, over(http.DefaultClient, ts.URL, ""), true, false)
		expect(t, over(http.DefaultClient, ts.URL, "Bearer "), true, false)
		expect(t, over(http.DefaultClient, ts.URL, "Bearer "+testToken), true, false)
	})
	t.Run("to another address", func(t *testing.T) {
		// OpenCounts, but the connection came to an address that is not
		// loopback (a listener on every address): the counts are closed.
		h := testServer(t).Handler()
		for _, local := range []string{"192.0.2.1:9612", "[2001:db8::1]:9612", "127.0.0.1:9612"} {
			la, _ := net.ResolveTCPAddr("tcp", local)
			do := func(token string) func(string) (int, string) {
				return func(path string) (int, string) {
					req := httptest.NewRequestWithContext(context.WithValue(context.Background(), http.LocalAddrContextKey, la), "GET", path, nil)
					if token != "" {
						req.Header.Set("Authorization", "Bearer "+token)
					}
					w := httptest.NewRecorder()
					h.ServeHTTP(w, req)
					return w.Code, w.Body.String()
				}
			}
			expect(t, do(""), local == "127.0.0.1:9612", false)
			expect(t, do(testToken), true, true)
		}
	})
	t.Run("client certificates", func(t *testing.T) {
		dir := t.TempDir()
		ca, other := testkit.NewCA(t, "test CA"), testkit.NewCA(t, "another CA")
		good, bad := ca.Issue(t, "admin", dir, "good"), other.Issue(t, "admin", dir, "bad")
		pem, _ := os.ReadFile(ca.File)
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		start := func(auth tls.ClientAuthType) *httptest.Server {
			s := testServer(t)
			s.Token, s.OpenCounts = "", false
			ts := httptest.NewUnstartedServer(s.Handler())
			ts.TLS = &tls.Config{ClientCAs: pool, ClientAuth: auth}
			ts.StartTLS()
			t.Cleanup(ts.Close)
			return ts
		}
		// client trusts ts and shows p (nil: no certificate), on
		// connections of its own.
		client := func(ts *httptest.Server, p *testkit.Pair) *http.Client {
			tc := ts.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
			if p != nil {
				cert, err := tls.LoadX509KeyPair(p.Cert, p.Key)
				if err != nil {
					t.Fatal(err)
				}
				tc.Certificates = []tls.Certificate{cert}
			}
			return &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}
		}
		verified := start(tls.VerifyClientCertIfGiven)
		expect(t, over(client(verified, good), verified.URL, ""), false, true)
		expect(t, over(client(verified, nil), verified.URL, ""), false, false)
		// A certificate shown but not verified (another CA, a server that
		// only asks for one) opens nothing.
		unverified := start(tls.RequestClientCert)
		expect(t, over(client(unverified, bad), unverified.URL, ""), false, false)
		expect(t, over(client(unverified, good), unverified.URL, ""), false, false)
	})
}
