package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"sshguard-go/internal/config"
	"sshguard-go/internal/daemon"
)

func newCheckConfigCmd() *cobra.Command {
	var quiet, noSource bool
	cmd := &cobra.Command{
		Use:   "check-config [FILE]",
		Short: "Validate a configuration file and print the effective configuration",
		Long: `check-config reads FILE (default /etc/sshguard-go/sshguard-go.toml) the way run
does, and prints the effective configuration (every key, defaults filled in)
with passwords, tokens and webhook URLs masked. An unknown key or a bad value
is reported with the file, the line and the key, and the exit status is 2.
Without a FILE argument, a missing default file means the built-in defaults.

It also checks the log source as run does before it starts: the log file
(log.file, or /var/log/auth.log or /var/log/secure) exists, unless log.wait,
and this user may read it; journald, when it is the source, answers
journalctl here. --no-source leaves that out, to check a file on another
machine than the one it is for (a package build, CI).

The unit file runs it as ExecStartPre=, so a broken edit never replaces a
running configuration with a failed start. sshguard-go.toml(5) describes
every key, its default and, for durations, its range.`,
		Example: `  sshguard-go check-config
  sshguard-go check-config ./sshguard-go.toml
  sshguard-go check-config -q && systemctl reload sshguard-go
  sshguard-go check-config --no-source ./sshguard-go.toml   # not this machine's`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path, explicit := config.DefaultPath, len(args) == 1
			if explicit {
				path = args[0]
			}
			cfg, err := config.Load(path, explicit)
			if err != nil {
				return &exitError{2, err}
			}
			if cfg.Path == "" {
				fmt.Fprintf(cmd.ErrOrStderr(), "%s does not exist: the built-in defaults apply\n", path)
			}
			warn(cmd, cfg.Warnings())
			if err := cfg.Check(); err != nil {
				return &exitError{2, fmt.Errorf("%s: %w", path, err)}
			}
			if !noSource {
				if _, err := daemon.CheckSource(cmd.Context(), cfg); err != nil {
					return &exitError{2, cfg.Locate(err)}
				}
			}
			if quiet {
				return nil
			}
			return cfg.Print(cmd.OutOrStdout())
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print nothing when the file is valid")
	cmd.Flags().BoolVar(&noSource, "no-source", false, "do not check that the log source (log.file or journald) can be read here")
	return cmd
}
