package control

import (
	"strings"
	"testing"
	"time"
)

// TestWriteStatus: what status prints, with the bans by origin sorted and
// every string from the log or a peer made safe for a terminal.
func TestWriteStatus(t *testing.T) {
	var b strings.Builder
	WriteStatus(&b, Status{
		Started:      time.Now().Add(-time.Hour),
		Sources:      []SourceStatus{{Name: "/var/log/auth.log\x1b[2J", Position: "inode 5 offset 10", Lines: 7, Behind: 3}},
		Events:       map[string]int64{"failed_password": 4, "evil\x1b]0;x\x07": 1},
		BansByOrigin: map[string]int{"detected": 3, "admin": 1},
		Policy:       Policy{Threshold: 5, Backend: "nftables", Table: "sshguard-go"},
	})
	out := b.String()
	for _, want := range []string{
		"running since ",
		"source /var/log/auth.log\\x1b[2J: reading, 7 lines, at inode 5 offset 10, 3 bytes behind\n",
		"active bans 0 (admin 1, detected 3), made since start 0,",
		"  failed_password 4\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}
	if strings.ContainsAny(out, "\x1b\x07") {
		t.Errorf("a control character printed:\n%q", out)
	}
}

func TestDamagedWarning(t *testing.T) {
	for _, tc := range []struct {
		d    Damaged
		want string
	}{
		{Damaged{}, ""},
		{Damaged{Count: 1, Keys: []string{"10.2.0.7/32"}}, "1 ban record in the database does not decode (left out): 10.2.0.7/32; `sshguard-go unban PREFIX` deletes the record of PREFIX"},
		{Damaged{Count: 3, Keys: []string{"10.2.0.7/32", "\x1b[2J"}}, "3 ban records in the database do not decode (left out): 10.2.0.7/32, \\x1b[2J and 1 more; "},
	} {
		if got := tc.d.Warning(); !strings.HasPrefix(got, tc.want) || (tc.want == "") != (got == "") {
			t.Errorf("%+v: %q, want %q", tc.d, got, tc.want)
		}
	}
}

func TestUntil(t *testing.T) {
	if got := (BanInfo{}).Until(); got != "permanent" {
		t.Errorf("no expiry: %q", got)
	}
	at := time.Date(2026, 12, 5, 16, 0, 0, 0, time.UTC)
	if got, want := (BanInfo{Expires: at}).Until(), "until "+at.Local().Format("2006-01-02 15:04:05 MST"); got != want {
		t.Errorf("%q, want %q", got, want)
	}
}
