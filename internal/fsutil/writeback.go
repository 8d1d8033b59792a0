package fsutil

import (
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// WritebackStep is how much more a writer must have written before
// Writeback writes the filesystem back again.
const WritebackStep = 8 << 20

// Writeback writes a filesystem's dirty data back to disk while a writer
// is still adding to it, so that the flush at the end waits only for what
// came last instead of for all of it. It sweeps only when what waits to be
// written back is at most the writer's new data and SweepSlack (as
// FlushTrees does): with a job's gigabytes in flight it does nothing.
type Writeback struct {
	f       *os.File
	written func() int64
	pending func() (int64, error) // the machine's dirty bytes
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
	err     error
	sweeps  atomic.Int64
}

// StartWriteback writes back the filesystem that holds dir each time
// written, the writer's byte count, has grown by WritebackStep. Stop ends
// it.
func StartWriteback(dir string, written func() int64) (*Writeback, error) {
	return startWriteback(dir, written, pendingWriteback)
}

func startWriteback(dir string, written func() int64, pending func() (int64, error)) (*Writeback, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("writing back %s: %w", dir, err)
	}
	w := &Writeback{f: f, written: written, pending: pending, stop: make(chan struct{}), done: make(chan struct{})}
	go w.run()
	return w, nil
}

func (w *Writeback) run() {
	defer close(w.done)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var last int64
	for {
		select {
		case <-w.stop:
			return
		case <-tick.C:
		}
		grown := w.written() - last
		if grown < WritebackStep {
			continue
		}
		dirty, err := w.pending()
		if err != nil || !Sweep(dirty, grown) {
			continue
		}
		last += grown
		if err := unix.Syncfs(int(w.f.Fd())); err != nil {
			w.err = fmt.Errorf("writing back the filesystem of %s: %w", w.f.Name(), err)
			return
		}
		w.sweeps.Add(1)
	}
}

// Stop ends the writeback, waiting for a sweep under way, and returns the
// first error one met (a disk that failed to write is an error even
// though a later flush would retry it). It is safe to call more than
// once.
func (w *Writeback) Stop() error {
	w.once.Do(func() {
		close(w.stop)
		<-w.done
		w.f.Close()
	})
	return w.err
}

// Sweeps reports how many times the filesystem was written back so far.
func (w *Writeback) Sweeps() int { return int(w.sweeps.Load()) }
