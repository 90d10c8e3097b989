package source

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// copytruncateStep is one step of a copytruncate while both readers read:
// the writer's (w4, w5: lines 4 and 5 appended; ct: the log copied to
// auth.log.1 and truncated; w6, w7: lines 6 and 7 appended at the new
// end), our reader woken by our own watch (r), or the follower's line
// reaching deliver (f4, f5: lines 4 and 5 as it read them before the
// truncation, ending at 28 and 35; f6, f7: lines 6 and 7 once it reopened
// the truncated file, ending at 7 and 14).
type copytruncateStep string

// copytruncateOrders lists every order of those steps: the writer's in
// theirs; the follower's in theirs, each after the write it reads, the
// follower having read none, line 4 or lines 4 and 5 before the
// truncation, and none, line 6 or lines 6 and 7 after it; and our reader
// (see withReads).
func copytruncateOrders() [][]copytruncateStep {
	writer := []copytruncateStep{"w4", "w5", "ct", "w6", "w7"}
	after := map[copytruncateStep]copytruncateStep{"f4": "w4", "f5": "w5", "f6": "w6", "f7": "w7"}
	var merge func(a, b []copytruncateStep) [][]copytruncateStep
	merge = func(a, b []copytruncateStep) [][]copytruncateStep {
		if len(a) == 0 || len(b) == 0 {
			return [][]copytruncateStep{slices.Concat(a, b)}
		}
		var out [][]copytruncateStep
		for _, m := range merge(a[1:], b) {
			out = append(out, slices.Concat(a[:1], m))
		}
		for _, m := range merge(a, b[1:]) {
			out = append(out, slices.Concat(b[:1], m))
		}
		return out
	}
	var orders [][]copytruncateStep
	for _, old := range [][]copytruncateStep{nil, {"f4"}, {"f4", "f5"}} {
		for _, reopened := range [][]copytruncateStep{nil, {"f6"}, {"f6", "f7"}} {
			for _, m := range merge(writer, slices.Concat(old, reopened)) {
				if slices.ContainsFunc(m, func(s copytruncateStep) bool {
					w, ok := after[s]
					return ok && slices.Index(m, s) < slices.Index(m, w)
				}) {
					continue
				}
				orders = append(orders, withReads(m)...)
			}
		}
	}
	return orders
}

// withReads returns order with our reader's read put in every way: after
// each write, once or not (its watch's notices of one write come as one),
// anywhere among the follower's lines before the next write; after the
// last, always.
func withReads(order []copytruncateStep) [][]copytruncateStep {
	i := slices.IndexFunc(order[1:], func(s copytruncateStep) bool { return s[0] != 'f' }) + 1
	if i == 0 { // the last write: read once, somewhere after it
		var out [][]copytruncateStep
		for at := 1; at <= len(order); at++ {
			out = append(out, slices.Concat(order[:at], []copytruncateStep{"r"}, order[at:]))
		}
		return out
	}
	var out [][]copytruncateStep
	for _, rest := range withReads(order[i:]) {
		out = append(out, slices.Concat(order[:i], rest)) // no read
		for at := 1; at <= i; at++ {
			out = append(out, slices.Concat(order[:at], []copytruncateStep{"r"}, order[at:i], rest))
		}
	}
	return out
}

// TestCopytruncateInterleavings: TestTailCopytruncate's copytruncate
// (lines 1-3 read, 4-5 appended, the log copied and truncated, 6-7
// appended) in every order of the writer's steps, our reader's and the
// follower's lines, driven step by step against real files: each line is
// delivered once, in order, with no warning, and the position ends after
// line 7 in the truncated file. Before, the follower's lines 4-5 read
// before the truncation and shown after it were taken for a new file's
// (delivered again after our own reader's, or the copy was then looked for
// by the new first line and not found: "truncated and no copy", line 5
// lost), and a follower that never showed the truncation left lines 4-7
// unread.
func TestCopytruncateInterleavings(t *testing.T) {
	orders := copytruncateOrders()
	dir := t.TempDir()
	failed := 0
	for _, order := range orders {
		got, warned, pos := runCopytruncate(t, dir, order)
		var ok bool
		if want := strings.Split(want(1, 7), "|"); slices.Equal(got, want) && len(warned) == 0 {
			ok = pos.Offset == 14 && pos.FirstHash == hashLine("line 6")
		}
		if !ok {
			if failed++; failed <= 10 {
				t.Errorf("%v: delivered %q, warned %q, position %+v", order, got, warned, pos)
			}
		}
	}
	if failed > 0 {
		t.Errorf("%d of %d orders failed", failed, len(orders))
	}
	t.Logf("%d orders", len(orders))
}

// runCopytruncate plays one order of copytruncateOrders in dir (its
// auth.log and auth.log.1 made anew) and returns what was delivered and
// warned, and the last position.
func runCopytruncate(t *testing.T, dir string, order []copytruncateStep) (got, warned []string, last Position) {
	t.Helper()
	path := filepath.Join(dir, "auth.log")
	if err := os.Remove(path + ".1"); err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("line 1\nline 2\nline 3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	w, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	f := &FileTail{Path: path, Warn: func(m string) { warned = append(warned, m) }}
	f.emit = func(line string, p Position) { got, last = append(got, line), p }
	ctx := context.Background()
	// As Run leaves it: the file read to its end (catchUp), the follower
	// started there.
	f.openPath()
	defer func() { f.cur.Close() }()
	f.setAnchor()
	f.readLines(ctx)
	followerAt(f, f.pos.Offset)
	for _, s := range order {
		switch s {
		case "w4", "w5", "w6", "w7":
			appendLines(t, w, int(s[1]-'0'), int(s[1]-'0'))
		case "ct":
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path+".1", data, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(path, 0); err != nil {
				t.Fatal(err)
			}
		case "r":
			f.readLines(ctx)
		case "f4":
			f.deliver(ctx, "line 4", 28)
		case "f5":
			f.deliver(ctx, "line 5", 35)
		case "f6":
			f.deliver(ctx, "line 6", 7)
		case "f7":
			f.deliver(ctx, "line 7", 14)
		}
	}
	return got, warned, last
}

// followerAt sets f as follow does when it starts a follower at offset
// start.
func followerAt(f *FileTail, start int64) { f.followed = start }
