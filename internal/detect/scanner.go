package detect

import "time"

// Stats counts what a Scanner has seen.
type Stats struct {
	Lines        int64                 // lines read
	SSHDLines    int64                 // lines whose tag is one of sshd's programs
	Unrecognised int64                 // sshd lines no shape matched
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
	// OnUnrecognised, when set, receives each line of an sshd program
	// that no shape matched (for debug logging and tests).
	OnUnrecognised func(text string)

	rec     Record        // scratch record, reused for every line
	out     func(*Record) // the caller's emit for the current call
	countFn func(*Record) // s.count as a func value, made once
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
	s.Stats.Lines++
	h, ok := s.Header.Parse(text)
	if !ok {
		if h.Untrusted {
			s.Stats.Untrusted++
		}
		return
	}
	if h.Program != "" {
		s.Stats.SSHDLines++
	}
	r := &s.rec
	*r = Record{}
	if !Classify(h.Msg, &r.Event) {
		if h.Program != "" {
			s.Stats.Unrecognised++
			if s.OnUnrecognised != nil {
				s.OnUnrecognised(text)
			}
		}
		return
	}
	r.Time, r.Host, r.Program, r.PID = h.Time, h.Host, h.Program, h.PID
	r.Source, r.Line, r.Text = source, n, text
	if s.countFn == nil {
		s.countFn = s.count
	}
	s.out = emit
	s.Corr.Add(r, s.countFn)
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
