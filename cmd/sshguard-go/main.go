// Command sshguard-go protects a Linux server from SSH attacks. This
// release provides the offline analyser: scan and report.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
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
		Use:           "sshguard-go",
		Short:         "Protect a Linux server from SSH attacks",
		Long:          "sshguard-go reads sshd's log, recognises every failed attempt, probe and login,\nand (from the daemon release on) bans attackers in the kernel.",
		Version:       fmt.Sprintf("%s (commit %s, built %s)", version, commit, date),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newScanCmd(), newReportCmd(), newRunCmd(), newListCmd(), newBanCmd(), newUnbanCmd(), newAllowCmd(), newStatusCmd(), newAlertsCmd(), newAlertCmd(), newCheckConfigCmd())
	return root
}

func main() {
	err := newRootCmd().Execute()
	if err == nil {
		return
	}
	fmt.Fprintln(os.Stderr, "sshguard-go:", err)
	var ee *exitError
	if errors.As(err, &ee) {
		os.Exit(ee.code)
	}
	os.Exit(2)
}
