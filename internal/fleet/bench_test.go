package fleet

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// BenchmarkSummary500: 500 real host APIs in this process, each on its
// own bbolt file and port, each answering after 100 ms; one fleet summary
// per op, uncached. The target is under 2 s (32 at once: 16 rounds of
// 100 ms, plus the work); the benchmark fails above it.
func BenchmarkSummary500(b *testing.B) {
	const n = 500
	var sb strings.Builder
	sb.WriteString("cache = \"0s\"\n")
	for i := range n {
		h := startHost(b, 10+i%7, "", 100*time.Millisecond)
		fmt.Fprintf(&sb, "[[host]]\nname = \"host-%03d\"\nurl = %q\n", i, h.url)
	}
	p := b.TempDir() + "/hosts.toml"
	os.WriteFile(p, []byte(sb.String()), 0o600)
	f, err := Load(p)
	if err != nil {
		b.Fatal(err)
	}
	fl, err := New(f)
	if err != nil {
		b.Fatal(err)
	}
	date := time.Now().Format(time.DateOnly)
	var worst time.Duration
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		s, err := fl.Summary(b.Context(), date)
		worst = max(worst, time.Since(start))
		if err != nil || s.Answered != n {
			b.Fatalf("%v: %d of %d answered", err, s.Answered, n)
		}
	}
	b.ReportMetric(worst.Seconds(), "worst-s")
	if worst > 2*time.Second {
		b.Fatalf("a summary of %d hosts took %v, the target is under 2 s", n, worst)
	}
}
