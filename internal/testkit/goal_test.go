package testkit

import "testing"

// TestGoal: a goal met at the third measurement passes, after two
// measured again; one missed each time fails, after exactly tries.
func TestGoal(t *testing.T) {
	for _, tc := range []struct {
		metAt, tries, calls int
		pass                bool
	}{
		{metAt: 1, tries: 3, calls: 1, pass: true},
		{metAt: 3, tries: 3, calls: 3, pass: true},
		{metAt: 4, tries: 3, calls: 3, pass: false},
	} {
		calls := 0
		r := testing.Benchmark(func(b *testing.B) {
			calls = 0
			Goal(b, tc.tries, func() (bool, string) {
				calls++
				return calls >= tc.metAt, "a figure"
			})
		})
		if pass := r.N > 0; pass != tc.pass || calls != tc.calls {
			t.Errorf("met at measurement %d of %d: passed %v after %d, want %v after %d", tc.metAt, tc.tries, pass, calls, tc.pass, tc.calls)
		}
	}
}
