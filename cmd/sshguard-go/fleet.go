package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"sshguard-go/internal/config"
	"sshguard-go/internal/control"
	"sshguard-go/internal/fleet"
	"sshguard-go/internal/share"
)

func newFleetCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "fleet", Short: "See many hosts at once: their APIs, summed"}
	var hosts string
	var date string
	var asJSON bool
	summary := &cobra.Command{
		Use:   "summary",
		Short: "Print every host's numbers of a day and the fleet's total",
		Long: `fleet summary asks the API of every host in hosts.toml (at most 32 at once,
each within its timeout) for a day and prints a row per host and the total
over the hosts that answered. A host that is down, slow or answers garbage is
listed with the reason; the exit status is then 1.`,
		Example: `  sshguard-go fleet summary --hosts /etc/sshguard-go/hosts.toml --date 2026-11-28`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := fleet.Load(hosts)
			if err != nil {
				return err
			}
			warn(cmd, config.SecretWarnings(f.SecretFiles()))
			fl, err := fleet.New(f)
			if err != nil {
				return err
			}
			s, err := fl.Summary(cmd.Context(), date)
			if err != nil {
				return err
			}
			if asJSON {
				if err := writeJSON(cmd.OutOrStdout(), s); err != nil {
					return err
				}
			} else {
				fleet.WriteTable(cmd.OutOrStdout(), s)
			}
			if s.Failed > 0 {
				return &exitError{1, fmt.Errorf("%d of %d hosts did not answer", s.Failed, len(s.Hosts))}
			}
			return nil
		},
	}
	summary.Flags().StringVar(&date, "date", time.Now().Format(time.DateOnly), "the day, YYYY-MM-DD")
	summary.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	listen := config.APIConfig{AsFlags: true}
	var nats fleet.NATS
	serve := &cobra.Command{
		Use:   "serve",
		Short: "Serve the fleet dashboard and the fleet's API",
		Long: `fleet serve serves the fleet dashboard at /, the fleet's summary at
/api/v1/fleet/summary?date=YYYY-MM-DD, and each host's dashboard at
/hosts/NAME/: the aggregator's own copy of the page, which reads the host's API
JSON through /hosts/NAME/api/v1/..., asked with the host's credentials from
hosts.toml (the browser needs no access to the hosts). Nothing but that JSON is
ever asked of a host or passed on from it: no page or script of a host's runs
on the aggregator's origin. With --nats it asks no host: every daemon with
fleet sharing puts its last days in the NATS key-value bucket
SSHGUARD_SUMMARIES every minute, and the view is built from it (for fleets of
thousands): a host's page is then what its summary says, and with --hosts
too the hosts listed there have their own dashboards as well, asked of their
APIs. A host that is down has a page saying so, with its last summary's time
and the error (/hosts/NAME/status). Answers are cached for the file's "cache"
setting. Off loopback it needs --token-file or client certificates, as the
daemon's API does.`,
		Example: `  sshguard-go fleet serve --hosts /etc/sshguard-go/hosts.toml --listen 127.0.0.1:9700
  sshguard-go fleet serve --nats nats://nats.example.net:4222 --nats-creds /etc/sshguard-go/fleet.creds`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := listen.Check(); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			var hostsFile *fleet.File // none with --nats alone: the view from the bucket, no host's dashboard
			if nats.URL == "" || cmd.Flags().Changed("hosts") {
				var err error
				if hostsFile, err = fleet.Load(hosts); err != nil {
					return err
				}
			}
			warn(cmd, config.SecretWarnings(fleet.ServeSecrets(listen, nats, hostsFile)))
			fl, err := fleet.OpenView(ctx, hostsFile, nats)
			if err != nil {
				return err
			}
			return fl.ServeOn(ctx, listen, func(url string) {
				fmt.Fprintf(cmd.ErrOrStderr(), "fleet view at %s\n", url)
			})
		},
	}
	f := serve.Flags()
	f.StringVar(&listen.Listen, "listen", "127.0.0.1:9700", "address to serve on")
	f.StringVar(&listen.TokenFile, "token-file", "", "a file holding the bearer token clients must send")
	f.StringVar(&listen.TLSCert, "tls-cert", "", "serve HTTPS with this certificate")
	f.StringVar(&listen.TLSKey, "tls-key", "", "and this key")
	f.StringVar(&listen.ClientCA, "client-ca", "", "ask clients for a certificate signed by this CA")
	f.StringVar(&nats.URL, "nats", "", "build the view from the hosts' summaries in NATS (fleet sharing on) instead of asking each host in --hosts")
	f.StringVar(&nats.CredsFile, "nats-creds", "", "NATS credentials file")
	f.StringVar(&nats.TokenFile, "nats-token-file", "", "a file holding the NATS token")
	f.StringVar(&nats.CAFile, "nats-ca", "", "the CA of the NATS server's certificate")
	summary.Flags().StringVar(&hosts, "hosts", "/etc/sshguard-go/hosts.toml", "the hosts file")
	serve.Flags().StringVar(&hosts, "hosts", "/etc/sshguard-go/hosts.toml", "the hosts file")
	cmd.AddCommand(summary, serve, newFleetStatusCmd(), newFleetNATSConfigCmd())
	return cmd
}

func newFleetStatusCmd() *cobra.Command {
	var o daemonOpts
	var asJSON bool
	cmd := readCmd("status [--json]", "The running daemon's ban sharing: server, stream, lag, bans received per host",
		"  sudo sshguard-go fleet status", cobra.NoArgs, &o,
		func(ctx context.Context, b control.Backend, out io.Writer, _ []string) error {
			raw, err := b.Fleet(ctx)
			if err != nil {
				return err
			}
			if asJSON {
				_, err := fmt.Fprintf(out, "%s\n", raw)
				return err
			}
			var st *share.Status
			if err := json.Unmarshal(raw, &st); err != nil {
				return err
			}
			share.WriteStatus(out, st)
			return nil
		})
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
