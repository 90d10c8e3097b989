package report

import (
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"
)

// Progress prints how far the inputs have been read, on a terminal only.
type Progress struct {
	on   bool
	out  io.Writer
	n    atomic.Int64
	done chan struct{}
	name atomic.Value
	size atomic.Int64
}

// StartProgress starts a Progress on stderr (nothing when it is no terminal).
func StartProgress(stderr io.Writer) *Progress {
	p := &Progress{out: stderr, done: make(chan struct{})}
	if f, ok := stderr.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			p.on = true
		}
	}
	if !p.on {
		return p
	}
	go func() {
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-p.done:
				fmt.Fprint(p.out, "\r\033[K")
				return
			case <-t.C:
				name, _ := p.name.Load().(string)
				mb := float64(p.n.Load()) / (1 << 20)
				if size := p.size.Load(); size > 0 {
					fmt.Fprintf(p.out, "\r\033[K%s: %.0f of %.0f MB (%.0f%%)", name, mb, float64(size)/(1<<20), 100*float64(p.n.Load())/float64(size))
				} else {
					fmt.Fprintf(p.out, "\r\033[K%s: %.0f MB read", name, mb)
				}
			}
		}
	}()
	return p
}

// Wrap counts what r yields for the progress line.
func (p *Progress) Wrap(r io.Reader, name string, size int64) io.Reader {
	if !p.on {
		return r
	}
	p.name.Store(name)
	p.size.Store(size)
	p.n.Store(0)
	return countingReader{r, &p.n}
}

// Stop clears the line.
func (p *Progress) Stop() {
	if p.on {
		close(p.done)
	}
}

type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n.Add(int64(n))
	return n, err
}
