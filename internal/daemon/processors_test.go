package daemon

import (
	"runtime"
	"testing"
)

func TestSetProcessors(t *testing.T) {
	was := runtime.GOMAXPROCS(2)
	defer runtime.GOMAXPROCS(was)
	t.Setenv("GOMAXPROCS", "")
	if prev := SetProcessors(); prev != 2 || runtime.GOMAXPROCS(0) != 4 {
		t.Fatalf("from 2: returned %d, now %d; want 2, 4", prev, runtime.GOMAXPROCS(0))
	}
	runtime.GOMAXPROCS(3)
	if SetProcessors(); runtime.GOMAXPROCS(0) != 6 {
		t.Fatalf("from 3: %d, want 6", runtime.GOMAXPROCS(0))
	}
	runtime.GOMAXPROCS(2)
	t.Setenv("GOMAXPROCS", "2") // the administrator's choice stands
	if prev := SetProcessors(); prev != 2 || runtime.GOMAXPROCS(0) != 2 {
		t.Fatalf("with GOMAXPROCS set: returned %d, now %d; want 2, 2", prev, runtime.GOMAXPROCS(0))
	}
}
