package source

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sshguard-go/internal/testkit"
	"strings"
	"sync"
	"testing"
	"time"
)

// BenchmarkFollow measures how fast a followed log's new lines reach the
// caller: 100,000 lines appended in writes of 100, as a busy sshd's are.
//
//	go test ./internal/source -run XXX -bench Follow -benchtime 3x
func BenchmarkFollow(b *testing.B) {
	const lines, chunk = 100_000, 100
	var block strings.Builder
	for i := range chunk {
		fmt.Fprintf(&block, "2026-12-05T03:00:00.000000+00:00 web-01 sshd[%d]: Accepted publickey for alice from 198.51.100.%d port 40000 ssh2\n", 1000+i, 1+i%200)
	}
	for b.Loop() {
		path := filepath.Join(b.TempDir(), "auth.log")
		if err := os.WriteFile(path, nil, 0o644); err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		got := make(chan struct{})
		ready := make(chan struct{})
		n := 0
		ft := &FileTail{Path: path, Ready: func() { close(ready) }}
		done := make(chan error, 1)
		go func() {
			done <- ft.Run(ctx, func(string, Position) {
				if n++; n == lines {
					close(got)
				}
			})
		}()
		<-ready
		w, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		for range lines / chunk {
			w.WriteString(block.String())
		}
		select {
		case <-got:
		case <-time.After(time.Minute):
			b.Fatalf("%d of %d lines within a minute", n, lines)
		}
		b.ReportMetric(float64(lines)/time.Since(start).Seconds(), "lines/s")
		w.Close()
		cancel()
		<-done
	}
}

// BenchmarkCatchUp measures the same 100,000 lines read as a backlog: the
// file's lines already there at the start, read in blocks through our own
// descriptor (catchUp), beside BenchmarkFollow's line by line through the
// follower.
//
//	go test ./internal/source -run XXX -bench 'CatchUp|Follow' -benchtime 3x
func BenchmarkCatchUp(b *testing.B) {
	const lines = 100_000
	var log strings.Builder
	for i := range lines {
		fmt.Fprintf(&log, "2026-12-05T03:00:00.000000+00:00 web-01 sshd[%d]: Accepted publickey for alice from 198.51.100.%d port 40000 ssh2\n", 1000+i%100, 1+i%200)
	}
	for b.Loop() {
		path := filepath.Join(b.TempDir(), "auth.log")
		if err := os.WriteFile(path, []byte(log.String()), 0o644); err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		got := make(chan struct{})
		n := 0
		start := time.Now()
		done := make(chan error, 1)
		go func() {
			done <- (&FileTail{Path: path, FromStart: true}).Run(ctx, func(string, Position) {
				if n++; n == lines {
					close(got)
				}
			})
		}()
		select {
		case <-got:
		case err := <-done:
			b.Fatalf("the tail stopped: %v", err)
		}
		b.ReportMetric(float64(lines)/time.Since(start).Seconds(), "lines/s")
		cancel()
		<-done
	}
}

// BenchmarkLineLatency measures the time from a line's write to its
// delivery with twice as many processors as CPUs (as the run command gives
// the daemon) while spinning goroutines (the daemon's side work at its
// worst) keep every CPU busy (cpus-busy) or every processor (all-busy),
// through our own watch of the file (own-watch) and through the
// follower's notice alone (follower-only): 200 lines, one every 2 ms.
//
//	go test ./internal/source -run XXX -bench LineLatency -benchtime 1x
func BenchmarkLineLatency(b *testing.B) {
	for _, busy := range []string{"cpus-busy", "all-busy"} {
		for _, mode := range []string{"own-watch", "follower-only"} {
			b.Run(busy+"/"+mode, func(b *testing.B) {
				for b.Loop() {
					lineLatency(b, mode == "follower-only", busy == "all-busy")
				}
			})
		}
	}
}

func lineLatency(b *testing.B, followerOnly, allBusy bool) {
	const lines, gap = 200, 2 * time.Millisecond
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2 * runtime.NumCPU()))
	path := filepath.Join(b.TempDir(), "auth.log")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan time.Time, lines)
	ready := make(chan struct{})
	ft := &FileTail{Path: path, Ready: func() { close(ready) }, noWake: followerOnly}
	done := make(chan error, 1)
	go func() {
		done <- ft.Run(ctx, func(string, Position) { got <- time.Now() })
	}()
	<-ready
	spinners := runtime.NumCPU()
	if allBusy {
		spinners = runtime.GOMAXPROCS(0)
	}
	var spin sync.WaitGroup
	for range spinners {
		spin.Go(func() {
			for x := 0; ctx.Err() == nil; x++ {
				_ = x * x
			}
		})
	}
	w, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	lat := make([]time.Duration, 0, lines)
	for i := range lines {
		start := time.Now()
		fmt.Fprintf(w, "2026-12-05T03:00:00.000000+00:00 web-01 sshd[%d]: Failed password for root from 198.51.100.7 port 4000 ssh2\n", 1000+i)
		select {
		case at := <-got:
			lat = append(lat, at.Sub(start))
		case <-time.After(time.Minute):
			b.Fatalf("line %d not delivered within a minute", i)
		}
		time.Sleep(gap) // the pace of the lines, not a wait for a condition
	}
	cancel()
	spin.Wait()
	<-done
	testkit.ReportQuantiles(b, lat)
}
