package main

import (
	"io"
	"os"
	"testing"
)

// BenchmarkScanCLI runs `scan --json` on the file named by SSHGUARD_BENCH_LOG
// (generate one with go run ./scripts/genlog) with output discarded.
func BenchmarkScanCLI(b *testing.B) {
	name := os.Getenv("SSHGUARD_BENCH_LOG")
	if name == "" {
		b.Skip("set SSHGUARD_BENCH_LOG to a log file")
	}
	for i := 0; i < b.N; i++ {
		cmd := newRootCmd()
		cmd.SetArgs([]string{"scan", "--json", name})
		cmd.SetOut(io.Discard)
		cmd.SetErr(io.Discard)
		if err := cmd.Execute(); err != nil {
			b.Fatal(err)
		}
	}
}
