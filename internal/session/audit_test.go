package session

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"sshguard-go/internal/detect"
)

// execs parses lines and returns the commands they complete.
func execs(p *AuditParser, lines ...string) []Exec {
	var out []Exec
	for _, l := range lines {
		p.Line(l, nil, func(e Exec) { out = append(out, e) })
	}
	p.Flush(func(e Exec) { out = append(out, e) })
	return out
}

const syscallRec = "type=SYSCALL msg=audit(1796057640.403:%d): arch=c000003e syscall=59 success=yes exit=0 ses=145 comm=\"x\""

// TestAuditArgcNegative: an EXECVE record with argc=-1 (the kernel never
// writes one; a hostile or damaged log may) is a command without
// arguments, counted, not a panic.
func TestAuditArgcNegative(t *testing.T) {
	var p AuditParser
	got := execs(&p, fmt.Sprintf(syscallRec, 1), `type=EXECVE msg=audit(1796057640.403:1): argc=-1 a0="sh"`)
	if len(got) != 1 || len(got[0].Argv) != 0 || p.BadArgc != 1 {
		t.Fatalf("got %+v, bad argc %d", got, p.BadArgc)
	}
}

// TestAuditParserBounds: argc out of range, arguments missing, long,
// hex-encoded, in parts or over several records: argv keeps at most 64
// arguments of 1 KiB, 4 KiB in all, and what was dropped is counted.
func TestAuditParserBounds(t *testing.T) {
	long := strings.Repeat("x", 3000)
	hexLong := fmt.Sprintf("%X", strings.Repeat("y", 1500))
	cases := []struct {
		name     string
		lines    []string
		argv     []string // the first arguments expected (nil: not checked)
		n        int      // len(argv), its "... (N more)" included
		cut      int
		badArgc  int64
		lastMore string
	}{
		{"huge argc", []string{`type=EXECVE msg=audit(1796057640.403:1): argc=99999999999999999999 a0="ls"`}, []string{"ls"}, 2, 0, 1, "... (1048575 more)"},
		{"argc not a number", []string{`type=EXECVE msg=audit(1796057640.403:1): argc=zz a0="ls"`}, nil, 0, 0, 1, ""},
		{"argc without arguments", []string{`type=EXECVE msg=audit(1796057640.403:1): argc=5`}, nil, 1, 0, 0, "... (5 more)"},
		{"a long quoted one", []string{`type=EXECVE msg=audit(1796057640.403:1): argc=2 a0="echo" a1="` + long + `"`}, []string{"echo", long[:1024]}, 2, 3000 - 1024, 0, ""},
		{"a long one in hex parts", []string{`type=EXECVE msg=audit(1796057640.403:1): argc=1 a0_len=1500 a0[0]=` + hexLong[:1000] + ` a0[1]=` + hexLong[1000:]}, []string{strings.Repeat("y", 1024)}, 1, 1500 - 1024, 0, ""},
		{"over several records", []string{`type=EXECVE msg=audit(1796057640.403:1): argc=3 a0="a" a1=6263`, `type=EXECVE msg=audit(1796057640.403:1): a2="c"`}, []string{"a", "bc", "c"}, 3, 0, 0, ""},
		{"a missing index", []string{`type=EXECVE msg=audit(1796057640.403:1): argc=3 a0="a" a2="c"`}, []string{"a"}, 2, 0, 0, "... (2 more)"},
		{"4 KiB in all", []string{`type=EXECVE msg=audit(1796057640.403:1): argc=8` + strings.Repeat(` a0="`+long[:1000]+`"`, 1) + func() string {
			var b strings.Builder
			for i := 1; i < 8; i++ {
				fmt.Fprintf(&b, ` a%d="%s"`, i, long[:1000])
			}
			return b.String()
		}()}, nil, 8, 4000 - 96, 0, ""},
		{"too many", []string{`type=EXECVE msg=audit(1796057640.403:1): argc=100` + func() string {
			var b strings.Builder
			for i := range 100 {
				fmt.Fprintf(&b, ` a%d="%d"`, i, i)
			}
			return b.String()
		}()}, nil, 65, 0, 0, "... (36 more)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var p AuditParser
			got := execs(&p, append([]string{fmt.Sprintf(syscallRec, 1)}, c.lines...)...)
			if len(got) != 1 {
				t.Fatalf("%d commands", len(got))
			}
			cmd := got[0].Command
			size := 0
			for _, a := range cmd.Argv {
				size += len(a)
			}
			if len(cmd.Argv) != c.n || cmd.CutBytes != c.cut || p.BadArgc != c.badArgc || size > maxArgvBytes+32 {
				t.Fatalf("argv of %d (%d bytes), cut %d, bad argc %d; want %d, cut %d, bad argc %d", len(cmd.Argv), size, cmd.CutBytes, p.BadArgc, c.n, c.cut, c.badArgc)
			}
			for i, a := range c.argv {
				if cmd.Argv[i] != a {
					t.Fatalf("argv[%d] = %.40q, want %.40q", i, cmd.Argv[i], a)
				}
			}
			if c.lastMore != "" && cmd.Argv[len(cmd.Argv)-1] != c.lastMore {
				t.Fatalf("last %q, want %q", cmd.Argv[len(cmd.Argv)-1], c.lastMore)
			}
			if (c.cut > 0 || c.lastMore != "") != (p.Cut == 1) {
				t.Fatalf("cut commands %d", p.Cut)
			}
		})
	}
}

// FuzzAuditParser: whatever the lines (raw or enriched, with node=),
// the parser never panics and every command it gives stays within its
// bounds. Seeded with the recorded audit log's events.
func FuzzAuditParser(f *testing.F) {
	file, err := os.Open("../../testdata/sessions/audit.log")
	if err != nil {
		f.Fatal(err)
	}
	sc := bufio.NewScanner(file)
	sc.Buffer(nil, 1<<20)
	var event []string
	for sc.Scan() {
		event = append(event, sc.Text())
		if strings.HasPrefix(sc.Text(), "type=EOE") || len(event) == 8 {
			f.Add(strings.Join(event, "\n"))
			event = event[:0]
		}
	}
	file.Close()
	f.Add("node=vm type=SYSCALL msg=audit(1.2:3): ses=5 exit=0\nnode=vm type=EXECVE msg=audit(1.2:3): argc=-1 a0=\"x\"")
	f.Add("type=SYSCALL msg=audit(1.2:3): ses=5\ntype=EXECVE msg=audit(1.2:3): argc=2 a0_len=9 a0[0]=4142 a1=\"\x1dZ=\"")
	f.Add("type=EXECVE msg=audit(:): argc=3 a0=' a1=\"")
	f.Fuzz(func(t *testing.T, text string) {
		var p AuditParser
		check := func(e Exec) {
			if len(e.Argv) > maxArgv+1 || len(e.Cwd) > maxArg || e.CutBytes < 0 {
				t.Fatalf("out of bounds: %d arguments, cwd of %d, cut %d", len(e.Argv), len(e.Cwd), e.CutBytes)
			}
			n := 0
			for i, a := range e.Argv {
				if i < maxArgv && len(a) > maxArg {
					t.Fatalf("argument of %d bytes", len(a))
				}
				n += len(a)
			}
			if n > maxArgvBytes+32 {
				t.Fatalf("argv of %d bytes", n)
			}
		}
		for _, l := range strings.Split(text, "\n") {
			p.Line(l, func(Login) {}, check)
		}
		p.Flush(check)
		if p.Lines != int64(strings.Count(text, "\n")+1) || p.Bad > p.Lines {
			t.Fatalf("lines %d, bad %d", p.Lines, p.Bad)
		}
	})
}

// TestCommandBounds: a session's commands stop at 256 KiB, a user's day
// at 8 MiB, everyone's day at 32 MiB; what is dropped is counted in the
// session it belonged to (commands and bytes), and kept + dropped is
// everything that came.
func TestCommandBounds(t *testing.T) {
	tr := NewTracker()
	day := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	argv := []string{"sh", "-c", strings.Repeat("z", 1000), strings.Repeat("z", 1000), strings.Repeat("z", 1000), strings.Repeat("z", 1000)}
	cmd := Command{Time: day, Argv: argv, Cwd: "/home/u"}
	size := cmd.Size()
	var all []*Session
	sessionOf := func(user string, ses int64) *Session {
		s := &Session{User: user, Start: day, Active: true, Commands: []Command{}}
		tr.setAudit(s, ses)
		all = append(all, s)
		return s
	}
	// One session past its bound.
	s := sessionOf("u1", 1)
	for range 200 {
		tr.Exec(Exec{Ses: 1, Command: cmd})
	}
	kept := int64(len(s.Commands)) * size
	if kept > MaxSessionCommandBytes || kept+size <= MaxSessionCommandBytes || len(s.Commands)+s.CommandsMore != 200 || s.CommandBytesMore != int64(s.CommandsMore)*size {
		t.Fatalf("kept %d (%d bytes), dropped %d (%d bytes)", len(s.Commands), kept, s.CommandsMore, s.CommandBytesMore)
	}
	// A user's day: many sessions of u2.
	var u2 int64
	for i := range 100 {
		s := sessionOf("u2", int64(100+i))
		for range 60 {
			tr.Exec(Exec{Ses: int64(100 + i), Command: cmd})
		}
		u2 += int64(len(s.Commands)) * size
	}
	if u2 > MaxUserDayBytes || u2+size <= MaxUserDayBytes {
		t.Fatalf("u2 kept %d bytes in the day", u2)
	}
	// Everyone's day.
	for i := range 2000 {
		sessionOf(fmt.Sprint("v", i), int64(1000+i))
		for range 40 {
			tr.Exec(Exec{Ses: int64(1000 + i), Command: cmd})
		}
	}
	var total int64
	for _, s := range all {
		total += int64(len(s.Commands)) * size
	}
	if total > MaxDayBytes || total+size <= MaxDayBytes {
		t.Fatalf("the day kept %d bytes", total)
	}
	// The next day starts over.
	cmd.Time = day.Add(24 * time.Hour)
	s = sessionOf("v1", 9999)
	tr.Exec(Exec{Ses: 9999, Command: cmd})
	if len(s.Commands) != 1 {
		t.Fatalf("the next day kept %d", len(s.Commands))
	}
}

// TestTransferBounds: a session's transfers stop at 128 KiB of paths,
// counted.
func TestTransferBounds(t *testing.T) {
	tr := NewTracker()
	s := &Session{Host: "h", PID: 7, User: "u", IP: "192.0.2.1", Start: time.Now(), Active: true, Transfers: []Transfer{}}
	tr.add(s)
	tr.kids[conn{"h", 8}] = s
	path := "/" + strings.Repeat("p", 2000)
	for range 100 {
		tr.Record(transferRecord(path))
	}
	var kept int64
	for i := range s.Transfers {
		kept += s.Transfers[i].Size()
	}
	if kept > MaxSessionTransferBytes || len(s.Transfers)+s.TransfersMore != 100 || s.TransferBytesMore == 0 {
		t.Fatalf("kept %d (%d bytes), dropped %d (%d bytes)", len(s.Transfers), kept, s.TransfersMore, s.TransferBytesMore)
	}
}

// TestLateCommandsAppend: with OnCommand set (the daemon), a session's
// commands go to it one by one, a late one after the end included, and
// the record is not handed over again for them (OnEnd once).
func TestLateCommandsAppend(t *testing.T) {
	tr := NewTracker()
	ends, got, dropped := 0, 0, 0
	tr.OnEnd = func(*Session) { ends++ }
	tr.OnCommand = func(_ *Session, _ Command, kept bool) {
		if kept {
			got++
		} else {
			dropped++
		}
	}
	s := &Session{Host: "h", PID: 7, User: "u", Start: time.Now(), Active: true}
	tr.add(s)
	tr.setAudit(s, 5)
	cmd := Command{Time: time.Now(), Argv: []string{strings.Repeat("a", 4000)}}
	tr.Exec(Exec{Ses: 5, Command: cmd})
	tr.End(s, time.Now(), EndLogout)
	for range 100 {
		tr.Exec(Exec{Ses: 5, Command: cmd})
	}
	if ends != 1 || got+dropped != 101 || dropped == 0 || len(s.Commands) != 0 {
		t.Fatalf("ends %d, commands %d, dropped %d, in memory %d", ends, got, dropped, len(s.Commands))
	}
}

func transferRecord(path string) *detect.Record {
	r := &detect.Record{}
	r.Host, r.PID, r.Kind, r.Reason, r.Path, r.Time, r.Read = "h", 8, detect.KindTransfer, "sftp_close", path, time.Now(), 10
	return r
}

// BenchmarkHostileAudit: one session's audit log flooded with commands
// of 64 arguments of 1 KiB (the worst the parser takes) through the
// parser and the tracker as the daemon runs them (commands handed on,
// not held). Reports what a session keeps of them.
func BenchmarkHostileAudit(b *testing.B) {
	arg := strings.Repeat("41", 1024) // hex: 1 KiB
	var line strings.Builder
	line.WriteString("type=EXECVE msg=audit(1796057640.403:%d): argc=64")
	for i := range 64 {
		fmt.Fprintf(&line, " a%d=%s", i, arg)
	}
	execLine := line.String()
	for b.Loop() {
		tr := NewTracker()
		var keptBytes, dropped int64
		tr.OnCommand = func(_ *Session, c Command, kept bool) {
			if kept {
				keptBytes += c.Size()
			} else {
				dropped++
			}
		}
		s := &Session{Host: "h", PID: 7, User: "mallory", Start: time.Unix(1796057640, 0), Active: true}
		tr.add(s)
		tr.setAudit(s, 145)
		var p AuditParser
		for i := range 2000 {
			p.Line(fmt.Sprintf(syscallRec, i), nil, tr.Exec)
			p.Line(fmt.Sprintf(execLine, i), nil, tr.Exec)
		}
		p.Flush(tr.Exec)
		b.ReportMetric(float64(keptBytes), "kept-bytes")
		b.ReportMetric(float64(dropped), "dropped")
	}
}

// TestMergeOldRecord: a record written whole (commands inline, as
// before chunks) reads as it is; with chunks after it (a session open
// across the upgrade), both, in order, the dropped counts summed.
func TestMergeOldRecord(t *testing.T) {
	old := &Session{User: "u", Start: time.Unix(1796057640, 0), Commands: []Command{{Argv: []string{"ls"}}}, CommandsMore: 2, CommandBytesMore: 200}
	rec := old.Marshal()
	same, err := Merge(rec, nil)
	if err != nil || string(same) != string(rec) {
		t.Fatalf("without chunks: %v", err)
	}
	c1 := (&Chunk{Commands: []Command{{Argv: []string{"id"}}}, More: 1, MoreBytes: 70}).Marshal()
	c2 := (&Chunk{Commands: []Command{{Argv: []string{"w"}}}}).Marshal()
	s, err := UnmarshalChunks(rec, [][]byte{c1, c2})
	if err != nil || len(s.Commands) != 3 || s.Commands[1].Argv[0] != "id" || s.Commands[2].Argv[0] != "w" || s.CommandsMore != 3 || s.CommandBytesMore != 270 {
		t.Fatalf("merged %+v, %v", s, err)
	}
	live, err := UnmarshalLive(rec, [][]byte{c1, c2})
	if err != nil || len(live.Commands) != 1 || live.ncmd != 3 {
		t.Fatalf("live: %d in memory, %d counted, %v", len(live.Commands), live.ncmd, err)
	}
	if _, err := UnmarshalChunks(rec, [][]byte{[]byte("{")}); err == nil {
		t.Fatal("a damaged chunk read")
	}
}
