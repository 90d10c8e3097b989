// Command genlog writes a deterministic mixed auth.log for benchmarks:
//
//	go run ./scripts/genlog -n 1000000 > /tmp/auth.log
package main

import (
	"flag"
	"fmt"
	"os"

	"sshguard-go/internal/loggen"
)

func main() {
	n := flag.Int("n", 1000000, "lines to write")
	seed := flag.Uint64("seed", 1, "random seed")
	rfc := flag.Bool("rfc3339", false, "RFC 3339 timestamps instead of traditional syslog ones")
	dense := flag.Bool("dense", false, "attack-dense: three in four lines an sshd attack event")
	flag.Parse()
	f := loggen.Traditional
	if *rfc {
		f = loggen.RFC3339
	}
	write := loggen.Write
	if *dense {
		write = loggen.WriteDense
	}
	if err := write(os.Stdout, *n, *seed, f); err != nil {
		fmt.Fprintln(os.Stderr, "genlog:", err)
		os.Exit(1)
	}
}
