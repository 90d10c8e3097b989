package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"sshguard-go/internal/daemon"
	"sshguard-go/internal/store"
)

func newDBCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "db", Short: "Maintain the state database"}
	var o daemonOpts
	compact := &cobra.Command{
		Use:   "compact",
		Short: "Give the space the database no longer uses back to the file system",
		Long: `db compact rewrites the state database into a new file holding only what
is in use, and replaces the old file. The daemon prunes the database every
hour by the [state] retention settings, but a database file never shrinks by
itself: after a wave of bans has expired and been pruned, compact makes the
file small again. The daemon must be stopped (it holds the database).`,
		Example: `  sudo systemctl stop sshguard-go && sudo sshguard-go db compact && sudo systemctl start sshguard-go`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := adminConfig(cmd, &o)
			if err != nil {
				return err
			}
			before, after, err := store.Compact(cfg.State.DB, time.Second)
			if errors.Is(err, store.ErrLocked) {
				return &exitError{1, fmt.Errorf("%w: stop it first (systemctl stop sshguard-go), then compact and start it again", err)}
			}
			if errors.Is(err, store.ErrCorrupt) {
				return &exitError{1, err} // as the other commands
			}
			if err != nil {
				return daemon.RootHint(err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %.1f MB -> %.1f MB\n", cfg.State.DB, float64(before)/1e6, float64(after)/1e6)
			return nil
		},
	}
	addAdminFlags(compact, &o)
	cmd.AddCommand(compact)
	return cmd
}
