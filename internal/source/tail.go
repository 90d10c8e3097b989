package source

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nxadm/tail"
)

// Position is where a file source stands: the file (device and inode, and
// a hash of its first line so a reused inode is recognised) and the offset
// after the last line delivered. The zero Position means "no position".
type Position struct {
	Dev       uint64 `json:"dev"`
	Ino       uint64 `json:"ino"`
	Offset    int64  `json:"offset"`
	FirstHash uint64 `json:"first_hash"` // FNV-64a of the first line, 0 while the file is empty
}

// IsZero reports whether p holds no position.
func (p Position) IsZero() bool { return p == Position{} }

// FileTail follows a log file such as /var/log/auth.log the way tail -F
// does, with github.com/nxadm/tail, and adds what a security tool needs on
// top of it:
//
//   - it resumes from a saved Position, so a restart neither skips nor
//     re-reads a line; when the file was rotated while we were down, it
//     finishes the rotated file (found by inode next to the log) first,
//     then reads the files rotated after it, oldest first (a compressed
//     one is warned of, not read);
//   - on rename-and-create rotation it drains what the writer appended to
//     the old file after the rename, then the files rotated after it when
//     there were more rotations before it saw one (a compressed one is
//     warned of, not read), before moving to the new one;
//   - on copytruncate it reads the lines it had not yet seen from the copy,
//     then the truncated file from its start.
//
// Without a saved position it starts at the end of the file unless
// FromStart is set.
type FileTail struct {
	Path      string
	Start     Position
	FromStart bool
	// Poll makes the follower poll instead of using inotify (for file
	// systems without inotify).
	Poll bool
	// Warn receives problems that do not stop the tail (a rotated file
	// that could not be found, for example). nil discards them.
	Warn func(msg string)
	// Ready, if set, is called once the starting point is fixed: lines
	// appended from then on are delivered (without Start or FromStart, the
	// file's end at that moment).
	Ready func()

	noWake bool // the follower's notice alone (BenchmarkLineLatency's comparison)

	cur *os.File // our own handle on the file being followed
	pos Position
	// followed is where the follower's last line ended in the file it
	// reads, or where it started (see deliver).
	followed int64
	// anchor is a hash of the bytes just before pos in cur, as they were
	// read: a block is read from pos only while they are still there;
	// when they are not, the file was truncated (see readLines).
	anchor uint64
	warned bool   // the waker's watch failed once (said once)
	buf    []byte // readLines' block
	wake   *waker // our own notice of a write to cur (nil: the follower's alone)
	emit   func(line string, pos Position)
}

// Run delivers each complete line with the position after it, until ctx is
// cancelled. It returns ctx.Err() on cancellation, or an error when the
// file cannot be followed at all.
//
// Lines are read from our own descriptor, in blocks, and by no one else,
// when our own watch of the file or one of the follower's lines says it
// was written (see deliver); the follower's lines also tell of rotations.
// Once a second we look for ourselves (a stat and a few preads: a notice
// that never came), and when the follower showed no line it is checked
// for being stuck (behind): a lost inotify watch (nxadm/tail shares one
// watcher per process) or an overflowed event queue is assumed, and the
// follower is restarted at our position (on the new file if the path
// names one). The check is an fstat and a stat.
func (f *FileTail) Run(ctx context.Context, emit func(line string, pos Position)) error {
	f.emit = emit
	defer func() {
		if f.cur != nil {
			f.cur.Close()
		}
	}()
	if !f.Poll && !f.noWake {
		w, err := newWaker()
		if err != nil {
			f.warn(fmt.Sprintf("%s: %v; new lines come through the follower alone", f.Path, err))
		} else {
			f.wake = w
			defer w.close()
		}
	}
	start, err := f.resume()
	if err != nil {
		return err
	}
	f.setAnchor()
	if f.Ready != nil {
		f.Ready()
	}
	start = f.catchUp(ctx, start)
	for {
		stuck, err := f.follow(ctx, start)
		if !stuck {
			return err
		}
		if f.cur != nil {
			f.warn(fmt.Sprintf("%s: no change notification for new data; following again from offset %d", f.Path, f.pos.Offset))
		}
		f.look(ctx)
		start = f.pos.Offset
	}
}

// maxCatchUpLine bounds a line read in blocks: longer ones are cut there
// (sshd writes none past a few KiB; a forged one must not take the
// daemon's memory).
const maxCatchUpLine = 64 << 10

// catchUp delivers the complete lines of the file we hold from offset
// start to its end, read in large blocks through our own descriptor: a
// backlog (a first start with FromStart, a restart after downtime) is read
// at the speed of the disk, not a line per round trip through the
// follower and its checks. It returns the offset after the last line
// delivered, where the follower takes over.
func (f *FileTail) catchUp(ctx context.Context, start int64) int64 {
	if f.cur == nil || f.pos.Offset != start {
		return start
	}
	f.readLines(ctx)
	return f.pos.Offset
}

// readLines delivers the complete lines of the file we hold from f.pos to
// its end (eachLine), and moves f.pos past each. When the bytes before
// f.pos are not those read (anchored), the file was truncated, by
// copytruncate most often, and maybe written again: the lines after f.pos
// are read from the copy (drainCopy), then the file from its start. This
// is the one place a truncation is handled, whoever noticed it: our watch,
// a follower's line, the check once a second.
func (f *FileTail) readLines(ctx context.Context) {
	if f.cur == nil {
		return
	}
	if !f.anchored() {
		f.drainCopy(f.pos)
		f.pos.Offset, f.pos.FirstHash = 0, 0
	}
	defer f.setAnchor()
	f.eachLine(ctx, f.cur, f.pos.Offset, func(text string, end int64) {
		first := f.pos.Offset == 0
		f.pos.Offset = end
		if first {
			f.pos.FirstHash = firstLineHash(f.cur)
		}
		f.emit(text, f.pos)
	})
}

// block is the buffer eachLine and lineAfter read into.
func (f *FileTail) block() []byte {
	if f.buf == nil {
		f.buf = make([]byte, maxCatchUpLine)
	}
	return f.buf
}

// eachLine hands line the complete lines of file from offset to its end
// with the offset after each, read in blocks of maxCatchUpLine with pread
// (a longer line is cut there: a forged one must not take the daemon's
// memory). An incomplete last line is left for the writer to finish.
func (f *FileTail) eachLine(ctx context.Context, file *os.File, offset int64, line func(text string, end int64)) {
	buf := f.block()
	have := 0       // buf[:have] is the start of an incomplete line, at offset+skip
	var skip int64  // bytes of a line longer than buf already passed
	var long string // that line's first len(buf) bytes
	for blocks := 0; ; blocks++ {
		if blocks%64 == 63 && ctx.Err() != nil {
			return
		}
		n, err := file.ReadAt(buf[have:], offset+skip+int64(have))
		have += n
		from := 0
		for {
			i := bytes.IndexByte(buf[from:have], '\n')
			if i < 0 {
				break
			}
			text := string(buf[from : from+i])
			if skip > 0 {
				text = long
			}
			offset += skip + int64(i+1)
			skip, long = 0, ""
			from += i + 1
			line(text, offset)
		}
		have = copy(buf, buf[from:have])
		if have == len(buf) { // no newline in a whole block: cut the line
			if skip == 0 {
				long = string(buf)
			}
			skip += int64(have)
			have = 0
		}
		if err != nil || n == 0 {
			return
		}
	}
}

// follow runs one nxadm/tail follower from offset start until ctx ends, it
// fails, or it is found stuck.
func (f *FileTail) follow(ctx context.Context, start int64) (stuck bool, err error) {
	f.followed = start
	t, err := tail.TailFile(f.Path, tail.Config{
		Location:      &tail.SeekInfo{Offset: start, Whence: io.SeekStart},
		ReOpen:        true,
		Follow:        true,
		Poll:          f.Poll,
		CompleteLines: true,
		Logger:        tail.DiscardingLogger,
	})
	if err != nil {
		return false, fmt.Errorf("follow %s: %w", f.Path, err)
	}
	// Not t.Cleanup(): it removes the inotify watch for the path shared by
	// every tail in the process, and is meant for process exit only.
	defer t.Stop()
	check := time.NewTicker(time.Second)
	defer check.Stop()
	var wake <-chan struct{}
	if f.wake != nil {
		wake = f.wake.c
	}
	got := false // a line arrived since the last check
	for {
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-wake:
			f.readLines(ctx)
		case <-check.C:
			if !got && f.behind() {
				return true, nil
			}
			got = false
			f.look(ctx) // a write, truncation or rotation no one told us of
		case l, ok := <-t.Lines:
			if !ok {
				if err := t.Err(); err != nil {
					return false, fmt.Errorf("follow %s: %w", f.Path, err)
				}
				return false, fmt.Errorf("follow %s: stopped", f.Path)
			}
			got = true
			if l.Err != nil {
				f.warn(fmt.Sprintf("%s: %v", f.Path, l.Err))
				continue
			}
			f.deliver(ctx, l.Text, l.SeekInfo.Offset)
		}
	}
}

// behind reports whether the follower has fallen behind with nothing to
// show for it: our file has complete lines past the follower's place (its
// last line, or where it started), or the path names another file, with
// complete lines, that the follower has not shown us (a rotation it
// missed). Our own reading keeps up on our own notice, but the follower is
// what tells of rotations at once: a stuck one is restarted.
func (f *FileTail) behind() bool {
	if f.cur == nil {
		_, err := os.Stat(f.Path)
		return err == nil // the file appeared and we were not told
	}
	if f.lineAfter(f.cur, f.followed) {
		return true
	}
	if !f.holdsPath() {
		if file, err := os.Open(f.Path); err == nil {
			defer file.Close()
			return f.lineAfter(file, 0)
		}
	}
	return false
}

// lineAfter reports whether file has a complete line after offset (a
// writer may be in the middle of one).
func (f *FileTail) lineAfter(file *os.File, offset int64) bool {
	st, err := file.Stat()
	if err != nil || st.Size() <= offset {
		return false
	}
	buf := f.block()
	n, _ := file.ReadAt(buf[:min(st.Size()-offset, int64(len(buf)))], offset)
	return bytes.IndexByte(buf[:n], '\n') >= 0
}

// holdsPath reports whether Path still names the file we hold.
func (f *FileTail) holdsPath() bool {
	st, err := os.Stat(f.Path)
	if err != nil {
		return false
	}
	id := fileID(st)
	return id.Dev == f.pos.Dev && id.Ino == f.pos.Ino
}

func (f *FileTail) warn(msg string) {
	if f.Warn != nil {
		f.Warn(msg)
	}
}

// resume decides where to start in the current file, first finishing a
// rotated file the saved position points into and reading those rotated
// after it.
func (f *FileTail) resume() (int64, error) {
	st, err := os.Stat(f.Path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return 0, nil // tail waits for it to appear; read it whole
		}
		return 0, fmt.Errorf("follow %s: %w", f.Path, err)
	}
	cur := fileID(st)
	s := f.Start
	if s.IsZero() {
		f.open(cur)
		if f.FromStart {
			return 0, nil
		}
		f.pos.Offset = st.Size()
		return st.Size(), nil
	}
	if s.Dev == cur.Dev && s.Ino == cur.Ino {
		f.open(cur)
		if s.Offset <= st.Size() && (s.FirstHash == 0 || s.FirstHash == f.pos.FirstHash) {
			f.pos.Offset = s.Offset
			return s.Offset, nil
		}
		// Truncated (copytruncate while we were down) or a reused inode.
		f.drainCopy(s)
		f.pos.Offset = 0
		return 0, nil
	}
	// Rotated while we were down: finish the old file if it is still
	// here, then the files rotated after it, oldest first.
	rotated := rotatedFiles(f.Path)
	at := findRotated(rotated, s)
	if at < 0 {
		f.warn(fmt.Sprintf("%s was rotated while sshguard-go was stopped and the rotated file was not found; lines written to it after offset %d, and to any file rotated after it, were not read", f.Path, s.Offset))
		f.open(cur)
		return 0, nil
	}
	f.drainFile(rotated[at], s.Offset)
	f.drainNewer(rotated, at, cur, "while sshguard-go was stopped")
	f.open(cur)
	return 0, nil
}

// drainNewer delivers the files rotated after rotated[at] (the path's
// siblings, newest first: see rotatedFiles), oldest first, up to the
// path's file cur; a compressed one is named in a warning (rotated and
// compressed when, it says), not read.
func (f *FileTail) drainNewer(rotated []string, at int, cur Position, when string) {
	var newer []string // oldest first
	for i := at - 1; i >= 0; i-- {
		st, err := os.Stat(rotated[i])
		// auth.log.bak, auth.log.old are not the log's own; the current
		// file by another name is read next.
		if err == nil && numbered(f.Path, rotated[i]) && fileID(st) != cur {
			newer = append(newer, rotated[i])
		}
	}
	prev := rotated[at]
	for i, name := range newer {
		if compressed(name) {
			next := f.Path
			if i+1 < len(newer) {
				next = newer[i+1]
			}
			f.warn(fmt.Sprintf("%s was rotated and compressed %s; the lines it holds (written after those of %s and before those of %s) were not read", name, when, prev, next))
		} else {
			f.drainFile(name, 0)
		}
		prev = name
	}
}

// deliver handles one line from the follower, which ends at offset in the
// file the follower reads.
//
// The follower is a signal, not a reader: every line is read from our own
// descriptor, in blocks (readLines), and delivered from there only. A
// burst of lines (a backlog written at once, a flood) reaches the parser
// at the speed of a block read, not a line per round trip through the
// follower, so a ban's line is not queued behind them. And a line is
// delivered once whichever reader saw it first: the follower's copy of a
// line read before a truncation is no line of ours to deliver (the copy
// has it), nor is one of a file we left.
//
// A line right after the follower's last one is in the same file (the
// follower reads another only once it reopened the path, and then from
// its start): one that ends at or before our position tells nothing
// (passed over without a syscall: looking each line up in our file was a
// third of the cost of following a busy log), one past it that our file
// grew. Any other line is the follower's first in a file it (re)opened:
// the path may name another file now, which look finds out.
func (f *FileTail) deliver(ctx context.Context, text string, offset int64) {
	next := f.followed > 0 && offset == f.followed+int64(len(text))+1
	f.followed = offset
	switch {
	case next && offset <= f.pos.Offset:
	case next:
		f.readLines(ctx)
	default:
		f.look(ctx)
	}
}

// look delivers what the log got that we have not: the rest of the file
// we hold (a truncation of it handled as readLines does), then, when the
// path names another file that was written to (rename-and-create
// rotation, an editor's save), the files rotated after ours, oldest first
// (rotated more than once before we saw it: found as resume finds them,
// ours by its inode), and that file from its start. Until the new file is
// written to, and while the path names none, we stay on ours: its writer
// may not have reopened the path yet.
func (f *FileTail) look(ctx context.Context) {
	var id Position
	moved := false
	if st, err := os.Stat(f.Path); err == nil {
		id = fileID(st)
		moved = f.cur == nil || id != Position{Dev: f.pos.Dev, Ino: f.pos.Ino} && st.Size() > 0
	}
	f.readLines(ctx)
	if !moved {
		return
	}
	if f.cur != nil {
		rotated := rotatedFiles(f.Path)
		if at := findRotated(rotated, f.pos); at >= 0 {
			f.drainNewer(rotated, at, id, "before sshguard-go read it")
		}
	}
	f.openPath()
	f.readLines(ctx)
}

// anchorLen is how many bytes before the position the anchor hashes.
const anchorLen = 64

// anchorHash hashes the up to anchorLen bytes before our position in the
// file we hold; ok is false when they are not all there (truncated).
func (f *FileTail) anchorHash() (h uint64, ok bool) {
	k := min(int64(anchorLen), f.pos.Offset)
	if f.cur == nil || k == 0 {
		return 0, true
	}
	var b [anchorLen]byte
	if n, _ := f.cur.ReadAt(b[:k], f.pos.Offset-k); int64(n) != k {
		return 0, false
	}
	return hashLine(string(b[:k])), true
}

// setAnchor notes the bytes before our position as they are now.
func (f *FileTail) setAnchor() { f.anchor, _ = f.anchorHash() }

// anchored reports whether the bytes before our position are those we
// read.
func (f *FileTail) anchored() bool {
	h, ok := f.anchorHash()
	return ok && h == f.anchor
}

// open starts tracking the file at Path, which has identity id when we
// stat it just before.
func (f *FileTail) open(id Position) {
	f.openPath()
	if f.cur == nil {
		f.pos = Position{Dev: id.Dev, Ino: id.Ino}
	}
}

// openPath opens Path and makes it the file we track.
func (f *FileTail) openPath() {
	if f.cur != nil {
		f.cur.Close()
		f.cur = nil
	}
	f.pos, f.anchor = Position{}, 0
	file, err := os.Open(f.Path)
	if err != nil {
		if f.wake != nil {
			f.wake.watch(nil)
		}
		return
	}
	if st, err := file.Stat(); err == nil {
		f.pos = fileID(st)
	}
	f.cur = file
	f.pos.FirstHash = firstLineHash(file)
	if f.wake != nil {
		if err := f.wake.watch(file); err != nil && !f.warned {
			f.warned = true
			f.warn(fmt.Sprintf("%s: %v; new lines come through the follower alone", f.Path, err))
		}
	}
}

// drainFile delivers the lines of name after offset.
func (f *FileTail) drainFile(name string, offset int64) {
	file, err := os.Open(name)
	if err != nil {
		f.warn(fmt.Sprintf("read rotated %s: %v", name, err))
		return
	}
	defer file.Close()
	st, err := file.Stat()
	if err != nil {
		return
	}
	id := fileID(st)
	id.FirstHash = firstLineHash(file)
	id.Offset = offset
	f.readFrom(file, id)
}

// drainCopy finds the copy that copytruncate made of the file at p and
// delivers its lines after p.Offset.
func (f *FileTail) drainCopy(p Position) {
	if p.FirstHash == 0 {
		return
	}
	for _, name := range rotatedNames(f.Path) {
		file, err := os.Open(name)
		if err != nil {
			continue
		}
		st, err := file.Stat()
		if err == nil && st.Size() >= p.Offset && firstLineHash(file) == p.FirstHash {
			id := fileID(st)
			id.FirstHash, id.Offset = p.FirstHash, p.Offset
			f.readFrom(file, id)
			file.Close()
			return
		}
		file.Close()
	}
	f.warn(fmt.Sprintf("%s was truncated and no copy of it was found (looked for a file starting with its first line, of at least %d bytes); lines written just before the truncation may be missing", f.Path, p.Offset))
}

// readFrom delivers the complete lines of file after p.Offset.
func (f *FileTail) readFrom(file *os.File, p Position) {
	f.eachLine(context.Background(), file, p.Offset, func(text string, end int64) {
		p.Offset = end
		f.emit(text, p)
	})
}

// findRotated returns the index in names of the file the position points
// into (same device and inode), or -1.
func findRotated(names []string, p Position) int {
	for i, name := range names {
		st, err := os.Stat(name)
		if err != nil {
			continue
		}
		id := fileID(st)
		if id.Dev == p.Dev && id.Ino == p.Ino {
			return i
		}
	}
	return -1
}

// rotatedNames lists plain (not compressed) rotated siblings of path,
// newest first (see rotatedFiles).
func rotatedNames(path string) []string {
	var out []string
	for _, name := range rotatedFiles(path) {
		if !compressed(name) {
			out = append(out, name)
		}
	}
	return out
}

// rotatedFiles lists the rotated siblings of path, compressed or not,
// newest first by modification time (renaming keeps it, and so does
// logrotate when it compresses): path.1, path.2.gz, path-20261124, ...
// Two of the same time (a coarse clock, two rotations in a row) are in
// their names' order: path.1 before path.2, path-20261125 before
// path-20261124.
func rotatedFiles(path string) []string {
	dots, _ := filepath.Glob(path + ".*")
	dashes, _ := filepath.Glob(path + "-*")
	type sibling struct {
		name  string
		mtime time.Time
		num   int // N of path.N[.gz], -1 for another name
	}
	var out []sibling
	for _, m := range append(dots, dashes...) {
		st, err := os.Stat(m)
		if err != nil || st.IsDir() {
			continue
		}
		num := -1
		if n, err := strconv.Atoi(strings.TrimPrefix(strings.TrimSuffix(m, compressedExt(m)), path+".")); err == nil && n >= 0 {
			num = n
		}
		out = append(out, sibling{m, st.ModTime(), num})
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		switch {
		case !a.mtime.Equal(b.mtime):
			return a.mtime.After(b.mtime)
		case (a.num >= 0) != (b.num >= 0):
			return a.num >= 0
		case a.num != b.num:
			return a.num < b.num
		}
		return a.name > b.name
	})
	names := make([]string, len(out))
	for i, s := range out {
		names[i] = s.name
	}
	return names
}

// compressedExt returns name's extension when it is that of a compressed
// file, or "".
func compressedExt(name string) string {
	switch ext := filepath.Ext(name); ext {
	case ".gz", ".xz", ".zst", ".bz2":
		return ext
	}
	return ""
}

// compressed reports whether name is that of a compressed file.
func compressed(name string) bool { return compressedExt(name) != "" }

// numbered reports whether name is path's with a number or a date added,
// as rotation names them (path.1, path-20261124, path.2.gz), not a copy
// someone kept (path.bak, path-old).
func numbered(path, name string) bool {
	suffix := strings.TrimPrefix(name, path)
	return len(suffix) > 1 && suffix[1] >= '0' && suffix[1] <= '9'
}

func fileID(st os.FileInfo) Position {
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return Position{Dev: uint64(s.Dev), Ino: s.Ino}
	}
	return Position{}
}

// firstLineHash hashes the first complete line of file, or returns 0.
func firstLineHash(file *os.File) uint64 {
	buf := make([]byte, 4096)
	n, _ := file.ReadAt(buf, 0)
	for i := 0; i < n; i++ {
		if buf[i] == '\n' {
			return hashLine(string(buf[:i]))
		}
	}
	return 0
}

func hashLine(s string) uint64 {
	h := fnv.New64a()
	io.WriteString(h, s)
	if v := h.Sum64(); v != 0 {
		return v
	}
	return 1
}
