package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// flagError words a refused duration flag as "--ban-time: 3600 has no
// unit: did you mean ...": the duration's own error already quotes the
// value. Other flag errors are cobra's. The exit status is 2.
func flagError(_ *cobra.Command, err error) error {
	var iv *pflag.InvalidValueError
	if errors.As(err, &iv) && iv.GetFlag().Value.Type() == "duration" {
		err = fmt.Errorf("--%s: %w", iv.GetFlag().Name, errors.Unwrap(iv))
	}
	return &exitError{2, err}
}
