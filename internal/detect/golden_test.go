package detect

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// TestGolden scans every sample in testdata/recorded (recorded from a real
// sshd and rsyslog by scripts/record-samples.sh) and testdata/samples, and
// compares the JSON lines with testdata/golden/<name>.jsonl.
func TestGolden(t *testing.T) {
	files, _ := filepath.Glob("../../testdata/recorded/*.log")
	more, _ := filepath.Glob("../../testdata/samples/*.log")
	files = append(files, more...)
	if len(files) < 3 {
		t.Fatalf("only %d sample files found", len(files))
	}
	for _, name := range files {
		t.Run(filepath.Base(name), func(t *testing.T) {
			s := Scanner{Header: HeaderParser{Loc: time.UTC}}
			var got []byte
			emit := func(r *Record) {
				got = r.AppendJSON(got, filepath.Base(r.Source), r.Line)
				got = append(got, '\n')
			}
			scanFile(t, &s, name, time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC), emit)
			s.Flush(emit)
			golden := filepath.Join("../../testdata/golden", strings.TrimSuffix(filepath.Base(name), ".log")+".jsonl")
			if *update {
				os.MkdirAll(filepath.Dir(golden), 0o755)
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./internal/detect -run TestGolden -update)", err)
			}
			if !bytes.Equal(got, want) {
				gl, wl := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
				for i := 0; i < max(len(gl), len(wl)); i++ {
					g, w := "", ""
					if i < len(gl) {
						g = gl[i]
					}
					if i < len(wl) {
						w = wl[i]
					}
					if g != w {
						t.Fatalf("line %d differs:\n got: %s\nwant: %s", i+1, g, w)
					}
				}
			}
		})
	}
}

// scanFile scans every line of the file name, with ref as the time the
// year of year-less stamps is inferred against.
func scanFile(t *testing.T, s *Scanner, name string, ref time.Time, emit func(*Record)) {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	s.SetRef(ref)
	text := strings.TrimSuffix(string(data), "\n")
	for i, line := range strings.Split(text, "\n") {
		s.Line(name, int64(i+1), line, emit)
	}
}

// knownBenign are the sshd messages of the samples that give no event on
// purpose (nothing about a client in them), by their first words.
var knownBenign = []string{
	"Server listening on",                        // sshd's start
	"pam_systemd(sshd:session): ",                // session setup inside the server
	"pam_limits(sshd:session): ",                 //
	"pam_env(sshd:session): ",                    //
	"internal-sftp[3689]: sent status",           // sftp protocol detail
	"input_userauth_request: invalid user guest", // OpenSSH 6: repeats "Invalid user guest from A", which counts the guess
	"input_userauth_request: invalid user backup",
	"input_userauth_request: invalid user test9",
}

// TestUnrecognisedAreKnownBenign walks every sample: the lines that name
// sshd yet give no event are exactly the known-benign shapes; anything
// else would be an sshd line dropped silently.
func TestUnrecognisedAreKnownBenign(t *testing.T) {
	files, _ := filepath.Glob("../../testdata/recorded/*.log")
	more, _ := filepath.Glob("../../testdata/samples/*.log")
	seen := map[string]int{}
	for _, name := range append(files, more...) {
		s := Scanner{Header: HeaderParser{Loc: time.UTC}}
		s.OnUnrecognised = func(_ string, _ int64, text, reason string) {
			for _, b := range knownBenign {
				if strings.Contains(text, b) {
					seen[b]++
					return
				}
			}
			t.Errorf("%s: %s: %s", filepath.Base(name), reason, text)
		}
		scanFile(t, &s, name, time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC), func(*Record) {})
	}
	t.Logf("known benign lines: %v", seen)
}
