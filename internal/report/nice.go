package report

import (
	"fmt"
	"os"
	"strconv"
	"syscall"
)

// DefaultNice is how much scan and report lower their CPU priority by
// default: reading a year of archives on every core, they take what the
// daemon on the same host leaves (its bans come first).
const DefaultNice = 10

// LowerPriority lowers this process's CPU priority to nice n (0 to 19; 0
// leaves it), as nice(1) would; it never raises it. Linux keeps a nice
// value per thread: each of the process's threads is set, and those the
// Go runtime starts later inherit it.
func LowerPriority(n int) error {
	if n < 0 || n > 19 {
		return fmt.Errorf("--nice %d: from 0 (unchanged) to 19", n)
	}
	if n == 0 {
		return nil
	}
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return fmt.Errorf("lower the CPU priority: %w", err)
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		// The system call gives 20 - nice.
		cur, err := syscall.Getpriority(syscall.PRIO_PROCESS, tid)
		if err != nil {
			continue // a thread that ended
		}
		if 20-cur >= n {
			continue // lower already
		}
		if err := syscall.Setpriority(syscall.PRIO_PROCESS, tid, n); err != nil && err != syscall.ESRCH {
			return fmt.Errorf("lower the CPU priority to nice %d: %w", n, err)
		}
	}
	return nil
}
