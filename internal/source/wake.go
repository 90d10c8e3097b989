package source

import (
	"fmt"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// waker tells FileTail that the file it holds was written to, through an
// inotify watch of its own on that very file. The follower's notice comes
// through its shared watcher and three goroutines before its first line
// reaches us. And a descriptor in the runtime's network poller is looked
// at, while every processor has work (a daemon under load), only when the
// runtime's monitor polls it, up to 10 ms later: the slowest bans of the
// noisy benchmark waited 4 ms on average for their line to be read. The
// waker's goroutine waits in poll(2) instead, woken by the kernel itself.
type waker struct {
	fd   int           // the inotify instance (non-blocking, read after poll says so)
	stop int           // an eventfd: written to end run
	wd   int           // the watch on the file held, -1: none
	c    chan struct{} // a write since the last receive (capacity 1)
	done chan struct{} // closed when run has ended
}

// newWaker starts a waker with no watch yet, or returns an error when
// inotify is not available (the follower alone then).
func newWaker() (*waker, error) {
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("inotify: %w", err)
	}
	stop, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	w := &waker{fd: fd, stop: stop, wd: -1, c: make(chan struct{}, 1), done: make(chan struct{})}
	go w.run()
	return w, nil
}

func (w *waker) run() {
	defer close(w.done)
	buf := make([]byte, 4096)
	fds := []unix.PollFd{{Fd: int32(w.fd), Events: unix.POLLIN}, {Fd: int32(w.stop), Events: unix.POLLIN}}
	for {
		fds[0].Revents, fds[1].Revents = 0, 0
		if _, err := unix.Poll(fds, -1); err != nil && err != unix.EINTR {
			return
		}
		if fds[1].Revents != 0 {
			return
		}
		if fds[0].Revents == 0 {
			continue
		}
		for { // the events themselves say nothing more than "written"
			_, err := unix.Read(w.fd, buf)
			if err == unix.EAGAIN {
				break // drained
			}
			if err != nil && err != unix.EINTR {
				return // not a state poll would leave: no spinning on it
			}
		}
		select {
		case w.c <- struct{}{}:
			// The reader is now next on this goroutine's processor,
			// which poll(2) would hold until the runtime's monitor
			// takes it back: let the reader run first.
			runtime.Gosched()
		default: // one pending wake is enough: the reader reads to the end
		}
	}
}

// watch moves the watch to file (the file FileTail now holds: by its
// descriptor, not its name, which may already name another), or removes
// it (nil). An error says the watch could not be made (no /proc, the
// user's inotify watches used up).
func (w *waker) watch(file *os.File) error {
	if w.wd >= 0 {
		unix.InotifyRmWatch(w.fd, uint32(w.wd))
		w.wd = -1
	}
	if file == nil {
		return nil
	}
	wd, err := unix.InotifyAddWatch(w.fd, fmt.Sprintf("/proc/self/fd/%d", file.Fd()), unix.IN_MODIFY)
	if err != nil {
		return fmt.Errorf("watch: %w", err)
	}
	w.wd = wd
	return nil
}

// close ends run and lets go of the descriptors.
func (w *waker) close() {
	unix.Write(w.stop, []byte{1, 0, 0, 0, 0, 0, 0, 0})
	<-w.done
	unix.Close(w.fd)
	unix.Close(w.stop)
}
