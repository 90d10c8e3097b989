package daemon

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"sshguard-go/internal/config"
)

// apiTokenName is the file, next to the state database, where the daemon
// keeps the API token it made for itself: an API with neither
// api.token_file nor api.client_ca gets one, so that the sessions,
// logins, events and bans are only for whoever can read that file (root).
const apiTokenName = "api.token"

// apiTokenFile is where the daemon of cfg keeps the token it makes.
func apiTokenFile(cfg *config.Config) string {
	return filepath.Join(filepath.Dir(cfg.State.DB), apiTokenName)
}

// ownToken returns the token in path, made first when there is no such
// file: 32 random bytes in hex, mode 0600, written whole or not at all.
// An existing file is used only if it is a regular file of this user
// that no one else may read or write; else the daemon does not start,
// with the reason.
func ownToken(path string) (tok string, made bool, err error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if errors.Is(err, fs.ErrNotExist) {
		tok, err := makeToken(path)
		return tok, err == nil, err
	}
	if errors.Is(err, syscall.ELOOP) {
		return "", false, fmt.Errorf("api token: %s is a symbolic link; remove it and the daemon makes a new token", path)
	}
	if err != nil {
		return "", false, fmt.Errorf("api token: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", false, fmt.Errorf("api token: %w", err)
	}
	if !st.Mode().IsRegular() {
		return "", false, fmt.Errorf("api token: %s is not a regular file (%v)", path, st.Mode().Type())
	}
	if s, ok := st.Sys().(*syscall.Stat_t); ok && int(s.Uid) != os.Geteuid() {
		return "", false, fmt.Errorf("api token: %s belongs to uid %d, not to the daemon's (%d); remove it and the daemon makes a new token", path, s.Uid, os.Geteuid())
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return "", false, fmt.Errorf("api token: %s has mode %04o: other users may have read it; remove it and the daemon makes a new token (or chmod 600 it)", path, perm)
	}
	b, err := io.ReadAll(io.LimitReader(f, 4096))
	if err != nil {
		return "", false, fmt.Errorf("api token: %w", err)
	}
	tok = strings.TrimSpace(string(b))
	if len(tok) < 16 {
		return "", false, fmt.Errorf("api token: %s holds %d characters, want at least 16; remove it and the daemon makes a new token", path, len(tok))
	}
	return tok, false, nil
}

// makeToken writes a new random token to path through a temporary file
// (mode 0600 from its creation) renamed into place.
func makeToken(path string) (string, error) {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand)
	tok := hex.EncodeToString(b)
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return "", fmt.Errorf("api token: %w", err)
	}
	defer os.Remove(tmp.Name()) // after the rename, nothing
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return "", fmt.Errorf("api token: %w", err)
	}
	if _, err := tmp.WriteString(tok + "\n"); err != nil {
		tmp.Close()
		return "", fmt.Errorf("api token: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return "", fmt.Errorf("api token: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("api token: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", fmt.Errorf("api token: %w", err)
	}
	if d, err := os.Open(dir); err == nil { // the rename, on disk
		d.Sync()
		d.Close()
	}
	return tok, nil
}
