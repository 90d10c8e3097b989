package daemon

import (
	"context"
	"errors"
	"io/fs"
	"os"

	"sshguard-go/internal/config"
	"sshguard-go/internal/source"
)

// logSource is where the daemon reads sshd's log: a file, or journald.
type logSource struct {
	file    string // "" with journal
	journal bool
}

func (s logSource) String() string {
	if s.journal {
		return "journald"
	}
	return s.file
}

// autoFiles are the auth logs looked for when log.file is not set.
var autoFiles = []string{"/var/log/auth.log", "/var/log/secure"}

// resolveSource picks the source of cfg: journald when asked, the file it
// names, else the first auth log that exists, else journald.
func resolveSource(cfg config.LogConfig) logSource {
	switch {
	case cfg.Journal:
		return logSource{journal: true}
	case cfg.File != "":
		return logSource{file: cfg.File}
	}
	for _, f := range autoFiles {
		if _, err := os.Stat(f); err == nil {
			return logSource{file: f}
		}
	}
	return logSource{journal: true}
}

// CheckSource checks that the daemon of cfg can read its log source now
// and names it. A file that does not exist is an error naming it (a typo
// in log.file or --log), unless log.wait says to wait for it; one that
// cannot be read says who may; journald must run and be readable by this
// user. Its errors are config.KeyErrorf's (cfg.Locate puts them at their
// line). check-config and run call it before the daemon starts.
func CheckSource(ctx context.Context, cfg *config.Config) (string, error) {
	src := resolveSource(cfg.Log)
	if src.journal {
		if err := source.CheckJournal(ctx, ""); err != nil {
			if !cfg.Log.Journal {
				return src.String(), config.KeyErrorf("log.file", "%v (no auth log either: none of %v exists; set log.file)", err, autoFiles)
			}
			return src.String(), config.KeyErrorf("log.journal", "%v", err)
		}
		return src.String(), nil
	}
	f, err := os.Open(src.file)
	switch {
	case errors.Is(err, fs.ErrNotExist) && cfg.Log.Wait:
		return src.String(), nil
	case errors.Is(err, fs.ErrNotExist):
		return src.String(), errNoLogFile(src.file)
	case errors.Is(err, fs.ErrPermission):
		return src.String(), config.KeyErrorf("log.file", "%s: permission denied: run as root (sudo), or in the file's group (adm on Debian)", src.file)
	case err != nil:
		return src.String(), config.KeyErrorf("log.file", "%v", err)
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.IsDir() {
		return src.String(), config.KeyErrorf("log.file", "%s is a directory", src.file)
	}
	return src.String(), nil
}

// errNoLogFile is the error of a log file that does not exist, at the
// start and while it runs.
func errNoLogFile(name string) error {
	return config.KeyErrorf("log.file", "%s does not exist (a typo? to wait for it to appear, set [log] wait = true)", name)
}
