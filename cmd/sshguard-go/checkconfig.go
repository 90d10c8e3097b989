package main

import (
	"fmt"
	"io"
	"os"

	"github.com/pelletier/go-toml/v2"
	"github.com/spf13/cobra"
)

// printConfig writes cfg as TOML with its secrets masked.
func printConfig(w io.Writer, cfg Config) error {
	cfg.Alerts = cfg.Alerts.masked()
	enc := toml.NewEncoder(w).SetIndentTables(false)
	return enc.Encode(cfg)
}

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
running configuration with a failed start.`,
		Example: `  sshguard-go check-config
  sshguard-go check-config ./sshguard-go.toml
  sshguard-go check-config -q && systemctl reload sshguard-go`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path, explicit := DefaultConfig, len(args) == 1
			if explicit {
				path = args[0]
			}
			cfg := defaultConfig()
			if _, err := os.Stat(path); err == nil || explicit {
				var err error
				if cfg, err = LoadConfig(path); err != nil {
					return &exitError{2, err}
				}
				warnSecrets(path, cfg, func(msg string) { fmt.Fprintln(cmd.ErrOrStderr(), "warning:", msg) })
			} else {
				fmt.Fprintf(cmd.ErrOrStderr(), "%s does not exist: the built-in defaults apply\n", path)
			}
			if _, err := cfg.Alerts.channels(); err != nil {
				return &exitError{2, fmt.Errorf("%s: alerts: %w", path, err)}
			}
			if quiet {
				return nil
			}
			return printConfig(cmd.OutOrStdout(), cfg)
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print nothing when the file is valid")
	return cmd
}
