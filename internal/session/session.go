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
}

// Bounds of one session's record.
const (
	MaxTransfers = 1000
	MaxCommands  = 5000
	maxArgv      = 64   // arguments kept per command
	maxArg       = 1024 // bytes kept per argument
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

	Transfers     []Transfer `json:"transfers"`
	TransfersMore int        `json:"transfers_more,omitempty"`
	Commands      []Command  `json:"commands"`
	CommandsMore  int        `json:"commands_more,omitempty"`

	// Alerted are the alerts raised for it ("transfer", "long"): once each.
	Alerted []string `json:"alerted,omitempty"`

	hint     string    // how the connection said it ended, before the end
	lastSeen time.Time // its last line (for the sweep)
	sftp     bool      // an sftp server was joined to it
	Restored bool      `json:"-"` // read back from the database at start
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
	return s, nil
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
