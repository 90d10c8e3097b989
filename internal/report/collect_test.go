package report

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"sshguard-go/internal/detect"
	"sshguard-go/internal/loggen"
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
		// One Summary over the inputs read one after the other; one per
		// input, merged in order, when read at once.
		var s Summary
		s.Window = w
		Inputs{Names: names, Jobs: 1}.Scan(func(int) func(*detect.Record) { return s.Add }, nil)
		t.Logf("window %v: %d clients, %d names", w, s.Len(), len(s.byRaw))
		if s.Len() < 500 || w == (Window{}) && (s.Len() < 3000 || len(s.byRaw) != 7) {
			t.Fatalf("a poor sample: %d clients, %d names", s.Len(), len(s.byRaw))
		}
		sums := make([]Summary, len(names))
		Inputs{Names: names, Jobs: 3}.Scan(func(i int) func(*detect.Record) { sums[i].Window = w; return sums[i].Add }, nil)
		for i := 1; i < len(sums); i++ {
			sums[0].Merge(&sums[i])
		}
		wants := map[int]string{1: report(s.List()), 3: report(sums[0].List())}
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
// that cannot be opened): the report equals the inputs' summaries merged
// in order, and no input starts more than jobs-1 inputs ahead of the one
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
	sums := make([]Summary, len(names))
	Inputs{Names: names, Jobs: 4}.Scan(func(i int) func(*detect.Record) { return sums[i].Add }, nil)
	for i := 1; i < len(sums); i++ {
		sums[0].Merge(&sums[i])
	}
	var want, got bytes.Buffer
	WriteJSON(&want, sums[0].List())
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
