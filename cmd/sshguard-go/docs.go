package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"

	"sshguard-go/internal/config"
)

// newManCmd writes the man pages, from the same command definitions as
// --help, and the configuration file's, sshguard-go.toml(5), from the
// same documentation as the commented default file. It is hidden:
// packaging and `make man` use it.
func newManCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "man DIR",
		Short:  "Write the man pages (section 1, and sshguard-go.toml in section 5) into DIR",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := os.MkdirAll(args[0], 0o755); err != nil {
				return err
			}
			date, err := manDate()
			if err != nil {
				return err
			}
			root := cmd.Root()
			root.DisableAutoGenTag = true
			hdr := &doc.GenManHeader{Title: "SSHGUARD-GO", Section: "1", Source: "sshguard-go " + version, Manual: "sshguard-go manual", Date: &date}
			if err := doc.GenManTree(root, hdr, args[0]); err != nil {
				return fmt.Errorf("man pages: %w", err)
			}
			var b bytes.Buffer
			if err := config.ManPage(&b, "sshguard-go "+version, date); err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(args[0], "sshguard-go.toml.5"), b.Bytes(), 0o644)
		},
	}
}

// manDate is the pages' date: SOURCE_DATE_EPOCH's (reproducible builds),
// else now.
func manDate() (time.Time, error) {
	epoch := os.Getenv("SOURCE_DATE_EPOCH")
	if epoch == "" {
		return time.Now(), nil
	}
	sec, err := strconv.ParseInt(epoch, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q: %w", epoch, err)
	}
	return time.Unix(sec, 0).UTC(), nil
}
