package control

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestServeRefusesUnsafePaths: a regular file at the socket path is not
// deleted, and a directory others may write to is refused.
func TestServeRefusesUnsafePaths(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "notes.txt")
	os.WriteFile(file, []byte("keep me"), 0o600)
	if err := Serve(context.Background(), file, nil, Limits()); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("serve on a regular file: %v", err)
	}
	if b, _ := os.ReadFile(file); string(b) != "keep me" {
		t.Fatal("the file was deleted")
	}
	open := filepath.Join(dir, "open")
	os.Mkdir(open, 0o777)
	os.Chmod(open, 0o777)
	if err := Serve(context.Background(), filepath.Join(open, "ctl.sock"), nil, Limits()); err == nil || !strings.Contains(err.Error(), "writable by others") {
		t.Fatalf("serve in a 0777 directory: %v", err)
	}
}
