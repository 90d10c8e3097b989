// Package browsertest drives a real headless Chromium for the dashboards'
// tests: it records what the page logs, throws and requests, so a test
// can ask for no error and no request to another origin.
package browsertest

import (
	"context"
	"flag"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"sshguard-go/internal/roottest"
)

// Docs, when set (go test -docs), also writes each page's screenshot into
// the repository's docs/ directory for the README.
var Docs = flag.Bool("docs", false, "write the dashboards' screenshots into docs/ too")

// Page is one browser tab on one page.
type Page struct {
	Ctx context.Context
	t   testing.TB

	mu       sync.Mutex
	problems []string // console errors, exceptions, CSP reports
	requests []string // every URL the page asked for
}

// Open starts Chromium (headless, a fresh profile) and loads url in a
// tab of width×height CSS pixels; dark asks for the dark colour scheme.
// Under CI=true a missing chromium fails the test.
func Open(tb testing.TB, u string, width, height int, dark bool) *Page {
	tb.Helper()
	roottest.Require(tb, "chromium")
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath("chromium"), chromedp.NoSandbox, chromedp.WindowSize(width, height),
		chromedp.UserDataDir(tb.TempDir()), chromedp.DisableGPU)
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	tb.Cleanup(cancel)
	ctx, cancel2 := chromedp.NewContext(actx)
	tb.Cleanup(cancel2)
	p := &Page{Ctx: ctx, t: tb}
	// Subscribed before the page loads: nothing it does is missed.
	console := chromedp.Console(ctx)
	requests := chromedp.Events(ctx, network.RequestWillBeSent)
	go func() {
		for m, err := range console {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleWarning || m.IsException() {
				p.mu.Lock()
				p.problems = append(p.problems, fmt.Sprintf("%s %s (%s:%d)", m.Type, m.Text, m.URL, m.Line+1))
				p.mu.Unlock()
			}
		}
	}()
	go func() {
		for ev, err := range requests {
			if err != nil {
				return
			}
			p.mu.Lock()
			p.requests = append(p.requests, ev.Request.URL)
			p.mu.Unlock()
		}
	}()
	scheme := "light"
	if dark {
		scheme = "dark"
	}
	setup := chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		if _, err := cdp.Call(ctx, t, network.Enable, network.EnableParams{}); err != nil {
			return err
		}
		_, err := cdp.Call(ctx, t, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}}})
		return err
	})
	if err := chromedp.Do(ctx, setup, chromedp.EmulateViewport(int64(width), int64(height)), chromedp.Navigate(u)); err != nil {
		tb.Fatalf("open %s: %v", u, err)
	}
	return p
}

// Problems are the errors and warnings the page logged or threw.
func (p *Page) Problems() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.problems...)
}

// Foreign are the requests to another origin than base's.
func (p *Page) Foreign(base string) []string {
	b, _ := url.Parse(base)
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, r := range p.requests {
		u, err := url.Parse(r)
		if err != nil || u.Scheme == "data" {
			continue
		}
		if u.Scheme != b.Scheme || u.Host != b.Host {
			out = append(out, r)
		}
	}
	return out
}

// Do runs actions on the page, failing the test on an error.
func (p *Page) Do(actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.Ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.t.Fatalf("browser: %v", err)
	}
}

// Eval evaluates expr in the page and returns its value.
func Eval[T any](p *Page, expr string) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.Ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		p.t.Fatalf("browser: %s: %v", expr, err)
	}
	return v
}

// Poll evaluates expr in the page for a test that waits on it: an error
// (the page navigating away meanwhile) is returned as its text, to be
// polled again, not a failure.
func Poll(p *Page, expr string) string {
	ctx, cancel := context.WithTimeout(p.Ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
	if err != nil {
		return err.Error()
	}
	return v
}

// Blank reports, for each canvas under the CSS selector sel, whether it
// is blank (every pixel the same): a chart was not drawn.
const blankJS = `Array.from(document.querySelectorAll(%q)).map((c) => {
  const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
  for (let i = 4; i < d.length; i += 4) {
    if (d[i] !== d[0] || d[i+1] !== d[1] || d[i+2] !== d[2] || d[i+3] !== d[3]) return false;
  }
  return true;
})`

// Blank is whether each canvas matching sel is blank.
func (p *Page) Blank(sel string) []bool { return Eval[[]bool](p, fmt.Sprintf(blankJS, sel)) }

// Screenshot writes the whole page as name.png into the directory
// $SCREENSHOTS (else the test's temporary directory) and, with -docs,
// into docs/ at the repository's root; it returns the first path.
func (p *Page) Screenshot(name string) string {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.Ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		p.t.Fatalf("screenshot: %v", err)
	}
	dir := os.Getenv("SCREENSHOTS")
	if dir == "" {
		dir = p.t.TempDir()
	}
	os.MkdirAll(dir, 0o755)
	path := filepath.Join(dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		p.t.Fatal(err)
	}
	if *Docs {
		root, err := filepath.Abs("../..")
		if err == nil {
			os.WriteFile(filepath.Join(root, "docs", name+".png"), png, 0o644)
		}
	}
	p.t.Logf("screenshot: %s", path)
	return path
}
