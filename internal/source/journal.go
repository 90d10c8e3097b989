package source

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"time"
)

// JournalPrograms are the SYSLOG_IDENTIFIER values a Journal reads.
var JournalPrograms = []string{"sshd", "sshd-session", "sshd-auth", "internal-sftp", "sftp-server"}

// Journal follows the systemd journal through `journalctl --follow -o json`
// filtered to sshd's programs, and resumes after a saved cursor. When
// journalctl exits (journald restarted, say) it is started again after the
// last cursor delivered, so no entry is lost or repeated.
type Journal struct {
	// Cursor resumes after this entry; "" starts with the entries written
	// from the moment Run is called (none is missed while journalctl
	// starts), unless FromStart is set.
	Cursor    string
	FromStart bool
	// Ready, if set, is called once the starting point is fixed: entries
	// written from then on are delivered.
	Ready func()
	// Command is the journalctl binary; "" means "journalctl".
	Command string
	// Args are added before the filters, e.g. "--file=/path/x.journal" or
	// "--directory=/var/log/journal".
	Args []string
	// MachineID, when set, reads every boot of this machine's journal
	// (--merge with a _MACHINE_ID match) instead of journalctl's default
	// when following: the current boot only. So resuming after a reboot
	// still reads the end of the previous boot, and the source keeps
	// working where the boot ID journalctl sees differs from journald's
	// (a sandboxed service in a container). Remote journals stay out.
	MachineID string
	// Warn receives problems that do not stop the source.
	Warn func(msg string)
	// Restart is the pause before journalctl is run again; 0 means 1s.
	Restart time.Duration

	since time.Time // where a start without cursor begins
}

// CheckJournal reports whether journalctl (command; "" is "journalctl")
// runs here and can read a journal, as this user, with args (see
// Journal.Args): nil, or an error that says why not and what to do.
func CheckJournal(ctx context.Context, command string, args ...string) error {
	if command == "" {
		command = "journalctl"
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, command, append([]string{"--header", "--no-pager"}, args...)...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &limited{&out, 64 << 10}, &limited{&out, 64 << 10}
	err := cmd.Run()
	text := out.String()
	switch {
	case errors.Is(err, exec.ErrNotFound):
		return fmt.Errorf("journald: %s is not installed", command)
	case strings.Contains(text, "insufficient permissions") || strings.Contains(text, "Permission denied"):
		return errors.New("journald: this user may not read the journal: run as root (sudo), or in the group systemd-journal")
	case strings.Contains(text, "File path:"):
		return nil // a journal it can read (an error after it: the output was cut)
	case err != nil:
		return fmt.Errorf("journald: %s --header: %v: %s", command, err, strings.TrimSpace(text))
	}
	return errors.New("journald: there are no journal files to read (is systemd-journald running, with Storage= other than none?)")
}

// limited writes at most n bytes to w and drops the rest.
type limited struct {
	w io.Writer
	n int
}

func (l *limited) Write(p []byte) (int, error) {
	if k := min(len(p), l.n); k > 0 {
		l.w.Write(p[:k])
		l.n -= k
	}
	return len(p), nil
}

// Run delivers each journal entry as its JSON line, with the entry's
// cursor, until ctx is cancelled (it then returns ctx.Err()). It returns an
// error at once when journalctl cannot be started at all.
func (j *Journal) Run(ctx context.Context, emit func(line, cursor string)) error {
	if j.Cursor == "" && !j.FromStart && j.since.IsZero() {
		j.since = time.Now()
	}
	if j.Ready != nil {
		j.Ready()
	}
	first := true
	for {
		started, err := j.runOnce(ctx, func(line, cursor string) {
			if cursor != "" {
				j.Cursor = cursor
			}
			emit(line, cursor)
		})
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if first && !started {
			return fmt.Errorf("journald source: %w", err)
		}
		first = false
		if j.Warn != nil {
			j.Warn(fmt.Sprintf("journalctl stopped (%v); restarting after cursor %q", err, j.Cursor))
		}
		pause := j.Restart
		if pause <= 0 {
			pause = time.Second
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pause):
		}
	}
}

// args builds the journalctl command line.
func (j *Journal) args() []string {
	a := append([]string{"--follow", "--output=json", "--no-pager", "--quiet"}, j.Args...)
	if j.MachineID != "" {
		a = append(a, "--merge", "_MACHINE_ID="+j.MachineID)
	}
	switch {
	case j.Cursor != "":
		a = append(a, "--after-cursor="+j.Cursor)
	case j.FromStart:
		a = append(a, "--lines=all")
	case !j.since.IsZero():
		a = append(a, fmt.Sprintf("--since=@%d.%06d", j.since.Unix(), j.since.Nanosecond()/1000))
	default:
		a = append(a, "--lines=0")
	}
	for _, p := range JournalPrograms {
		a = append(a, "SYSLOG_IDENTIFIER="+p)
	}
	return a
}

// MaxJournalLine bounds an entry's JSON line; longer ones are skipped.
const MaxJournalLine = 1 << 20

// runOnce runs journalctl until it exits; started tells whether it ran.
func (j *Journal) runOnce(ctx context.Context, emit func(line, cursor string)) (started bool, err error) {
	name := j.Command
	if name == "" {
		name = "journalctl"
	}
	cmd := exec.CommandContext(ctx, name, j.args()...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return false, err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return false, err
	}
	// An entry is at most MaxJournalLine long: journalctl prints fields
	// over 4 KiB as null, but a local user may add many fields.
	r := bufio.NewReaderSize(out, MaxJournalLine)
	long := false
	for {
		b, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			long = true
			continue
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				cmd.Process.Kill()
			}
			break
		}
		if long {
			long = false
			if j.Warn != nil {
				j.Warn(fmt.Sprintf("journald: an entry longer than %d KiB skipped", MaxJournalLine>>10))
			}
			continue
		}
		line := string(b[:len(b)-1])
		emit(line, journalCursorField(line))
	}
	err = cmd.Wait()
	if msg := strings.TrimSpace(stderr.String()); msg != "" {
		return true, fmt.Errorf("%v: %s", err, msg)
	}
	if err == nil {
		err = errors.New("exited")
	}
	return true, err
}

// journalCursorField reads "__CURSOR" from a journalctl JSON line without
// decoding it; cursors hold no quotes or escapes.
func journalCursorField(line string) string {
	const key = `"__CURSOR":"`
	i := strings.Index(line, key)
	if i < 0 {
		return ""
	}
	v := line[i+len(key):]
	if k := strings.IndexByte(v, '"'); k >= 0 {
		return v[:k]
	}
	return ""
}
