package share

import (
	"fmt"
	"os"
	"strings"

	"github.com/nats-io/nats.go"
)

// Credentials names the files of the configuration ([fleet]) that prove
// who a host is to the NATS server, and the server's CA; "" leaves one
// out. PasswordFile is read only with User, KeyFile only with CertFile.
type Credentials struct {
	CredsFile    string // a NATS .creds file (JWT and nkey seed)
	NKeyFile     string // an nkey seed file
	TokenFile    string // a file holding the token
	User         string // with PasswordFile
	PasswordFile string
	CAFile       string // the server's CA
	CertFile     string // a client certificate, with KeyFile
	KeyFile      string
}

// Options reads the credentials and TLS files c names into NATS options.
func Options(c Credentials) ([]nats.Option, error) {
	var opts []nats.Option
	read := func(key, path string) (string, error) {
		b, err := os.ReadFile(path)
		if err != nil {
			return "", fmt.Errorf("fleet.%s: %w", key, err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	if c.CredsFile != "" {
		opts = append(opts, nats.UserCredentials(c.CredsFile))
	}
	if c.NKeyFile != "" {
		o, err := nats.NkeyOptionFromSeed(c.NKeyFile)
		if err != nil {
			return nil, fmt.Errorf("fleet.nkey_file: %w", err)
		}
		opts = append(opts, o)
	}
	if c.TokenFile != "" {
		t, err := read("token_file", c.TokenFile)
		if err != nil {
			return nil, err
		}
		opts = append(opts, nats.Token(t))
	}
	if c.User != "" {
		pw, err := read("password_file", c.PasswordFile)
		if err != nil {
			return nil, err
		}
		opts = append(opts, nats.UserInfo(c.User, pw))
	}
	if c.CAFile != "" {
		opts = append(opts, nats.RootCAs(c.CAFile))
	}
	if c.CertFile != "" {
		opts = append(opts, nats.ClientCert(c.CertFile, c.KeyFile))
	}
	return opts, nil
}
