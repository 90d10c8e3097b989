package daemon

import (
	"os"
	"runtime"
)

// SetProcessors gives the Go runtime twice the processors it would use
// (at least 4), unless GOMAXPROCS is set in the environment, and returns
// the number it used before. The run command calls it once at start.
//
// The Go scheduler lets a goroutine run up to 10 ms before it preempts
// it, and a goroutine made runnable (the log's reader when a line comes,
// the committer when a ban is decided) waits for a processor behind the
// others: on 2 CPUs, while the API, a peer's bans and the disk kept the
// daemon busy, a ban's p99 was 31-44 ms and its median 1.0-1.2 ms. With
// more processors than CPUs the kernel shares the CPUs among the
// runtime's threads in shorter slices and runs a thread that wakes from
// sleep (the reader's) soon: p99 16-22 ms, median 0.4 ms (the noisy
// benchmark, all loads at once, full size). What the daemon does stays
// bounded: only the waiting is shorter.
func SetProcessors() int {
	n := runtime.GOMAXPROCS(0)
	if os.Getenv("GOMAXPROCS") != "" {
		return n
	}
	return runtime.GOMAXPROCS(max(2*n, 4))
}
