package report

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"sshguard-go/internal/detect"
	"sshguard-go/internal/loggen"
	"sshguard-go/internal/source"
)

// TestCollectorEqualsSummary: a Collector's workers, whatever their
// number and however many inputs are read at once, give the report one
// Summary gives, byte for byte, clients known by name included, and
// apply the window the same way.
func TestCollectorEqualsSummary(t *testing.T) {
	dir := t.TempDir()
	var names []string
	for i := range 3 {
		var b bytes.Buffer
		write := loggen.Write
		if i == 1 {
			write = loggen.WriteDense
		}
		if err := write(&b, 4000, uint64(i+7), loggen.Traditional); err != nil {
			t.Fatal(err)
		}
		for j := range 40 { // clients known by name only
			fmt.Fprintf(&b, "Nov 23 20:14:%02d f%d sshd[%d]: Failed password for root from host-%d.example port 1 ssh2\n", j%60, i, 9000+j, j%7)
		}
		names = append(names, filepath.Join(dir, fmt.Sprintf("auth.log.%d", i)))
		if err := os.WriteFile(names[i], b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	report := func(l *List) string {
		var b bytes.Buffer
		WriteJSON(&b, l)
		return b.String()
	}
	for _, w := range []Window{{}, {Since: time.Date(2026, 11, 1, 0, 4, 0, 0, time.Local), Until: time.Date(2026, 11, 1, 0, 9, 0, 0, time.Local)}} {
		// One Summary over the inputs read one after the other; read at
		// once, each input's records counted after those of the inputs
		// before it.
		var s Summary
		s.Window = w
		Inputs{Names: names, Jobs: 1}.Scan(func(int) func(*detect.Record) { return s.Add }, nil)
		t.Logf("window %v: %d clients, %d names", w, s.Len(), len(s.byRaw))
		if s.Len() < 500 || w == (Window{}) && (s.Len() < 3000 || len(s.byRaw) != 7) {
			t.Fatalf("a poor sample: %d clients, %d names", s.Len(), len(s.byRaw))
		}
		wants := map[int]string{1: report(s.List()), 3: report(countInOrder(names, 3, w).List())}
		for _, procs := range []int{1, 2, 5} {
			for _, jobs := range []int{1, 3} {
				want := wants[jobs]
				old := runtime.GOMAXPROCS(procs)
				c := NewCollector(w, jobs, len(names))
				Inputs{Names: names, Jobs: jobs}.Scan(c.EmitFor, c.Done)
				got := report(c.Sorted())
				runtime.GOMAXPROCS(old)
				if got != want {
					t.Fatalf("window %v, %d workers, -j %d: the report differs (%d bytes, want %d)", w, procs, jobs, len(got), len(want))
				}
			}
		}
	}
}

// TestCollectorAhead: inputs read at once are counted in input order
// however unequal they are (a large first one, small ones after it, one
// that cannot be opened): the report equals the inputs' records counted
// in input order (countInOrder), and no input starts more than jobs-1 inputs ahead of the one
// being counted.
func TestCollectorAhead(t *testing.T) {
	dir := t.TempDir()
	var names []string
	for i := range 12 {
		var b bytes.Buffer
		n, write := 300, loggen.Write
		if i == 0 {
			n, write = 30000, loggen.WriteDense
		}
		if err := write(&b, n, uint64(i+40), loggen.Traditional); err != nil {
			t.Fatal(err)
		}
		name := filepath.Join(dir, fmt.Sprintf("auth.log.%02d", i))
		names = append(names, name)
		if i == 5 {
			continue // missing
		}
		if err := os.WriteFile(name, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var want, got bytes.Buffer
	WriteJSON(&want, countInOrder(names, 4, Window{}).List())
	const jobs = 3
	c := NewCollector(Window{}, jobs, len(names))
	var worst int
	var mu sync.Mutex
	res := Inputs{Names: names, Jobs: jobs}.Scan(func(i int) func(*detect.Record) {
		emit := c.EmitFor(i)
		c.mu.Lock()
		ahead := i - c.reached
		c.mu.Unlock()
		mu.Lock()
		worst = max(worst, ahead)
		mu.Unlock()
		return emit
	}, c.Done)
	WriteJSON(&got, c.Sorted())
	if res.Failed != 1 || got.String() != want.String() {
		t.Fatalf("%d failed; the report differs (%d bytes, want %d)", res.Failed, got.Len(), want.Len())
	}
	if worst > jobs-1 {
		t.Fatalf("an input started %d inputs ahead of the counting", worst)
	}
	t.Logf("%d bytes of report; inputs started at most %d ahead", got.Len(), worst)
}

// TestStagedReading: reading in stages (parse on one goroutine, correlate
// on another, inputs one after the other or at once) gives the records
// Scanner.Line gives line by line, in order, and the same lines that
// name sshd yet gave no event: on the recorded OpenSSH logs, the samples,
// and a generated log with lines of unknown headers (which take the time
// of the line before them) and lines naming sshd in no known shape.
func TestStagedReading(t *testing.T) {
	names, _ := filepath.Glob("../../testdata/recorded/*.log")
	samples, _ := filepath.Glob("../../testdata/samples/*")
	names = append(names, samples...)
	var b bytes.Buffer
	if err := loggen.Write(&b, 5000, 3, loggen.Traditional); err != nil {
		t.Fatal(err)
	}
	for i := range 300 {
		fmt.Fprintf(&b, "weird-header %d sshd[%d]: Failed password for root from 198.51.100.%d port 22 ssh2\n", i, 7000+i, i%50)
		fmt.Fprintf(&b, "Nov 23 20:14:%02d h sshd[%d]: a message no sshd writes %d\n", i%60, 8000+i, i)
	}
	gen := filepath.Join(t.TempDir(), "generated.log")
	if err := os.WriteFile(gen, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	names = append(names, gen)
	if len(names) < 4 {
		t.Fatalf("inputs: %v", names)
	}
	format := func(r *detect.Record) string {
		var enc detect.Encoder // one each: the inputs read at once format at once
		return string(enc.AppendJSON(nil, &r.Event, r.Source, r.Line)) + r.Time.String() + "\n"
	}
	// Line by line, each input with its file's time as reference.
	lineByLine := func(names []string) (recs, unrec string) {
		var out, un strings.Builder
		var s detect.Scanner
		s.OnUnrecognised = func(source string, n int64, text, reason string) { fmt.Fprintln(&un, source, n, reason) }
		emit := func(r *detect.Record) { out.WriteString(format(r)) }
		for _, name := range names {
			src, err := source.OpenInput(name, nil)
			if err != nil {
				t.Fatal(err)
			}
			s.SetRef(src.ModTime)
			if err := src.Lines(func(text string, n int64) { s.Line(src.Name, n, text, emit) }); err != nil {
				t.Fatal(err)
			}
			src.Close()
		}
		s.Flush(emit)
		return out.String(), un.String()
	}
	want, wantUn := lineByLine(names)
	if !strings.Contains(wantUn, "unknown_shape") || strings.Count(want, "198.51.100.") < 300 {
		t.Fatalf("a poor sample:\n%s", wantUn)
	}
	var got, un strings.Builder
	res := Inputs{Names: names, Jobs: 1, Unrecognised: func(source string, n int64, text, reason string) { fmt.Fprintln(&un, source, n, reason) }}.
		Scan(func(int) func(*detect.Record) { return func(r *detect.Record) { got.WriteString(format(r)) } }, nil)
	if res.Failed != 0 || got.String() != want || un.String() != wantUn {
		t.Fatalf("-j 1: %d failed; records equal: %v; unrecognised equal: %v", res.Failed, got.String() == want, un.String() == wantUn)
	}
	// At once: each input on its own equals that input read line by line.
	outs := make([]strings.Builder, len(names))
	Inputs{Names: names, Jobs: 3}.Scan(func(i int) func(*detect.Record) {
		return func(r *detect.Record) { outs[i].WriteString(format(r)) }
	}, nil)
	for i, name := range names {
		if w, _ := lineByLine([]string{name}); outs[i].String() != w {
			t.Fatalf("-j 3, %s: the records differ", name)
		}
	}
}

// countInOrder reads the inputs jobs at a time, each with a scanner of
// its own, and counts each input's records after those of the inputs
// before it: what a Collector does, written plainly.
func countInOrder(names []string, jobs int, w Window) *Summary {
	recs := make([][]detect.Record, len(names))
	Inputs{Names: names, Jobs: jobs}.Scan(func(i int) func(*detect.Record) {
		return func(r *detect.Record) { recs[i] = append(recs[i], *r) }
	}, nil)
	s := &Summary{Window: w}
	for _, rs := range recs {
		for k := range rs {
			s.Add(&rs[k])
		}
	}
	return s
}
