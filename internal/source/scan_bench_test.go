package source

import (
	"bytes"
	"io"
	"testing"

	"sshguard-go/internal/detect"
	"sshguard-go/internal/loggen"
)

// BenchmarkScanJSON measures the scan --json hot path on the generated
// mixed auth.log: read, parse, classify, correlate, and encode JSON.
// lines/s is per core (run with -cpu 1); allocs/line should be near zero.
//
//	go test ./internal/source -run XXX -bench ScanJSON -benchmem -cpu 1
func BenchmarkScanJSON(b *testing.B) {
	for _, f := range []struct {
		name  string
		f     loggen.Format
		write func(io.Writer, int, uint64, loggen.Format) error
	}{{"traditional", loggen.Traditional, loggen.Write}, {"rfc3339", loggen.RFC3339, loggen.Write},
		{"attack-dense", loggen.Traditional, loggen.WriteDense}} {
		b.Run(f.name, func(b *testing.B) {
			var log bytes.Buffer
			const lines = 200000
			if err := f.write(&log, lines, 1, f.f); err != nil {
				b.Fatal(err)
			}
			data := log.Bytes()
			var out []byte
			var enc detect.Encoder
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				var s detect.Scanner
				in := &Input{Name: "auth.log", Reader: bytes.NewReader(data)}
				emit := func(r *detect.Record) {
					out = enc.AppendJSON(out[:0], &r.Event, r.Source, r.Line)
				}
				if err := scanInput(&s, in, emit); err != nil {
					b.Fatal(err)
				}
				s.Flush(emit)
			}
			b.StopTimer()
			secs := b.Elapsed().Seconds()
			b.ReportMetric(float64(lines)*float64(b.N)/secs, "lines/s")
			b.ReportMetric(0, "ns/op")
		})
	}
}
