package seed_test

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/klauspost/compress/gzip"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"gitlab.com/hydrafy/hydrafy/internal/nixtest"
	"gitlab.com/hydrafy/hydrafy/internal/synth"
	"gitlab.com/hydrafy/hydrafy/reconciler/seed"
)

// The benchmark runs each contender in a child process of this test
// binary, so that its peak memory (max RSS) is its own, not the
// registry's; the parent serves the registry and times the children.
const (
	childRef = "HYDRAFY_BENCH_REF"
	childDir = "HYDRAFY_BENCH_DIR"
)

var bench struct {
	once sync.Once
	host string
	tmp  string
	refs map[string]string
	runs int // children run, for their dirs' names
}

func TestMain(m *testing.M) {
	if mode := nixtest.Child(); mode != "" {
		if err := runChild(mode, os.Getenv(childRef), os.Getenv(childDir)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	code := m.Run()
	// scripts/bench keeps what each benchmark wrote until all have run
	// (see childCPU): it deletes its own dir at the end.
	if bench.tmp != "" && os.Getenv("HYDRAFY_BENCH_KEEP") == "" {
		exec.Command("chmod", "-R", "u+w", bench.tmp).Run()
		os.RemoveAll(bench.tmp)
	}
	os.Exit(code)
}

func runChild(mode, ref, dir string) error {
	switch mode {
	case "seed", "seed-nosync":
		res, err := seed.Seed(context.Background(), ref, seed.Options{Store: dir, NoSync: mode == "seed-nosync"})
		if err != nil {
			return err
		}
		fmt.Println(res.Paths, peakRSS())
		return nil
	case "seed-report":
		res, err := seed.Seed(context.Background(), ref, seed.Options{Store: dir})
		if err != nil {
			return err
		}
		r := seeded{How: res.How, Paths: res.Paths, LayersSkipped: res.LayersSkipped}
		if res.Merge != nil {
			r.Added, r.Commit = len(res.Merge.Added), res.Merge.Duration
		}
		return json.NewEncoder(os.Stdout).Encode(r)
	case "baseline", "baseline-synced":
		if err := exportExtract(ref, dir); err != nil {
			return err
		}
		if mode == "baseline-synced" {
			unix.Sync()
		}
		fmt.Println(0, peakRSS())
		return nil
	case "download", "decompress", "hash":
		if err := stages(ref, mode); err != nil {
			return err
		}
		fmt.Println(0, peakRSS())
		return nil
	}
	return fmt.Errorf("unknown child mode %q", mode)
}

// pull returns the image ref names, from a registry that may be plain
// HTTP.
func pull(ref string) (v1.Image, error) {
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		return nil, err
	}
	return remote.Image(r)
}

// stages pulls ref's layers as a seed does (as many at once), doing only
// the stages up to upTo of what a seed does with each: download the blob,
// decompress it, read its tar entries and hash their contents.
func stages(ref, upTo string) error {
	img, err := pull(ref)
	if err != nil {
		return err
	}
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	var g errgroup.Group
	g.SetLimit(min(8, 2*runtime.GOMAXPROCS(0))) // image.Options.Parallel's default
	for _, l := range layers {
		g.Go(func() error {
			rc, err := l.Compressed()
			if err != nil {
				return err
			}
			defer rc.Close()
			if upTo == "download" {
				_, err := io.Copy(io.Discard, rc)
				return err
			}
			zr, err := gzip.NewReader(bufio.NewReaderSize(rc, 64<<10))
			if err != nil {
				return err
			}
			defer zr.Close()
			if upTo == "decompress" {
				_, err := io.Copy(io.Discard, zr)
				return err
			}
			tr := tar.NewReader(zr)
			h := sha256.New()
			for {
				if _, err := tr.Next(); errors.Is(err, io.EOF) {
					return nil
				} else if err != nil {
					return err
				}
				if _, err := io.Copy(h, tr); err != nil {
					return err
				}
			}
		})
	}
	return g.Wait()
}

// peakRSS returns this process's peak resident set size (VmHWM) in bytes.
// (The rusage of a child counts the parent's memory at fork time too.)
func peakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kb int64
			fmt.Sscan(strings.TrimSuffix(strings.TrimSpace(v), " kB"), &kb)
			return kb * 1024
		}
	}
	return -1
}

// exportExtract is `crane export IMAGE - | tar -x -C dir`: the flattened
// filesystem of the image (mutate.Extract), unpacked entry by entry.
func exportExtract(ref, dir string) error {
	img, err := pull(ref)
	if err != nil {
		return err
	}
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		p := filepath.Join(dir, filepath.Clean("/"+hdr.Name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, os.FileMode(hdr.Mode)&0o777|0o200)
			if err != nil {
				return err
			}
			if _, err := io.Copy(f, tr); err != nil {
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
			if err := os.Chtimes(p, hdr.ModTime, hdr.ModTime); err != nil {
				return err
			}
		case tar.TypeSymlink:
			if err := os.Symlink(hdr.Linkname, p); err != nil {
				return err
			}
		case tar.TypeLink:
			if err := os.Link(filepath.Join(dir, filepath.Clean("/"+hdr.Linkname)), p); err != nil {
				return err
			}
		}
	}
}

// benchImage returns a one-path-per-layer image of 100 paths with files
// files of 30 kB each, built once per process.
func benchImage(b *testing.B, files int) string {
	return benchImageOf(b, 100, files, 30_000)
}

// benchImageOf returns a one-path-per-layer image of paths paths with
// files files of size bytes each, built once per process.
func benchImageOf(b *testing.B, paths, files, size int) string {
	benchSetup(b)
	key := fmt.Sprintf("%d-%d-%d", paths, files, size)
	if ref, ok := bench.refs[key]; ok {
		return ref
	}
	root := filepath.Join(bench.tmp, "src-"+key)
	spec := synth.Release(synth.ReleaseOptions{Version: key, Paths: paths, FilesPerPath: files, FileSize: size})
	if _, err := synth.Build(root, spec); err != nil {
		b.Fatal(err)
	}
	img, err := synth.Image(root, synth.ImageOptions{})
	if err != nil {
		b.Fatal(err)
	}
	ref := fmt.Sprintf("%s/bench/nix:%s", bench.host, key)
	r, _ := name.ParseReference(ref, name.Insecure)
	if err := remote.Write(r, img); err != nil {
		b.Fatal(err)
	}
	bench.refs[key] = ref
	return ref
}

// benchSetup starts the benchmarks' registry and makes their dir, once
// per process: both stay until the process ends, so that the runs Go
// makes of a benchmark (one of a single iteration, then the measured one)
// share them and nothing is deleted between them.
func benchSetup(b *testing.B) {
	bench.once.Do(func() {
		srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
		bench.host = strings.TrimPrefix(srv.URL, "http://")
		var err error
		if bench.tmp, err = os.MkdirTemp("", "hydrafy-bench-"); err != nil {
			b.Fatal(err)
		}
		bench.refs = map[string]string{}
	})
}

// child runs one contender into a fresh dir and returns its wall time,
// peak RSS and the paths it staged.
func child(b *testing.B, mode, ref string) (time.Duration, int64, string) {
	d, _, rss, paths := childCPU(b, mode, ref)
	return d, rss, paths
}

// childOutput runs cmd, a child of this test binary, to its end and
// returns its stdout and wall time; a failure ends the benchmark with its
// stderr, naming what it ran.
func childOutput(b *testing.B, cmd *exec.Cmd, what string) ([]byte, time.Duration) {
	b.Helper()
	start := time.Now()
	out, err := cmd.Output()
	d := time.Since(start)
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			b.Fatalf("%s: %v: %s", what, err, ee.Stderr)
		}
		b.Fatal(err)
	}
	return out, d
}

// childCPU is child that also returns the CPU time (user + system) used.
// Each run writes into a dir of its own, kept until the benchmark ends:
// on ext4 without a journal the inode allocator skips inodes deleted in
// the last minute or more (find_inode_bit and recently_deleted, Linux
// fs/ext4/ialloc.c), so a run right after 10,000 files were deleted
// creates its files several times slower, whichever contender it is.
//
// Before each run what earlier runs left unflushed is written back,
// untimed: a contender that leaves its files to the kernel's writeback
// would otherwise make the next one's flush pay for them, and the rotation
// keeps each contender's predecessor the same in every iteration.
func childCPU(b *testing.B, mode, ref string) (time.Duration, time.Duration, int64, string) {
	unix.Sync()
	bench.runs++
	dir := filepath.Join(bench.tmp, fmt.Sprintf("out-%s-%d", mode, bench.runs))
	cmd := nixtest.Command(mode, childRef+"="+ref, childDir+"="+dir)
	out, d := childOutput(b, cmd, mode)
	var paths string
	var rss int64
	if _, err := fmt.Sscan(string(out), &paths, &rss); err != nil {
		b.Fatalf("%s printed %q: %v", mode, out, err)
	}
	return d, cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(), rss, paths
}

// BenchmarkSeed seeds a 100-path, one-path-per-layer image from a loopback
// registry and compares it with `crane export | tar -x && sync` of the
// same image, in the same run, each contender a process of its own, the
// order rotated each iteration. Metrics, medians over the iterations:
//
//   - ratio: the seed as the CLI runs it (the store flushed to disk before
//     it is renamed into place) / the baseline with its sync;
//     ratio-max is the slowest iteration's;
//   - ratio-nosync: both leaving the data to the kernel's writeback;
//   - seed-cpus, baseline-cpus: CPU time / wall time (2 = both cores busy);
//     seed-nosync-cpus without the flush, in which the seed waits for the
//     disk;
//   - peak memory (VmHWM of each child): it must not grow with the image;
//   - where the seed's time goes, as a ladder of contenders that each do one
//     stage more, in parallel as the seed does: download-s (the compressed
//     blobs to nowhere), decompress-s (and gunzip), hash-s (and read the tar
//     entries and SHA-256 their contents), seed-nosync-s (the seed: and
//     create the files, check and register), seed-s (and flush them).
func BenchmarkSeed(b *testing.B) {
	for _, size := range []struct {
		name  string
		files int
	}{{"75MB-2.5kfiles", 25}, {"300MB-10kfiles", 100}} {
		b.Run(size.name, func(b *testing.B) {
			ref := benchImage(b, size.files)
			modes := []string{"baseline", "baseline-synced", "seed-nosync", "seed", "download", "decompress", "hash"}
			for _, m := range modes {
				child(b, m, ref) // warm up: page cache, allocator, registry
			}
			b.ResetTimer()
			took, cpu := map[string][]time.Duration{}, map[string][]time.Duration{}
			var ratio, ratioNoSync []float64
			var baseRSS, seedRSS int64
			for i := 0; i < b.N; i++ {
				// Rotate the order: a run can pay for what the one before left.
				it := map[string]time.Duration{}
				for j := range modes {
					mode := modes[(i+j)%len(modes)]
					d, c, rss, out := childCPU(b, mode, ref)
					it[mode] = d
					took[mode] = append(took[mode], d)
					cpu[mode] = append(cpu[mode], c)
					switch mode {
					case "baseline", "baseline-synced":
						baseRSS = max(baseRSS, rss)
					case "seed", "seed-nosync":
						if out != "100" {
							b.Fatalf("%s staged %q paths, want 100", mode, out)
						}
						seedRSS = max(seedRSS, rss)
					}
				}
				ratio = append(ratio, it["seed"].Seconds()/it["baseline-synced"].Seconds())
				ratioNoSync = append(ratioNoSync, it["seed-nosync"].Seconds()/it["baseline"].Seconds())
			}
			b.StopTimer()
			b.ReportMetric(medianOf(ratio), "ratio")
			b.ReportMetric(slices.Max(ratio), "ratio-max")
			b.ReportMetric(medianOf(ratioNoSync), "ratio-nosync")
			for _, m := range modes {
				b.ReportMetric(median(took[m]).Seconds(), m+"-s")
			}
			cpus := func(m string) float64 {
				var c, w time.Duration
				for i := range took[m] {
					c, w = c+cpu[m][i], w+took[m][i]
				}
				return c.Seconds() / w.Seconds()
			}
			b.ReportMetric(cpus("baseline-synced"), "baseline-cpus")
			b.ReportMetric(cpus("seed"), "seed-cpus")
			b.ReportMetric(cpus("seed-nosync"), "seed-nosync-cpus")
			b.ReportMetric(float64(baseRSS)/1e6, "baseline-peak-MB")
			b.ReportMetric(float64(seedRSS)/1e6, "seed-peak-MB")
		})
	}
}

func medianOf(fs []float64) float64 {
	s := slices.Clone(fs)
	slices.Sort(s)
	return s[len(s)/2]
}

// BenchmarkSeedLayers seeds an image of 2,000 one-file layers (one small
// store path each) and reports the CPU time (user + system of the seeding
// process) per layer, against `crane export | tar -x` of the same image
// in the same run: what each layer costs beyond creating its files.
func BenchmarkSeedLayers(b *testing.B) {
	const layers = 2000
	ref := benchImageOf(b, layers-1, 1, 64) // and the top layer
	modes := []string{"baseline", "seed-nosync"}
	for _, m := range modes {
		child(b, m, ref) // warm up
	}
	b.ResetTimer()
	cpu := map[string][]time.Duration{}
	for i := 0; i < b.N; i++ {
		for j := range modes {
			mode := modes[(i+j)%len(modes)]
			_, c, _, out := childCPU(b, mode, ref)
			if mode != "baseline" && out != fmt.Sprint(layers-1) {
				b.Fatalf("%s staged %q paths, want %d", mode, out, layers-1)
			}
			cpu[mode] = append(cpu[mode], c)
		}
	}
	seedCPU, baseCPU := median(cpu["seed-nosync"]), median(cpu["baseline"])
	b.ReportMetric(seedCPU.Seconds()*1e3/layers, "seed-cpu-ms/layer")
	b.ReportMetric(baseCPU.Seconds()*1e3/layers, "baseline-cpu-ms/layer")
	b.ReportMetric(seedCPU.Seconds()/baseCPU.Seconds(), "cpu-ratio")
}
