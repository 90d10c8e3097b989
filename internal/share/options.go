package share

import (
	"fmt"
	"os"
	"strings"

	"github.com/nats-io/nats.go"
)

// Options reads the credentials and TLS files of the configuration into
// NATS options.
func Options(creds, nkey, tokenFile, user, passwordFile, ca, cert, key string) ([]nats.Option, error) {
	var opts []nats.Option
	read := func(key, path string) (string, error) {
		b, err := os.ReadFile(path)
		if err != nil {
			return "", fmt.Errorf("fleet.%s: %w", key, err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	if creds != "" {
		opts = append(opts, nats.UserCredentials(creds))
	}
	if nkey != "" {
		o, err := nats.NkeyOptionFromSeed(nkey)
		if err != nil {
			return nil, fmt.Errorf("fleet.nkey_file: %w", err)
		}
		opts = append(opts, o)
	}
	if tokenFile != "" {
		t, err := read("token_file", tokenFile)
		if err != nil {
			return nil, err
		}
		opts = append(opts, nats.Token(t))
	}
	if user != "" {
		pw, err := read("password_file", passwordFile)
		if err != nil {
			return nil, err
		}
		opts = append(opts, nats.UserInfo(user, pw))
	}
	if ca != "" {
		opts = append(opts, nats.RootCAs(ca))
	}
	if cert != "" {
		opts = append(opts, nats.ClientCert(cert, key))
	}
	return opts, nil
}
