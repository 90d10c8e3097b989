package api

import (
	"bytes"
	"embed"
	"encoding/json"
	"html/template"
	"io/fs"
	"net/http"
	"slices"
	"strings"
)

// The dashboards' files. uPlot (MIT, see web/uPlot.LICENSE) is the npm
// package uplot 1.6.32, its dist files as published.
//
//go:embed web
var web embed.FS

// Assets serves the files of the dashboards.
func Assets() http.Handler {
	sub, _ := fs.Sub(web, "web")
	return http.FileServerFS(sub)
}

// Page serves one page of the dashboards.
func Page(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		b, err := web.ReadFile("web/" + name)
		if err != nil {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(b)
	}
}

//go:embed openapi.json
var openapi []byte

func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write(openapi)
}

// OpenAPI serves the API's OpenAPI document, as embedded in this binary.
func OpenAPI() http.HandlerFunc { return serveOpenAPI }

// Docs serves the API's documentation page, as embedded in this binary.
// Its links are relative: it works under any prefix that also serves
// assets/ and v1/openapi.json beside it (the fleet aggregator's
// /hosts/NAME/).
func Docs() http.HandlerFunc { return serveDocs }

// Endpoints are the patterns of the API's JSON endpoints, all GET (e.g.
// "/api/v1/days/{date}"), sorted: the paths the fleet aggregator may ask
// a host for.
func Endpoints() []Route {
	var out []Route
	for _, rt := range new(Server).routes() {
		if rt.data != nil {
			out = append(out, rt.Route)
		}
	}
	slices.SortFunc(out, func(a, b Route) int { return strings.Compare(a.Path, b.Path) })
	return out
}

// The parts of the OpenAPI document the docs page shows.
type apiDoc struct {
	Info  struct{ Title, Version, Description string }
	Paths map[string]map[string]struct {
		Summary, Description string
		Security             []map[string][]string
		Parameters           []struct {
			Name, In, Description string
			Required              bool
			Schema                struct{ Type, Format string }
		}
		Responses map[string]struct {
			Description string
			Content     map[string]struct {
				Schema struct {
					Ref string `json:"$ref"`
				}
			}
		}
	}
	Components struct {
		Schemas map[string]struct {
			Description string
			Properties  map[string]struct {
				Type        any
				Description string
				Ref         string `json:"$ref"`
				Items       struct {
					Ref string `json:"$ref"`
				}
			}
		}
	}
}

var docsPage = template.Must(template.New("docs").Funcs(template.FuncMap{
	"short": func(ref string) string { return ref[strings.LastIndexByte(ref, '/')+1:] },
	// open: an empty requirement among the alternatives (no credentials
	// on loopback).
	"open": func(sec []map[string][]string) bool {
		return slices.ContainsFunc(sec, func(m map[string][]string) bool { return len(m) == 0 })
	},
}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Info.Title}}</title><link rel="stylesheet" href="../assets/style.css"></head>
<body class="docs"><header><h1>{{.Info.Title}} <small>{{.Info.Version}}</small></h1></header><main>
<p>{{.Info.Description}}</p><p>The machine-readable document: <a href="v1/openapi.json">/api/v1/openapi.json</a> (OpenAPI 3.1).</p>
{{range $path, $ops := .Paths}}{{range $method, $op := $ops}}<section class="card"><h2><code>{{$method}} {{$path}}</code></h2>
<p>{{$op.Summary}}. {{$op.Description}}</p>
{{if $op.Security}}<p><b>Credentials</b>: {{if open $op.Security}}none when the API listens on loopback; elsewhere the bearer token or a client certificate{{else}}the bearer token or a client certificate, wherever the API listens{{end}}.</p>{{end}}
{{if $op.Parameters}}<table><tr><th>Parameter</th><th>In</th><th>Type</th><th></th></tr>
{{range $op.Parameters}}<tr><td><code>{{.Name}}</code>{{if .Required}} (required){{end}}</td><td>{{.In}}</td><td>{{.Schema.Type}} {{.Schema.Format}}</td><td>{{.Description}}</td></tr>{{end}}</table>{{end}}
{{range $code, $r := $op.Responses}}<p><b>{{$code}}</b>: {{$r.Description}}{{range $r.Content}}{{if .Schema.Ref}} (<a href="#{{short .Schema.Ref}}">{{short .Schema.Ref}}</a>){{end}}{{end}}</p>{{end}}
</section>{{end}}{{end}}
<h2>Objects</h2>
{{range $name, $s := .Components.Schemas}}<section class="card" id="{{$name}}"><h3>{{$name}}</h3><p>{{$s.Description}}</p>
<table><tr><th>Field</th><th>Type</th><th></th></tr>{{range $f, $p := $s.Properties}}<tr><td><code>{{$f}}</code></td><td>{{if $p.Ref}}{{short $p.Ref}}{{else if $p.Items.Ref}}array of {{short $p.Items.Ref}}{{else}}{{$p.Type}}{{end}}</td><td>{{$p.Description}}</td></tr>{{end}}</table></section>{{end}}
</main></body></html>`))

var docsHTML = func() []byte {
	var d apiDoc
	if err := json.Unmarshal(openapi, &d); err != nil {
		panic("api: openapi.json: " + err.Error())
	}
	var b bytes.Buffer
	if err := docsPage.Execute(&b, d); err != nil {
		panic("api: docs page: " + err.Error())
	}
	return b.Bytes()
}()

func serveDocs(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(docsHTML)
}
