package control

import (
	"fmt"
	"io/fs"
	"net"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// checkPeer refuses a control socket whose listener is neither root nor
// this user: one who could write the socket's directory (a path given
// with --socket, a directory made by hand) would otherwise answer the
// CLI's commands, and see what it sends, in the daemon's place.
func checkPeer(c net.Conn, path string) error {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return nil
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return err
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return err
	}
	if cerr != nil {
		return fmt.Errorf("control socket %s: whose it is: %w", path, cerr)
	}
	if me := os.Geteuid(); int(cred.Uid) != 0 && int(cred.Uid) != me {
		return fmt.Errorf("control socket %s is served by uid %d (pid %d), neither root nor you: not the daemon; not used", path, cred.Uid, cred.Pid)
	}
	return nil
}

// owner is the uid owning the file st describes.
func owner(st fs.FileInfo) (int, bool) {
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		return int(sys.Uid), true
	}
	return 0, false
}
