package detect

import (
	"strings"
	"time"
)

// Stats counts what a Scanner has seen.
type Stats struct {
	Lines        int64                 // lines read
	SSHDLines    int64                 // lines whose tag is one of sshd's programs
	Unrecognised int64                 // sshd lines no shape matched (UnknownShape)
	UnknownHead  int64                 // lines naming sshd whose header is not understood (UnknownHeader)
	Untrusted    int64                 // journal entries tagged sshd that sshd did not write
	Events       int64                 // recognised lines
	ByKind       [KindNotice + 1]int64 // events per kind
	Counted      [KindNotice + 1]int64 // counted attempts (failure) and probes (probe)
}

// Scanner turns lines into correlated Records. It is not safe for
// concurrent use.
type Scanner struct {
	Header HeaderParser
	Corr   Correlator
	Stats  Stats
	// OnUnrecognised, when set, receives each line that names an sshd
	// program yet gave no event, and why: UnknownShape (the message is not
	// one the classifier knows) or UnknownHeader (sshd's tag is in the
	// line, but not where a known header puts it). For scan
	// --unrecognised, debug logging and tests.
	OnUnrecognised func(source string, n int64, text, reason string)

	rec      Record        // scratch record, reused for every line
	lastTime time.Time     // of the last line with a time
	out      func(*Record) // the caller's emit for the current call
	countFn  func(*Record) // s.count as a func value, made once
}

// count updates the stats and passes r on.
func (s *Scanner) count(r *Record) {
	s.Stats.Events++
	s.Stats.ByKind[r.Kind]++
	s.Stats.Counted[r.Kind] += int64(r.Counted)
	s.out(r)
}

// Line parses one line and calls emit for each record that is ready (see
// Correlator.Add for why that may be a held earlier record, or none).
func (s *Scanner) Line(source string, n int64, text string, emit func(*Record)) {
	if s.Parse(source, n, text, &s.rec) {
		s.Feed(&s.rec, emit)
	}
}

// Parse is Line's first half: it reads one line into r and reports
// whether r holds an event, which Feed then takes. The halves may run on
// two goroutines, one line's Feed beside a later line's Parse (a
// pipeline): Parse keeps the header's state and its own Stats fields
// (Lines, SSHDLines, Untrusted, Unrecognised, UnknownHead), Feed the
// correlator and the others; OnUnrecognised is called from Parse.
func (s *Scanner) Parse(source string, n int64, text string, r *Record) bool {
	s.Stats.Lines++
	*r = Record{}
	switch res := s.parse(text, &r.Event); res {
	case parsed:
	case untrusted:
		s.Stats.Untrusted++
		return false
	case notSSHD:
		return false
	default:
		s.unrecognised(source, n, text, string(res))
		return false
	}
	if r.Program != "" {
		s.Stats.SSHDLines++
	}
	if r.Time.IsZero() {
		r.Time = s.lastTime // an unknown header: the file's clock where it stands
	} else {
		s.lastTime = r.Time
	}
	r.Source, r.Line, r.Text = source, n, text
	return true
}

// Feed is Line's second half: it correlates r (filled by Parse) and calls
// emit for each record that is ready. r may be reused once it returns.
func (s *Scanner) Feed(r *Record, emit func(*Record)) {
	if s.countFn == nil {
		s.countFn = s.count
	}
	s.out = emit
	s.Corr.Add(r, s.countFn)
}

// parseResult is what parse made of a line: parsed, or why not.
type parseResult string

const (
	parsed    parseResult = ""
	untrusted parseResult = "untrusted"
	notSSHD   parseResult = "not_sshd"
)

// parse reads one line into e (time, host, program, pid, and what
// Classify fills in): through the header parsers, else sshd's tag found
// behind an unknown header, else a bare message found where such a header
// ends. It returns parsed, untrusted, notSSHD, or UnknownShape or
// UnknownHeader for a line that names sshd and gives no event.
func (s *Scanner) parse(text string, e *Event) parseResult {
	h, ok := s.Header.Parse(text)
	switch {
	case !ok && h.Untrusted:
		return untrusted
	case !ok && h.Program != "":
		return notSSHD // another program's line
	case !ok || (h.Program == "" && !Classify(h.Msg, e)):
		// No header parser knows the line, or its start is no message:
		// sshd's tag or message may stand behind an unknown header.
		*e = Event{}
		stamp := h.Time // a time the header parser read before it gave up
		var res parseResult
		if h, res = afterUnknownHeader(text, e); res != parsed {
			return res
		}
		if h.Time.IsZero() {
			h.Time = stamp
		}
	case !classifyTagged(h.Msg, e):
		return UnknownShape
	case h.TransfersOnly && e.Kind != KindTransfer:
		// An sftp server's entry, written as the user, saying what only
		// sshd may say.
		return untrusted
	}
	e.Time, e.Host, e.Program, e.PID = h.Time, h.Host, h.Program, h.PID
	return parsed
}

// maxHeaderWords bounds the words of an unknown header before sshd's tag
// or message: a header is short; a long prefix is some other program's
// text, which may quote an sshd message.
const maxHeaderWords = 6

// headerWord reports whether w can be a word of a log header (a time, a
// host, a level, a bracketed field), and not a tag of another program
// ("name[pid]:") or a sentence's word ending in a colon.
func headerWord(w string) bool {
	if strings.HasSuffix(w, ":") {
		if fl, _ := isFacilityLevel(w); !fl {
			return false
		}
	}
	for i := 0; i < len(w); i++ {
		c := w[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("[]()<>._:/+-,@=", c) >= 0) {
			return false
		}
	}
	return true
}

// afterUnknownHeader reads a line whose header no parser knows, word by
// word, at most maxHeaderWords header words deep: at the first word that
// is a program's tag, the line is that program's (an sshd program's
// message follows it); at the first word where the classifier knows a
// message, that is the message. The earliest wins: what a client chose (a
// user name) stands after the message's start, never before it.
func afterUnknownHeader(line string, e *Event) (Header, parseResult) {
	rest := line
	for w := 0; w <= maxHeaderWords; w++ {
		sp := strings.IndexByte(rest, ' ')
		if sp < 0 {
			break
		}
		word := rest[:sp]
		prog, pid, ok := parseTag(word)
		if !ok {
			prog, pid, ok = parseBareTag(word)
		}
		if ok {
			h := Header{Program: prog, PID: pid, Msg: trimSolarisID(rest[sp+1:])}
			switch {
			case !knownProgram(prog):
				return h, notSSHD
			case !classifyTagged(h.Msg, e):
				return h, UnknownShape
			}
			return h, parsed
		}
		if w > 0 && Classify(rest, e) {
			return Header{Msg: rest}, parsed
		}
		if !headerWord(word) {
			break
		}
		rest = rest[sp+1:]
	}
	if namesSSHD(line) {
		return Header{}, UnknownHeader
	}
	return Header{}, notSSHD
}

// Why a line naming sshd gave no event.
const (
	UnknownShape  parseResult = "unknown_shape"
	UnknownHeader parseResult = "unknown_header"
)

func (s *Scanner) unrecognised(source string, n int64, text, reason string) {
	if reason == string(UnknownShape) {
		s.Stats.Unrecognised++
	} else {
		s.Stats.UnknownHead++
	}
	if s.OnUnrecognised != nil {
		s.OnUnrecognised(source, n, text, reason)
	}
}

// namesSSHD reports whether line carries an sshd program's tag somewhere
// ("sshd[", "sshd:", "sshd-session[", ...): a line of sshd's that a
// header parser did not understand.
func namesSSHD(line string) bool {
	for i := 0; ; {
		j := strings.Index(line[i:], "sshd")
		if j < 0 {
			return false
		}
		k := i + j + 4
		rest := line[k:]
		rest = strings.TrimPrefix(strings.TrimPrefix(rest, "-session"), "-auth")
		if strings.HasPrefix(rest, "[") || strings.HasPrefix(rest, ": ") {
			return true
		}
		i = k
	}
}

// Flush emits the records still held back for their address.
func (s *Scanner) Flush(emit func(*Record)) {
	if s.countFn == nil {
		s.countFn = s.count
	}
	s.out = emit
	s.Corr.Flush(s.countFn)
}

// SetRef sets the time that the year of year-less timestamps is
// inferred against (an input file's modification time; now for stdin or a
// live source), for the lines that follow.
func (s *Scanner) SetRef(ref time.Time) {
	s.Header.Ref = ref
	s.Header.lastStamp = ""
}
