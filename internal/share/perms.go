package share

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sshguard-go/internal/config"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// Per-host NATS credentials: a host may publish only on its own subjects
// (its bans, its attempts, its summary) and use the JetStream API only for
// the stream of bans, its own durable consumer and the summaries' bucket;
// it may make the fleet's streams but never change one (a stream's
// configuration can make the server publish in another host's name: see
// distrust); it reads replies only on its own inbox prefix. A compromised
// host can then neither ban in another's name nor read or steer another's
// consumer. HostPermissions is the one list: the README's example and
// `sshguard-go fleet nats-config` print it, and the tests run a server
// with it.

// InboxPrefix is where host's replies come (its JetStream API answers,
// acknowledgements and pulled messages): only it may subscribe there.
func InboxPrefix(host string) string { return "_INBOX.sshguard." + host }

// Permissions are the subjects a host may publish and subscribe to.
type Permissions struct {
	Publish, Subscribe []string
}

// HostPermissions are host's permissions for the stream of bans stream.
func HostPermissions(stream, host string) Permissions {
	kv := "KV_" + SummaryBucket
	durable := "host-" + host
	cs := countStreamName(stream)
	return Permissions{
		Publish: []string{
			subjectPrefix + host,                                       // its bans and unbans
			attemptsPrefix + host,                                      // its attempts (fleet-wide counting)
			"$KV." + SummaryBucket + "." + host,                        // its summary
			"$JS.API.STREAM.INFO." + stream,                            // the stream: read,
			"$JS.API.STREAM.CREATE." + stream,                          // made by the first host (never changed: see distrust),
			"$JS.API.CONSUMER.INFO." + stream + "." + durable,          // its consumer: read,
			"$JS.API.CONSUMER.CREATE." + stream + "." + durable + ".>", // made,
			"$JS.API.CONSUMER.DELETE." + stream + "." + durable,        // made again,
			"$JS.API.CONSUMER.MSG.NEXT." + stream + "." + durable,      // pulled,
			"$JS.ACK." + stream + "." + durable + ".>",                 // acknowledged
			"$JS.API.INFO",              // the account's JetStream (asked before making the bucket)
			"$JS.API.STREAM.INFO." + kv, // the summaries' bucket
			"$JS.API.STREAM.CREATE." + kv,
			// Partitioned fleet-wide counting: its attempts of every
			// partition, the stream of attempts, and the partitions'
			// consumers, which every host pulls on (the server pins one).
			partPrefix + "*." + host,
			"$JS.API.STREAM.INFO." + cs,
			"$JS.API.STREAM.CREATE." + cs,
			"$JS.API.CONSUMER.INFO." + cs + ".*",
			// a partition's consumer, made by the first host: only with
			// a partition's subjects for its filter
			"$JS.API.CONSUMER.CREATE." + cs + ".*." + partPrefix + "*.*",
			"$JS.API.CONSUMER.MSG.NEXT." + cs + ".*",
			"$JS.ACK." + cs + ".>",
		},
		Subscribe: []string{
			InboxPrefix(host) + ".>",
			attemptsPrefix + ">", // the others' attempts (fleet-wide counting)
		},
	}
}

// NATSUser renders host's entry for a nats-server authorization block
// (users = [ ... ]), with password as given (a bcrypt hash, or an
// environment variable's reference such as $SSHGUARD_A).
func NATSUser(stream, host, password string) string {
	p := HostPermissions(stream, host)
	var b strings.Builder
	fmt.Fprintf(&b, "{\n  user: %q\n  password: %s\n  permissions: {\n", host, password)
	list := func(what string, subjects []string) {
		fmt.Fprintf(&b, "    %s: { allow: [\n", what)
		for _, s := range subjects {
			fmt.Fprintf(&b, "      %q\n", s)
		}
		b.WriteString("    ] }\n")
	}
	list("publish", p.Publish)
	list("subscribe", p.Subscribe)
	b.WriteString("  }\n}\n")
	return b.String()
}

// Authorization is a nats-server authorization block with a user for each
// of hosts (fleet.name) of the stream of bans stream. With passwordDir,
// each host's password is read from passwordDir/NAME (the host's
// fleet.password_file) and given as a bcrypt hash; else a placeholder
// stands where the hash goes.
func Authorization(stream string, hosts []string, passwordDir string) (string, error) {
	if len(hosts) == 0 {
		return "", errors.New("no host")
	}
	var users []string
	for _, h := range hosts {
		if !config.ValidFleetName(h) {
			return "", fmt.Errorf("host %q: want letters, digits, '-' or '_' (it is a subject token)", h)
		}
		pw := fmt.Sprintf("%q", "BCRYPT-HASH-OF-"+h+"-PASSWORD")
		if passwordDir != "" {
			b, err := os.ReadFile(filepath.Join(passwordDir, h))
			if err != nil {
				return "", err
			}
			hash, err := bcrypt.GenerateFromPassword([]byte(strings.TrimSpace(string(b))), 11)
			if err != nil {
				return "", err
			}
			pw = fmt.Sprintf("%q", hash)
		}
		users = append(users, indent(NATSUser(stream, h, pw), "    "))
	}
	return fmt.Sprintf("# sshguard-go hosts (stream %s), from sshguard-go fleet nats-config\nauthorization {\n  users = [\n%s  ]\n}\n",
		stream, strings.Join(users, "")), nil
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
