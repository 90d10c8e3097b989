package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"sshguard-go/internal/share"
)

func newFleetNATSConfigCmd() *cobra.Command {
	var hosts []string
	var stream, passwords string
	cmd := &cobra.Command{
		Use:   "nats-config --host NAME [--host NAME...]",
		Short: "Print a nats-server authorization block: each host may publish only its own bans",
		Long: `nats-config prints the users of a nats-server authorization block, one per
host of the fleet, each allowed to publish only on its own subjects (its bans,
its attempts, its summary, its fleet-wide counts), to use the JetStream API
only for the stream of bans, its own consumer, the summaries' bucket and the
fleet-wide count's stream and its shared consumers, and to read replies only
on its own inbox: a host that is broken into cannot ban in another's name. Each
host then sets fleet.user to its name and fleet.password_file.

With --passwords DIR, each host's password is read from DIR/NAME (the file
the host has as fleet.password_file) and written as a bcrypt hash; else a
placeholder stands where the hash goes.`,
		Example: `  sshguard-go fleet nats-config --host web-01 --host web-02 --passwords /root/fleet-passwords`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(hosts) == 0 {
				return fmt.Errorf("no --host")
			}
			block, err := share.Authorization(stream, hosts, passwords)
			if err != nil {
				return err
			}
			_, err = fmt.Fprint(cmd.OutOrStdout(), block)
			return err
		},
	}
	cmd.Flags().StringArrayVar(&hosts, "host", nil, "a host's fleet.name (repeat for each)")
	cmd.Flags().StringVar(&stream, "stream", "SSHGUARD_BANS", "fleet.stream")
	cmd.Flags().StringVar(&passwords, "passwords", "", "a directory holding each host's password in a file named as the host")
	return cmd
}
