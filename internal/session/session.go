// Package session builds the audit trail: it joins the log lines of one
// SSH connection (the sshd that accepted it, its children, the sftp
// server) into a session record (who, from where, how, from when to when,
// how it ended, what was transferred) and attaches the commands auditd
// logged for its audit session id. The Tracker holds the open sessions;
// the daemon and the offline "sessions FILE" feed it the same way.
package session

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// How a session ended.
const (
	// EndLogout: the client closed the session ("Received disconnect ...:
	// 11: disconnected by user").
	EndLogout = "logout"
	// EndDisconnect: the connection ended without a logout ("Disconnected
	// from user", "Connection closed|reset by user" alone).
	EndDisconnect = "disconnect"
	// EndTimeout: the client stopped answering ("Timeout, client not
	// responding", ClientAliveCountMax).
	EndTimeout = "timeout"
	// EndKilled: the session's sshd ended with no word from the
	// connection: only PAM's "session closed" (killed on the server; at
	// LogLevel INFO a client that vanished looks the same), or, without
	// PAM, its process gone.
	EndKilled = "killed"
	// EndRestart: the daemon was restarted while the session was open and
	// found it gone without its end in the log it read.
	EndRestart = "daemon_restart"
	// EndUnknown: a new session of the same sshd process began before this
	// one's end was logged.
	EndUnknown = "unknown"
)

// Transfer is one file an sftp (or scp over sftp) session opened and
// closed, with the bytes sshd read from it and wrote to it.
type Transfer struct {
	Time         time.Time `json:"time"`
	Path         string    `json:"path"`
	BytesRead    int64     `json:"bytes_read"`
	BytesWritten int64     `json:"bytes_written"`
}

// Command is one program the session ran, as auditd logged its execve.
type Command struct {
	Time time.Time `json:"time"`
	Argv []string  `json:"argv"`
	Cwd  string    `json:"cwd"`
	Exit int64     `json:"exit"` // execve's result: 0, or the negative errno
	// CutBytes is how many bytes of its arguments were not kept (an
	// argument over 1 KiB, argv over 4 KiB; the arguments past the 64th
	// are the last "... (N more)").
	CutBytes int `json:"cut_bytes,omitempty"`
}

// Size is what c counts against the audit trail's bounds: its text and
// a fixed share for its time, exit and encoding (about what it takes
// stored).
func (c *Command) Size() int64 {
	n := int64(len(c.Cwd)) + 64
	for _, a := range c.Argv {
		n += int64(len(a)) + 3
	}
	return n
}

// Size is what t counts against the audit trail's bounds.
func (t *Transfer) Size() int64 { return int64(len(t.Path)) + 96 }

// Bounds of one session's record, and of the audit trail's day. Whatever
// the commands, a session's record stays under MaxSessionCommandBytes +
// MaxSessionTransferBytes (plus its fixed fields), a user's day of
// sessions under MaxUserDayBytes and everyone's under MaxDayBytes; what
// is past them is dropped and counted in the session it belonged to
// (commands_more and commands_bytes_more, transfers_more and
// transfers_bytes_more).
const (
	MaxTransfers            = 1000
	MaxCommands             = 5000
	MaxSessionCommandBytes  = 256 << 10
	MaxSessionTransferBytes = 128 << 10
	MaxUserDayBytes         = 8 << 20
	MaxDayBytes             = 32 << 20
	maxArgv                 = 64   // arguments kept per command
	maxArg                  = 1024 // bytes kept per argument
	maxArgvBytes            = 4096 // bytes of arguments kept per command
)

// Session is one SSH session.
type Session struct {
	Host      string     `json:"host"`
	PID       int        `json:"pid"` // the sshd (or sshd-session) that accepted it
	User      string     `json:"user"`
	IP        string     `json:"ip"`
	Port      int        `json:"port"`
	Method    string     `json:"method"`
	Key       string     `json:"key"` // key type and fingerprint
	Start     time.Time  `json:"start"`
	End       *time.Time `json:"end"` // null while open
	Duration  float64    `json:"duration_s"`
	EndReason string     `json:"end_reason"` // "" while open
	Active    bool       `json:"active"`
	AuditID   int64      `json:"audit_session,omitempty"` // auditd's ses= (pam_loginuid)

	Transfers         []Transfer `json:"transfers"`
	TransfersMore     int        `json:"transfers_more,omitempty"`       // transfers dropped (over the bounds)
	TransferBytesMore int64      `json:"transfers_bytes_more,omitempty"` // and their size
	Commands          []Command  `json:"commands"`
	CommandsMore      int        `json:"commands_more,omitempty"`       // commands dropped (over the bounds)
	CommandBytesMore  int64      `json:"commands_bytes_more,omitempty"` // and their size

	// Alerted are the alerts raised for it ("transfer", "long"): once each.
	Alerted []string `json:"alerted,omitempty"`

	hint     string    // how the connection said it ended, before the end
	lastSeen time.Time // its last line (for the sweep)
	sftp     bool      // an sftp server was joined to it
	Restored bool      `json:"-"` // read back from the database at start

	ncmd      int   // commands kept (in Commands, or handed to OnCommand)
	cmdBytes  int64 // and their size
	xferBytes int64 // size of the transfers kept
}

// Raised reports whether the alert what was raised for s.
func (s *Session) Raised(what string) bool { return slices.Contains(s.Alerted, what) }

// Raise notes that the alert what was raised for s.
func (s *Session) Raise(what string) { s.Alerted = append(s.Alerted, what) }

// LastSeen is when a line of s came last.
func (s *Session) LastSeen() time.Time { return s.lastSeen }

// Bytes is what the session's transfers moved, both ways.
func (s *Session) Bytes() int64 {
	var n int64
	for _, t := range s.Transfers {
		n += t.BytesRead + t.BytesWritten
	}
	return n
}

// Marshal encodes s for the state database.
func (s *Session) Marshal() []byte {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err) // plain values only
	}
	return b
}

// Unmarshal decodes a stored session.
func Unmarshal(b []byte) (*Session, error) {
	s := &Session{}
	if err := json.Unmarshal(b, s); err != nil {
		return nil, err
	}
	if s.Transfers == nil {
		s.Transfers = []Transfer{}
	}
	if s.Commands == nil {
		s.Commands = []Command{}
	}
	s.count()
	return s, nil
}

// count sets what s keeps against its bounds from its lists.
func (s *Session) count() {
	s.ncmd, s.cmdBytes, s.xferBytes = len(s.Commands), 0, 0
	for i := range s.Commands {
		s.cmdBytes += s.Commands[i].Size()
	}
	for i := range s.Transfers {
		s.xferBytes += s.Transfers[i].Size()
	}
}

// Chunk is commands appended to a stored session's record (the daemon
// writes a session's commands as they come, without rewriting the
// record), with the commands dropped meanwhile.
type Chunk struct {
	Commands  []Command `json:"c,omitempty"`
	More      int       `json:"more,omitempty"`
	MoreBytes int64     `json:"more_bytes,omitempty"`
}

// Marshal encodes c for the state database.
func (c *Chunk) Marshal() []byte {
	b, err := json.Marshal(c)
	if err != nil {
		panic(err) // plain values only
	}
	return b
}

// UnmarshalChunks decodes a stored session record and the chunks of
// commands appended to it (none: a record written whole, as before
// chunks).
func UnmarshalChunks(record []byte, chunks [][]byte) (*Session, error) {
	s, err := Unmarshal(record)
	if err != nil {
		return nil, err
	}
	if err := s.eachChunk(chunks, func(c *Chunk) {
		s.Commands = append(s.Commands, c.Commands...)
		s.CommandsMore += c.More
		s.CommandBytesMore += c.MoreBytes
	}); err != nil {
		return nil, err
	}
	s.count()
	return s, nil
}

// eachChunk decodes s's chunks of commands, in order, for f.
func (s *Session) eachChunk(chunks [][]byte, f func(*Chunk)) error {
	for _, b := range chunks {
		var c Chunk
		if err := json.Unmarshal(b, &c); err != nil {
			return fmt.Errorf("a chunk of commands of the session of %s at %s: %w", s.User, s.Start.Format(time.RFC3339), err)
		}
		f(&c)
	}
	return nil
}

// Merge is the JSON of a stored record with its chunks of commands (the
// record itself when it has none).
func Merge(record []byte, chunks [][]byte) ([]byte, error) {
	if len(chunks) == 0 {
		return record, nil
	}
	s, err := UnmarshalChunks(record, chunks)
	if err != nil {
		return nil, err
	}
	return s.Marshal(), nil
}

// DecodeAll decodes stored sessions (the control API's answer).
func DecodeAll(raw []json.RawMessage) ([]*Session, error) {
	list := make([]*Session, 0, len(raw))
	for _, r := range raw {
		s, err := Unmarshal(r)
		if err != nil {
			return nil, fmt.Errorf("a session record: %w", err)
		}
		list = append(list, s)
	}
	return list, nil
}

// end closes s at at for why.
func (s *Session) end(at time.Time, why string) {
	if at.Before(s.Start) {
		at = s.Start
	}
	s.End, s.EndReason, s.Active = &at, why, false
	s.Duration = at.Sub(s.Start).Seconds()
}

// UnmarshalLive decodes a stored open session to follow it again: its
// record as it was written (the commands appended since stay in their
// chunks, not in memory), with what its chunks kept counted against its
// bounds.
func UnmarshalLive(record []byte, chunks [][]byte) (*Session, error) {
	s, err := Unmarshal(record)
	if err != nil {
		return nil, err
	}
	if err := s.eachChunk(chunks, func(c *Chunk) {
		s.ncmd += len(c.Commands)
		for i := range c.Commands {
			s.cmdBytes += c.Commands[i].Size()
		}
	}); err != nil {
		return nil, err
	}
	return s, nil
}
