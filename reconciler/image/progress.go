package image

import (
	"fmt"
	"io"
	"sync/atomic"
	"time"
)

// progress draws "layers d/n, x MB of y MB, r MB/s" in place on a terminal.
type progress struct {
	w          io.Writer
	layers     int
	total      int64
	done       atomic.Int64
	bytes      atomic.Int64
	start      time.Time
	stop, over chan struct{}
}

func startProgress(w io.Writer, layers int, total int64) *progress {
	p := &progress{w: w, layers: layers, total: total, start: time.Now(), stop: make(chan struct{}), over: make(chan struct{})}
	if w == nil {
		close(p.over)
		return p
	}
	go func() {
		defer close(p.over)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				p.draw()
				fmt.Fprintln(p.w)
				return
			case <-t.C:
				p.draw()
			}
		}
	}()
	return p
}

func (p *progress) draw() {
	secs := time.Since(p.start).Seconds()
	b := p.bytes.Load()
	rate := 0.0
	if secs > 0 {
		rate = float64(b) / secs
	}
	fmt.Fprintf(p.w, "\rlayers %d/%d, %s of %s, %s/s   ", p.done.Load(), p.layers, mb(b), mb(p.total), mb(int64(rate)))
}

func (p *progress) end() {
	close(p.stop)
	<-p.over
}

func mb(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/1e6) }

// countReader counts the compressed bytes read for the progress line.
type countReader struct {
	r io.Reader
	p *progress
}

func (c countReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.p.bytes.Add(int64(n))
	return n, err
}
