package report

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// TestLowerPriority: every thread of the process ends at the nice value
// asked for (Linux keeps one per thread), in a child process so that the
// test binary keeps its own; a bad value is refused.
func TestLowerPriority(t *testing.T) {
	if os.Getenv("SSHGUARD_TEST_NICE") != "" {
		if err := LowerPriority(7); err != nil {
			panic(err)
		}
		tasks, _ := os.ReadDir("/proc/self/task")
		for _, task := range tasks {
			stat, err := os.ReadFile("/proc/self/task/" + task.Name() + "/stat")
			if err != nil {
				continue
			}
			// Field 19 is the nice value; the command name (field 2) has no spaces here.
			f := strings.Fields(string(stat))
			os.Stdout.WriteString(f[18] + "\n")
		}
		os.Exit(0)
	}
	self, _ := os.Executable()
	cmd := exec.Command(self, "-test.run", "^TestLowerPriority$")
	cmd.Env = append(os.Environ(), "SSHGUARD_TEST_NICE=1")
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Fields(string(out))
	if len(lines) < 2 {
		t.Fatalf("threads seen: %q", out)
	}
	for _, l := range lines {
		if n, _ := strconv.Atoi(l); n != 7 {
			t.Fatalf("a thread at nice %s, want 7 (all: %v)", l, lines)
		}
	}
	for _, bad := range []int{-1, 20} {
		if LowerPriority(bad) == nil {
			t.Errorf("nice %d accepted", bad)
		}
	}
}
