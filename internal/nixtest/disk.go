package nixtest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io/fs"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// ZeroLayer returns a gzip layer holding one regular file called name of
// size zero bytes (a multiple of 1 MiB): a "zip bomb" of a few kB per GiB.
// It is built from gzip members (one per MiB of zeros, all the same bytes),
// which gzip readers read as one stream, so it costs no compression time.
// Its diff id is not computed (it is the digest).
func ZeroLayer(t testing.TB, name string, size int64) v1.Layer {
	t.Helper()
	member := func(b []byte) []byte {
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		zw.Write(b)
		zw.Close()
		return buf.Bytes()
	}
	var hdr bytes.Buffer
	tw := tar.NewWriter(&hdr)
	if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o444, Size: size, Format: tar.FormatPAX}); err != nil {
		t.Fatal(err)
	}
	tw.Flush()
	const mib = 1 << 20
	if size%mib != 0 {
		t.Fatalf("ZeroLayer: size %d is no multiple of 1 MiB", size)
	}
	zeros := member(make([]byte, mib))
	var out bytes.Buffer
	out.Write(member(hdr.Bytes()))
	for i := int64(0); i < size/mib; i++ {
		out.Write(zeros)
	}
	out.Write(member(make([]byte, 1024))) // the end of the archive
	return static.NewLayer(out.Bytes(), types.DockerLayer)
}

// PeakDisk runs fn while it samples the disk blocks used below dir every
// millisecond, and returns the most it saw in bytes (st_blocks of every
// inode once, however many names it has).
func PeakDisk(t testing.TB, dir string, fn func()) int64 {
	t.Helper()
	var peak atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	sample := func() {
		var n int64
		// Each inode counts once: a hard link, or a file renamed while
		// the walk runs, is seen twice but holds its blocks once.
		seen := map[[2]uint64]bool{}
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil // entries vanish while the stage cleans up
			}
			if fi, err := d.Info(); err == nil {
				if st, ok := fi.Sys().(*syscall.Stat_t); ok && !seen[[2]uint64{st.Dev, st.Ino}] {
					seen[[2]uint64{st.Dev, st.Ino}] = true
					n += st.Blocks * 512
				}
			}
			return nil
		})
		if n > peak.Load() {
			peak.Store(n)
		}
	}
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
				sample()
			}
		}
	}()
	fn()
	close(stop)
	wg.Wait()
	sample()
	return peak.Load()
}
