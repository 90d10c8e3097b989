package source

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
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

// BenchmarkReadXZ measures reading an xz archive of the generated mixed
// auth.log (xz -6, as logrotate's xz compresses) into lines: the xz
// container parsed and checked, LZMA2 decoded, the CRC64 computed. MB/s
// is of the decompressed log.
//
//	go test ./internal/source -run XXX -bench ReadXZ -benchmem -cpu 1
func BenchmarkReadXZ(b *testing.B) {
	needXZ(b)
	var log bytes.Buffer
	if err := loggen.Write(&log, 100000, 1, loggen.Traditional); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command("xz", "-6", "-T1", "-c")
	cmd.Stdin = bytes.NewReader(log.Bytes())
	archive, err := cmd.Output()
	if err != nil {
		b.Fatal(err)
	}
	p := filepath.Join(b.TempDir(), "auth.log.xz")
	if err := os.WriteFile(p, archive, 0o644); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(log.Len()))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		in, err := OpenInput(p, nil)
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		if err := in.Lines(func(l string, _ int64) { n += len(l) + 1 }); err != nil || n != log.Len() {
			b.Fatalf("%d bytes of %d, err %v", n, log.Len(), err)
		}
		in.Close()
	}
}
