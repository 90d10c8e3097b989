package report

import (
	"context"
	"io"
	"time"

	"sshguard-go/internal/source"
)

// SetupError is an input that could not even be set up (the S3 client:
// no region, a bad endpoint): the command's usage, not the data, is wrong.
type SetupError struct{ Err error }

func (e *SetupError) Error() string { return e.Err.Error() }
func (e *SetupError) Unwrap() error { return e.Err }

// Open resolves what scan and report read: files (quoted patterns
// expanded), archives, "-" for stdin (also when args is empty), and
// s3://bucket/prefix (every object under it, in key order; those last
// modified before since are not fetched), jobs of them at once.
func Open(ctx context.Context, args []string, stdin io.Reader, jobs int, endpoint string, since time.Time) (Inputs, error) {
	if len(args) == 0 {
		args = []string{"-"}
	}
	in := Inputs{Stdin: stdin}
	var client *source.S3
	objects := map[string]source.Object{}
	for _, a := range args {
		if !source.IsS3(a) {
			in.Names = append(in.Names, source.Glob(a)...)
			continue
		}
		if client == nil {
			var err error
			if client, err = source.NewS3(ctx, endpoint); err != nil {
				return in, &SetupError{err}
			}
		}
		list, err := client.List(ctx, a, since)
		if err != nil {
			return in, err
		}
		for _, o := range list {
			objects[o.URL()] = o
			in.Names = append(in.Names, o.URL())
		}
	}
	if client != nil {
		in.Open = func(name string) (*source.Input, error) {
			if o, ok := objects[name]; ok {
				return client.Open(ctx, o)
			}
			return source.OpenInput(name, stdin)
		}
	}
	in.Jobs = min(jobs, max(1, len(in.Names)))
	return in, nil
}
