package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/crypto/bcrypt"

	"sshguard-go/internal/config"
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
its attempts, its summary), to use the JetStream API only for the stream of
bans, its own consumer and the summaries' bucket, and to read replies only on
its own inbox: a host that is broken into cannot ban in another's name. Each
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
			var users []string
			for _, h := range hosts {
				if !config.ValidFleetName(h) {
					return fmt.Errorf("host %q: want letters, digits, '-' or '_' (it is a subject token)", h)
				}
				pw := fmt.Sprintf("%q", "BCRYPT-HASH-OF-"+h+"-PASSWORD")
				if passwords != "" {
					b, err := os.ReadFile(filepath.Join(passwords, h))
					if err != nil {
						return err
					}
					hash, err := bcrypt.GenerateFromPassword([]byte(strings.TrimSpace(string(b))), 11)
					if err != nil {
						return err
					}
					pw = fmt.Sprintf("%q", hash)
				}
				users = append(users, indent(share.NATSUser(stream, h, pw), "    "))
			}
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "# sshguard-go hosts (stream %s), from sshguard-go fleet nats-config\nauthorization {\n  users = [\n%s  ]\n}\n",
				stream, strings.Join(users, ""))
			return err
		},
	}
	cmd.Flags().StringArrayVar(&hosts, "host", nil, "a host's fleet.name (repeat for each)")
	cmd.Flags().StringVar(&stream, "stream", "SSHGUARD_BANS", "fleet.stream")
	cmd.Flags().StringVar(&passwords, "passwords", "", "a directory holding each host's password in a file named as the host")
	return cmd
}

func indent(s, by string) string {
	lines := strings.SplitAfter(s, "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = by + l
		}
	}
	return strings.Join(lines, "")
}
