package report

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"sshguard-go/internal/detect"
	"sshguard-go/internal/source"
)

// Inputs reads log inputs for scan and report.
type Inputs struct {
	Names []string  // files, gzip archives, "-" for Stdin
	Stdin io.Reader // read for "-"
	// Jobs is how many inputs are read at once, each with its own
	// Scanner (a connection split across two files is then not joined).
	// 1 (or less) reads them one after the other with one Scanner.
	Jobs int
	// Wrap, if set, wraps each input's reader (progress display); only
	// with Jobs <= 1.
	Wrap func(r io.Reader, name string, size int64) io.Reader
	// Unrecognised, if set, receives the lines naming sshd that gave no
	// event (see detect.Scanner.OnUnrecognised), in input order with
	// Jobs <= 1. It is called from the goroutine that parses, while
	// another emits the records: what the two share needs a lock.
	Unrecognised func(source string, n int64, text, reason string)
	// Open opens a name; nil means source.OpenInput (files, archives,
	// stdin). S3 objects are opened by the caller's.
	Open func(name string) (*source.Input, error)
}

// Result is what reading the inputs met along the way.
type Result struct {
	Failed   int      // inputs that could not be read completely
	Errors   []string // their errors, in input order
	Overlong int64    // lines skipped for their length
}

// Scan reads every input. emitFor(i) returns the function that receives
// the records of input i (called from the goroutine reading it); with
// Jobs <= 1 every input's records go to emitFor(0)'s function, in order.
// done(i), if set, is called once input i is read (in any order).
func (in Inputs) Scan(emitFor func(i int) func(*detect.Record), done func(i int)) Result {
	var res Result
	errs := make([]string, len(in.Names))
	failed := make([]bool, len(in.Names))
	var overlong sync.Mutex
	// read reads input i's lines into line, with s's header state.
	read := func(s *detect.Scanner, i int, line func(name string, text string, n, block int64)) {
		name := in.Names[i]
		open := in.Open
		if open == nil {
			open = func(name string) (*source.Input, error) { return source.OpenInput(name, in.Stdin) }
		}
		src, err := open(name)
		if err != nil {
			errs[i], failed[i] = err.Error(), true
			return
		}
		defer src.Close()
		if in.Wrap != nil && in.Jobs <= 1 {
			size := src.Size
			if src.Compressed {
				size = -1
			}
			src.Reader = in.Wrap(src.Reader, name, size)
		}
		if !src.ModTime.IsZero() {
			s.SetRef(src.ModTime)
		} else if s.Header.Ref.IsZero() {
			s.SetRef(time.Now())
		}
		err = src.Lines(func(text string, n int64) { line(src.Name, text, n, src.Block) })
		overlong.Lock()
		res.Overlong += src.Overlong
		overlong.Unlock()
		if err != nil {
			errs[i], failed[i] = fmt.Sprintf("%s: %v (the lines before it were scanned)", name, err), true
		}
	}
	if in.Jobs <= 1 {
		var s detect.Scanner
		s.OnUnrecognised = in.Unrecognised
		inputs := make([]int, len(in.Names))
		for i := range inputs {
			inputs[i] = i
		}
		pipeline(&s, inputs, read, emitFor(0), done)
	} else {
		var wg sync.WaitGroup
		var unrecMu sync.Mutex
		sem := make(chan struct{}, in.Jobs)
		for i := range in.Names {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				var s detect.Scanner
				if in.Unrecognised != nil {
					s.OnUnrecognised = func(source string, n int64, text, reason string) {
						unrecMu.Lock()
						defer unrecMu.Unlock()
						in.Unrecognised(source, n, text, reason)
					}
				}
				pipeline(&s, []int{i}, read, emitFor(i), done)
			}()
		}
		wg.Wait()
	}
	for i, e := range errs {
		if failed[i] {
			res.Failed++
			res.Errors = append(res.Errors, e)
		}
	}
	return res
}

// pipeline reads inputs one after the other with s, in two stages: this
// goroutine reads and parses the lines into batches of records, another
// correlates them and calls emit (Scanner.Parse and Feed), so that an
// input is scanned on two cores. done(i), if set, is called once input
// i's records are emitted (the last input's after s is flushed).
//
// A record's text shares the block of input it was read in (up to 1 MiB):
// a batch is sent early rather than span more than two blocks, so that the
// batches in flight keep at most 2 MiB of input each, whatever the lines.
func pipeline(s *detect.Scanner, inputs []int, read func(*detect.Scanner, int, func(name, text string, n, block int64)), emit func(*detect.Record), done func(int)) {
	type batch struct {
		recs  []detect.Record
		end   int   // the input that ends with this batch, or -1
		block int64 // the block of its first record
	}
	const size = 256
	full := make(chan *batch, 8)
	free := make(chan *batch, 10)
	for range cap(free) {
		free <- &batch{recs: make([]detect.Record, 0, size)}
	}
	last := -1
	if len(inputs) > 0 {
		last = inputs[len(inputs)-1]
	}
	fed := make(chan struct{})
	go func() {
		defer close(fed)
		for b := range full {
			for k := range b.recs {
				s.Feed(&b.recs[k], emit)
			}
			if b.end >= 0 && b.end != last && done != nil {
				done(b.end)
			}
			b.recs = b.recs[:0]
			free <- b
		}
		s.Flush(emit)
		if done != nil && last >= 0 {
			done(last)
		}
	}()
	b := <-free
	b.end = -1
	for _, i := range inputs {
		read(s, i, func(name, text string, n, block int64) {
			if len(b.recs) > 0 && block-b.block >= 2 {
				full <- b
				b = <-free
				b.end = -1
			}
			if len(b.recs) == 0 {
				b.block = block
			}
			b.recs = b.recs[:len(b.recs)+1]
			if !s.Parse(name, n, text, &b.recs[len(b.recs)-1]) {
				b.recs = b.recs[:len(b.recs)-1]
				return
			}
			if len(b.recs) == size {
				full <- b
				b = <-free
				b.end = -1
			}
		})
		b.end = i
		full <- b
		b = <-free
		b.end = -1
	}
	close(full)
	<-fed
}

// ScanOrdered reads the inputs at once (Jobs), each one's output (format
// of each record) into a file of its own, and copies those to w in input
// order.
func (in Inputs) ScanOrdered(w io.Writer, format func([]byte, *detect.Encoder, *detect.Record) []byte) (Result, error) {
	tmp := make([]*os.File, len(in.Names))
	outs := make([]*bufio.Writer, len(in.Names))
	for i := range tmp {
		f, err := os.CreateTemp("", "sshguard-go-scan-*")
		if err != nil {
			return Result{}, err
		}
		os.Remove(f.Name()) // gone when closed
		defer f.Close()
		tmp[i], outs[i] = f, bufio.NewWriterSize(f, 256<<10)
	}
	res := in.Scan(func(i int) func(*detect.Record) {
		var buf []byte
		var enc detect.Encoder
		return func(r *detect.Record) { buf = format(buf[:0], &enc, r); outs[i].Write(buf) }
	}, func(i int) { outs[i].Flush() })
	for _, f := range tmp {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return res, err
		}
		if _, err := io.Copy(w, f); err != nil {
			return res, err
		}
	}
	return res, nil
}
