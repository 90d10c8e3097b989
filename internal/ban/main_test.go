package ban

import (
	"os"
	"testing"

	"sshguard-go/internal/roottest"
)

// TestMain fails the package when a test left a table in the host's own
// nftables ruleset.
func TestMain(m *testing.M) { os.Exit(roottest.RunGuarded(m)) }
