// Command sshguard-go protects a Linux server from SSH attacks: the daemon
// (run), the commands that manage it (list, ban, unban, allow, alerts,
// status), and the offline analyser (scan, report).
package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"sshguard-go/internal/textsafe"
)

// Set at build time with -ldflags "-X main.version=... -X main.commit=... -X main.date=...".
var (
	version = "dev"
	commit  = "unknown"
	date    = "unknown"
)

// exitError carries an exit status through cobra.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "sshguard-go",
		Short: "Protect a Linux server from SSH attacks",
		Long: `sshguard-go reads sshd's log, recognises every failed attempt, probe and login,
bans attackers in the kernel (an nftables set whose elements expire by
themselves), and tells the administrator by email, SMS or webhook about every
ban and every successful login. The same binary lists and lifts bans, edits
the allowlist, and analyses old logs offline.

Start the daemon with "sshguard-go run" (or the sshguard-go systemd unit);
its configuration is /etc/sshguard-go/sshguard-go.toml (see check-config).`,
		Example: `  sudo sshguard-go run --dry-run        # see what it would ban, touch no firewall
  sudo sshguard-go list                 # active bans
  sudo sshguard-go unban 203.0.113.7    # lift one
  sshguard-go report /var/log/auth.log  # who attacked, offline`,
		Version:       fmt.Sprintf("%s (commit %s, built %s)", version, commit, date),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newScanCmd(), newReportCmd(), newRunCmd(), newListCmd(), newBanCmd(), newUnbanCmd(), newAllowCmd(), newStatusCmd(), newAlertsCmd(), newAlertCmd(), newCheckConfigCmd(), newDBCmd(), newFleetCmd(), newSessionsCmd(), newHistoryCmd(), newManCmd())
	// A flag that does not parse, or a value a flag does not take, is a
	// usage error: exit status 2 (subcommands ask their parents for this).
	root.SetFlagErrorFunc(flagError)
	addCompletions(root)
	return root
}

func main() {
	err := newRootCmd().Execute()
	if err == nil {
		return
	}
	// An error may quote a daemon, a server or a log: each of its lines
	// made safe for the terminal.
	lines := strings.Split(err.Error(), "\n")
	for i, l := range lines {
		lines[i] = textsafe.String(l)
	}
	fmt.Fprintln(os.Stderr, "sshguard-go:", strings.Join(lines, "\n"))
	var ee *exitError
	if errors.As(err, &ee) {
		os.Exit(ee.code)
	}
	os.Exit(2)
}
