package report

import (
	"bufio"
	"io"
	"os"
	"path/filepath"
	"testing"

	"sshguard-go/internal/detect"
	"sshguard-go/internal/loggen"
)

// BenchmarkArchive measures report --json beside scan --json on the same
// generated 1,000,000-line file (mixed, and attack-dense: 706,148
// clients), read in stages on every core as the commands read it:
//
//	go test ./internal/report -run XXX -bench Archive -benchtime 3x
//
// lines/s is the whole run's: reading, parsing, correlating, and either
// writing every event (scan) or counting, sorting and writing every
// client (report).
func BenchmarkArchive(b *testing.B) {
	const lines = 1000000
	for _, log := range []struct {
		name  string
		write func(io.Writer, int, uint64, loggen.Format) error
	}{{"mixed", loggen.Write}, {"dense", loggen.WriteDense}} {
		name := filepath.Join(b.TempDir(), log.name+".log")
		f, err := os.Create(name)
		if err != nil {
			b.Fatal(err)
		}
		w := bufio.NewWriter(f)
		if err := log.write(w, lines, 1, loggen.Traditional); err != nil {
			b.Fatal(err)
		}
		if err := w.Flush(); err != nil {
			b.Fatal(err)
		}
		f.Close()
		in := Inputs{Names: []string{name}, Jobs: 1}
		b.Run("scan/"+log.name, func(b *testing.B) {
			for range b.N {
				out := bufio.NewWriter(io.Discard)
				var buf []byte
				var enc detect.Encoder
				in.Scan(func(int) func(*detect.Record) {
					return func(r *detect.Record) { buf = enc.AppendJSON(buf[:0], &r.Event, r.Source, r.Line); out.Write(buf) }
				}, nil)
				out.Flush()
			}
			b.ReportMetric(float64(lines)*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
			b.ReportMetric(0, "ns/op")
		})
		b.Run("report/"+log.name, func(b *testing.B) {
			for range b.N {
				c := NewCollector(Window{}, 1, 1)
				in.Scan(c.EmitFor, c.Done)
				out := bufio.NewWriter(io.Discard)
				WriteJSON(out, c.Sorted())
				out.Flush()
			}
			b.ReportMetric(float64(lines)*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
			b.ReportMetric(0, "ns/op")
		})
	}
}
