package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"sshguard-go/internal/config"
)

func newCheckConfigCmd() *cobra.Command {
	var quiet bool
	cmd := &cobra.Command{
		Use:   "check-config [FILE]",
		Short: "Validate a configuration file and print the effective configuration",
		Long: `check-config reads FILE (default /etc/sshguard-go/sshguard-go.toml) the way run
does, and prints the effective configuration (every key, defaults filled in)
with passwords, tokens and webhook URLs masked. An unknown key or a bad value
is reported with the file, the line and the key, and the exit status is 2.
Without a FILE argument, a missing default file means the built-in defaults.
The unit file runs it as ExecStartPre=, so a broken edit never replaces a
running configuration with a failed start. sshguard-go.toml(5) describes
every key, its default and, for durations, its range.`,
		Example: `  sshguard-go check-config
  sshguard-go check-config ./sshguard-go.toml
  sshguard-go check-config -q && systemctl reload sshguard-go`,
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
			} else if w := cfg.SecretWarning(); w != "" {
				fmt.Fprintln(cmd.ErrOrStderr(), "warning:", w)
			}
			if err := cfg.Check(); err != nil {
				return &exitError{2, fmt.Errorf("%s: %w", path, err)}
			}
			if quiet {
				return nil
			}
			return cfg.Print(cmd.OutOrStdout())
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print nothing when the file is valid")
	return cmd
}
