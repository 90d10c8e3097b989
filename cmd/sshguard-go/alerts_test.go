package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"sshguard-go/internal/alerttest"
	"sshguard-go/internal/control"
	"sshguard-go/internal/testkit"
)

// cli runs the sshguard-go CLI (the test binary self) with the socket and
// database of the daemon in dir.
func cli(self, dir string, args ...string) (string, error) {
	cmd := exec.Command(self, append(args, "--socket", dir+"/ctl.sock", "--db", dir+"/state.db")...)
	cmd.Env = append(os.Environ(), "SG_MAIN=1")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// startReady starts the daemon cmd with a systemd notify socket in dir
// and waits up to 15 s for its READY=1, which it sends once the log
// source has fixed where it reads from (so the test's next line counts).
func startReady(tb testing.TB, cmd *exec.Cmd, dir string) {
	tb.Helper()
	path := dir + "/notify.sock"
	os.Remove(path)
	notify, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		tb.Fatal(err)
	}
	defer notify.Close()
	cmd.Env = append(cmd.Env, "NOTIFY_SOCKET="+path)
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	notify.SetReadDeadline(time.Now().Add(15 * time.Second))
	buf := make([]byte, 256)
	n, err := notify.Read(buf)
	if err != nil || !strings.Contains(string(buf[:n]), "READY=1") {
		b, _ := os.ReadFile(dir + "/daemon.log")
		tb.Fatalf("no READY=1 from the daemon (%v, %q):\n%s", err, buf[:n], b)
	}
}

// waitControl waits up to 5 s for the daemon's control socket in dir, and
// fails tb with the daemon's log if it does not answer.
func waitControl(tb testing.TB, dir string) {
	tb.Helper()
	testkit.Eventually(tb, 5*time.Second, "the daemon's control socket", func() (bool, string) {
		if _, err := control.Dial(dir + "/ctl.sock"); err == nil {
			return true, ""
		}
		b, _ := os.ReadFile(dir + "/daemon.log")
		return false, string(b)
	})
}

func TestAlertTestCommand(t *testing.T) {
	s := alerttest.StartSMTP(t, alerttest.Options{})
	tw := alerttest.StartTwilio(t)
	dir := t.TempDir()
	p := alerttest.WriteConfig(t, dir, s, fmt.Sprintf(`[alerts.sms]
account_sid = %q
auth_token = %q
from = "+15005550006"
to = ["+15551230001"]
base_url = %q
`, tw.SID, tw.Token, tw.URL))
	out, _, err := run(t, "", "alert", "test", "--config", p)
	if err != nil || !strings.Contains(out, "email: sent") || !strings.Contains(out, "sms: sent") {
		t.Fatalf("alert test: %v\n%s", err, out)
	}
	if m := s.Wait(1, 5*time.Second)[0]; !strings.Contains(m.Header.Get("Subject"), "[web-01] This is a test message") {
		t.Errorf("test mail subject %q", m.Header.Get("Subject"))
	}
	if sms := tw.Messages(); len(sms) != 1 || !strings.Contains(sms[0].Body, "test message") {
		t.Errorf("test SMS %+v", sms)
	}
	tw.FailNext(400, 21211, "The 'To' number +15551230001 is not a valid phone number.")
	out, _, err = run(t, "", "alert", "test", "--config", p, "--channel", "sms")
	if code := exitCode(err); code != 1 || !strings.Contains(out, "sms: FAILED") || !strings.Contains(out, "21211") || strings.Contains(out, "email") {
		t.Fatalf("failing sms: exit %d\n%s", code, out)
	}
	s.Stop()
	out, _, err = run(t, "", "alert", "test", "--config", p, "--channel", "email")
	if code := exitCode(err); code != 1 || !strings.Contains(out, "email: FAILED") || !strings.Contains(out, "connection refused") {
		t.Fatalf("SMTP down: exit %d\n%s", code, out)
	}
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exitError); ok {
		return ee.code
	}
	return -1
}
