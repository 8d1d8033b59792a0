package seed_test

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"

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
	if bench.tmp != "" {
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
	case "baseline":
		if err := exportExtract(ref, dir); err != nil {
			return err
		}
		fmt.Println(0, peakRSS())
		return nil
	}
	return fmt.Errorf("unknown child mode %q", mode)
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
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		return err
	}
	img, err := remote.Image(r)
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
	bench.once.Do(func() {
		srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
		bench.host = strings.TrimPrefix(srv.URL, "http://")
		var err error
		if bench.tmp, err = os.MkdirTemp("", "hydrafy-bench-"); err != nil {
			b.Fatal(err)
		}
		bench.refs = map[string]string{}
	})
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

// child runs one contender into a fresh dir and returns its wall time,
// peak RSS and the paths it staged; the dir is removed afterwards, untimed.
func child(b *testing.B, mode, ref string) (time.Duration, int64, string) {
	d, _, rss, paths := childCPU(b, mode, ref)
	return d, rss, paths
}

// childCPU is child that also returns the CPU time (user + system) used.
func childCPU(b *testing.B, mode, ref string) (time.Duration, time.Duration, int64, string) {
	dir := filepath.Join(bench.tmp, "out-"+mode)
	cmd := nixtest.Command(mode, childRef+"="+ref, childDir+"="+dir)
	start := time.Now()
	out, err := cmd.Output()
	d := time.Since(start)
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			b.Fatalf("%s: %v: %s", mode, err, ee.Stderr)
		}
		b.Fatal(err)
	}
	var paths string
	var rss int64
	if _, err := fmt.Sscan(string(out), &paths, &rss); err != nil {
		b.Fatalf("%s printed %q: %v", mode, out, err)
	}
	exec.Command("chmod", "-R", "u+w", dir).Run()
	if err := os.RemoveAll(dir); err != nil {
		b.Fatal(err)
	}
	return d, cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(), rss, paths
}

// BenchmarkSeed seeds a 100-path, one-path-per-layer image from a loopback
// registry and compares it with `crane export | tar -x` of the same image
// in the same run. ratio is seed time / baseline time with both leaving
// the data to the kernel's writeback (NoSync, as tar does); ratio-synced
// is the seed as the CLI runs it, flushing the store to disk before the
// rename. Peak memory (VmHWM of each child process) is reported for two
// image sizes: it must not grow with the image.
func BenchmarkSeed(b *testing.B) {
	for _, size := range []struct {
		name  string
		files int
	}{{"75MB-2.5kfiles", 25}, {"300MB-10kfiles", 100}} {
		b.Run(size.name, func(b *testing.B) {
			ref := benchImage(b, size.files)
			modes := []string{"baseline", "seed-nosync", "seed"}
			for _, m := range modes {
				child(b, m, ref) // warm up: page cache, allocator, registry
			}
			b.ResetTimer()
			took, cpu := map[string]time.Duration{}, map[string]time.Duration{}
			var baseRSS, seedRSS int64
			for i := 0; i < b.N; i++ {
				// Rotate the order: a run can pay for what the one before left.
				for j := range modes {
					mode := modes[(i+j)%len(modes)]
					d, c, rss, out := childCPU(b, mode, ref)
					took[mode] += d
					cpu[mode] += c
					if mode == "baseline" {
						baseRSS = max(baseRSS, rss)
						continue
					}
					if out != "100" {
						b.Fatalf("%s staged %q paths, want 100", mode, out)
					}
					seedRSS = max(seedRSS, rss)
				}
			}
			base, fast, synced := took["baseline"], took["seed-nosync"], took["seed"]
			n := float64(b.N)
			b.ReportMetric(fast.Seconds()/base.Seconds(), "ratio")
			b.ReportMetric(synced.Seconds()/base.Seconds(), "ratio-synced")
			b.ReportMetric(base.Seconds()/n, "baseline-s/op")
			b.ReportMetric(fast.Seconds()/n, "seed-s/op")
			b.ReportMetric(synced.Seconds()/n, "seed-synced-s/op")
			b.ReportMetric(cpu["baseline"].Seconds()/base.Seconds(), "baseline-cpus")
			b.ReportMetric(cpu["seed-nosync"].Seconds()/fast.Seconds(), "seed-cpus")
			b.ReportMetric(float64(baseRSS)/1e6, "baseline-peak-MB")
			b.ReportMetric(float64(seedRSS)/1e6, "seed-peak-MB")
		})
	}
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
