package seed_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"gitlab.com/hydrafy/hydrafy/internal/nixtest"
	"gitlab.com/hydrafy/hydrafy/internal/synth"
	"gitlab.com/hydrafy/hydrafy/reconciler/seed"
	"gitlab.com/hydrafy/hydrafy/reconciler/store"
)

// benchRelease is a nixos/nix-shaped release: 100 store paths (one layer
// each, 10,000 files, 300 MB in all, as a nixos/nix image holds), 85 of
// them shared with the other release of the same base.
func benchRelease(version, base string, shared int) synth.Spec {
	return synth.Release(synth.ReleaseOptions{Version: version, Paths: 100, Shared: shared, Base: base, FilesPerPath: 100, FileSize: 30_000})
}

// extraPaths are 100 small paths that make a live store bigger: what
// matters to a merge is how many paths the store registers, not their size.
func extraPaths(i int) synth.Spec {
	v := fmt.Sprintf("extra%d", i)
	return synth.Release(synth.ReleaseOptions{Version: v, Paths: 100, Base: v, FilesPerPath: 2, FileSize: 512})
}

// BenchmarkSeedMerge measures, in one run, `hydrafy seed` of a release
// (a) into an empty dir (fresh: pull, extract and verify all 100 layers,
// install), (b) into a store holding the previous release, which shares
// 85% of the paths (merge: pull and verify the 15 new layers and the db
// layer, then store.Merge), (c) the same merge into a store that
// registers 10× as many paths (the previous release plus 900 more), and
// the merge of the same layers in images without history comments (d)
// into a store whose layer records hydrafy made when it seeded the
// previous release and (e) into a store seeded by other means, which has
// no layer records. Each seed is a process of its own, timed whole; the
// copies of the live store that each iteration starts from are made and
// flushed to disk outside the timing, and the kinds take turns at going
// first. One more kind is the merge into a copy not yet flushed to disk:
// what a merge costs right after 300 MB of other writes.
//
// Metrics, medians over the iterations (a shared machine's disk makes
// single runs noisy): fresh-ms, merge-ms, merge10x-ms (whole seed),
// commit-ms and commit10x-ms (store.Merge alone, lock to commit); each
// kind's run against the fresh seed of the same iteration, the median of
// those ratios, the largest (-max) and the first iteration's (-first: what
// the first merge of a series costs); and merge10x/merge.
func BenchmarkSeedMerge(b *testing.B) {
	w := mergeBenchWorld(b)
	kinds := []struct {
		name, ref, from string
		skipped         int
		unflushed       bool
	}{
		{"fresh", w.newRef, "", 0, false},
		{"merge", w.newRef, w.live1, 85, false},
		{"merge10x", w.newRef, w.live10, 85, false},
		{"merge-nohistory", w.newPlain, w.live1plain, 85, false},
		{"merge-norecords", w.newPlain, w.bare, 0, false},
		// The merge right after the live store was copied, its 300 MB
		// not yet written back: what a run pays for the writes before it.
		{"merge-unflushed", w.newRef, w.live1, 85, true},
	}
	took, commit := map[string][]time.Duration{}, map[string][]time.Duration{}
	b.ResetTimer()
	for i := range b.N {
		w.runs++
		it := filepath.Join(w.tmp, fmt.Sprintf("it%d", w.runs))
		if err := os.Mkdir(it, 0o755); err != nil {
			b.Fatal(err)
		}
		for k := range kinds {
			kind := kinds[(i+k)%len(kinds)]
			dir := filepath.Join(it, kind.name)
			unix.Sync()
			if kind.from != "" {
				cp(b, kind.from, dir)
			}
			if !kind.unflushed {
				unix.Sync()
			}
			res, d := seedProcess(b, kind.ref, dir)
			want := seed.Merged
			if kind.from == "" {
				want = seed.Fresh
			}
			if res.How != want || want == seed.Merged && (res.Added != 15 || res.LayersSkipped != kind.skipped) || want == seed.Fresh && res.Paths != 100 {
				b.Fatalf("%s: %+v", kind.name, res)
			}
			took[kind.name] = append(took[kind.name], d)
			commit[kind.name] = append(commit[kind.name], res.Commit)
		}
		// The iteration's stores stay until the process ends (see
		// childCPU: deleting them would slow the next runs' creates).
	}
	b.StopTimer()
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1e3 }
	b.ReportMetric(ms(median(took["fresh"])), "fresh-ms")
	b.ReportMetric(ms(median(took["merge"])), "merge-ms")
	b.ReportMetric(ms(median(took["merge10x"])), "merge10x-ms")
	b.ReportMetric(ms(median(commit["merge"])), "commit-ms")
	b.ReportMetric(ms(median(commit["merge10x"])), "commit10x-ms")
	// Each run against the fresh seed of its own iteration: the disk's
	// speed drifts over a run of minutes, and a ratio within one iteration
	// does not.
	for _, k := range kinds[1:] {
		ratios := make([]float64, b.N)
		for i := range ratios {
			ratios[i] = float64(took[k.name][i]) / float64(took["fresh"][i])
		}
		b.ReportMetric(medianOf(ratios), k.name+"/fresh")
		b.ReportMetric(slices.Max(ratios), k.name+"-max/fresh")
		b.ReportMetric(ratios[0], k.name+"-first/fresh")
	}
	b.ReportMetric(float64(median(took["merge10x"]))/float64(median(took["merge"])), "merge10x/merge")
}

// mergeWorld is what BenchmarkSeedMerge's runs start from: both releases
// pushed (with and without history comments) and the live stores that
// each iteration copies. It is built once per process and kept until the
// process ends (see benchSetup).
type mergeWorld struct {
	tmp              string
	newRef, newPlain string
	// live1 holds the previous release; live1plain the same, seeded from
	// the image without history; bare that, without layer records; live10
	// the previous release and 900 more paths.
	live1, live1plain, bare, live10 string
	runs                            int // iterations run, for their dirs' names
}

var mergeBench struct {
	once sync.Once
	w    *mergeWorld
}

func mergeBenchWorld(b *testing.B) *mergeWorld {
	mergeBench.once.Do(func() { mergeBench.w = buildMergeWorld(b) })
	if mergeBench.w == nil {
		b.Fatal("building the benchmark's stores failed in an earlier run")
	}
	return mergeBench.w
}

func buildMergeWorld(b *testing.B) *mergeWorld {
	ctx := context.Background()
	benchSetup(b)
	tmp, err := os.MkdirTemp(bench.tmp, "merge-")
	if err != nil {
		b.Fatal(err)
	}
	host := bench.host
	push := func(name string, spec synth.Spec) (string, string) {
		root := filepath.Join(tmp, "build-"+name)
		if _, err := synth.Build(root, spec); err != nil {
			b.Fatal(err)
		}
		img, err := synth.Image(root, synth.ImageOptions{})
		if err != nil {
			b.Fatal(err)
		}
		ref := host + "/nixos/nix:" + name
		nixtest.PushImage(b, ref, img)
		// The same layers in an image without history comments.
		plain := host + "/plain/nix:" + name
		nixtest.PushImage(b, plain, noHistory(b, img, false))
		return ref, plain
	}
	oldRef, oldPlain := push("old", benchRelease("2.24.9", "nixpkgs", 85))
	newRef, newPlain := push("new", benchRelease("2.25.0", "nixpkgs", 85))

	live1 := filepath.Join(tmp, "live1")
	if _, err := seed.Seed(ctx, oldRef, seed.Options{Store: live1}); err != nil {
		b.Fatal(err)
	}
	// A series of images without history comments: their layer records
	// come from what the layers held.
	live1plain := filepath.Join(tmp, "live1plain")
	if _, err := seed.Seed(ctx, oldPlain, seed.Options{Store: live1plain}); err != nil {
		b.Fatal(err)
	}
	// The same store, seeded by other means: no layer records at all.
	bare := filepath.Join(tmp, "bare")
	cp(b, live1plain, bare)
	if err := os.RemoveAll(filepath.Join(bare, ".hydrafy")); err != nil {
		b.Fatal(err)
	}
	live10 := filepath.Join(tmp, "live10")
	cp(b, live1, live10)
	for i := range 9 {
		// Built beside it (same filesystem) and kept: nothing is deleted
		// before the timed runs (see childCPU).
		extra := filepath.Join(tmp, fmt.Sprintf("extra%d", i))
		if _, err := synth.Build(extra, extraPaths(i)); err != nil {
			b.Fatal(err)
		}
		if _, err := store.Merge(ctx, live10, extra, store.MergeOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	if n := len(nixtest.Paths(b, live10)); n != 1000 {
		b.Fatalf("the 10× store holds %d paths", n)
	}

	return &mergeWorld{tmp: tmp, newRef: newRef, newPlain: newPlain, live1: live1, live1plain: live1plain, bare: bare, live10: live10}
}

// seeded is what a seed process reports.
type seeded struct {
	How           seed.How
	Paths, Added  int
	LayersSkipped int
	Commit        time.Duration // the merge's, lock to commit
}

// seedProcess runs `hydrafy seed ref` into dir as a process of its own
// (this test binary's child) and returns its report and wall time.
func seedProcess(b *testing.B, ref, dir string) (seeded, time.Duration) {
	b.Helper()
	cmd := nixtest.Command("seed-report", childRef+"="+ref, childDir+"="+dir)
	out, d := childOutput(b, cmd, "seed "+ref)
	var r seeded
	if err := json.Unmarshal(out, &r); err != nil {
		b.Fatalf("seed %s printed %q: %v", ref, out, err)
	}
	return r, d
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// cp copies a store dir as it is (cp -a).
func cp(b *testing.B, src, dst string) {
	b.Helper()
	if out, err := exec.Command("cp", "-a", src, dst).CombinedOutput(); err != nil {
		b.Fatalf("cp -a %s %s: %v %s", src, dst, err, out)
	}
}
