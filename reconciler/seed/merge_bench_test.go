package seed_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"gitlab.com/hydrafy/hydrafy/internal/nixtest"
	"gitlab.com/hydrafy/hydrafy/internal/synth"
	"gitlab.com/hydrafy/hydrafy/reconciler/seed"
	"gitlab.com/hydrafy/hydrafy/reconciler/store"
)

// benchRelease is a nixos/nix-shaped release: 100 store paths (one layer
// each, 32 MB in all), 85 of them shared with the other release of the
// same base.
func benchRelease(version, base string, shared int) synth.Spec {
	return synth.Release(synth.ReleaseOptions{Version: version, Paths: 100, Shared: shared, Base: base, FilesPerPath: 10, FileSize: 32 << 10})
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
// layer, then store.Merge), and (c) the same merge into a store that
// registers 10× as many paths (the previous release plus 900 more). Each seed is timed whole,
// staging included; the copies of the live store that each iteration
// starts from are made and flushed to disk outside the timing.
//
// Metrics, medians over the iterations (a shared machine's disk makes
// single runs noisy): fresh-ms, merge-ms, merge10x-ms (whole seed),
// commit-ms and commit10x-ms (store.Merge alone, lock to commit), and the
// ratios merge/fresh and merge10x/merge of those medians.
func BenchmarkSeedMerge(b *testing.B) {
	ctx := context.Background()
	tmp := b.TempDir()
	host := nixtest.Registry(b)
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
	live10 := filepath.Join(tmp, "live10")
	cp(b, live1, live10)
	for i := range 9 {
		extra := filepath.Join(live10, fmt.Sprintf("extra%d", i))
		if _, err := synth.Build(extra, extraPaths(i)); err != nil {
			b.Fatal(err)
		}
		if _, err := store.Merge(ctx, live10, extra, store.MergeOptions{}); err != nil {
			b.Fatal(err)
		}
		if err := os.RemoveAll(extra); err != nil {
			b.Fatal(err)
		}
	}
	if n := len(nixtest.Paths(b, live10)); n != 1000 {
		b.Fatalf("the 10× store holds %d paths", n)
	}

	var runRef func(ref, dir string) (*seed.Result, time.Duration)
	var fresh, merge1, merge10, mergePlain, commit1, commit10 []time.Duration
	run := func(dir string) (*seed.Result, time.Duration) {
		return runRef(newRef, dir)
	}
	runRef = func(ref, dir string) (*seed.Result, time.Duration) {
		unix.Sync()
		start := time.Now()
		res, err := seed.Seed(ctx, ref, seed.Options{Store: dir})
		if err != nil {
			b.Fatal(err)
		}
		return res, time.Since(start)
	}
	b.ResetTimer()
	for i := range b.N {
		it := filepath.Join(tmp, fmt.Sprintf("it%d", i))
		if err := os.Mkdir(it, 0o755); err != nil {
			b.Fatal(err)
		}
		res, d := run(filepath.Join(it, "fresh"))
		if res.How != seed.Fresh || res.Paths != 100 {
			b.Fatalf("fresh seed: %+v", res)
		}
		fresh = append(fresh, d)

		// The merges take turns at going first.
		for k := range 3 {
			switch (i + k) % 3 {
			case 2:
				cp(b, live1plain, filepath.Join(it, "plain"))
				res, d = runRef(newPlain, filepath.Join(it, "plain"))
				if res.How != seed.Merged || len(res.Merge.Added) != 15 || res.LayersSkipped != 85 {
					b.Fatalf("merge without history comments: %+v", res)
				}
				mergePlain = append(mergePlain, d)
			case 0:
				cp(b, live1, filepath.Join(it, "merge"))
				res, d = run(filepath.Join(it, "merge"))
				if res.How != seed.Merged || len(res.Merge.Added) != 15 || res.LayersSkipped != 85 {
					b.Fatalf("merge: %+v", res)
				}
				merge1 = append(merge1, d)
				commit1 = append(commit1, res.Merge.Duration)
			default:
				cp(b, live10, filepath.Join(it, "merge10"))
				res, d = run(filepath.Join(it, "merge10"))
				if res.How != seed.Merged || len(res.Merge.Added) != 15 || res.LayersSkipped != 85 {
					b.Fatalf("merge into the 10× store: %+v", res)
				}
				merge10 = append(merge10, d)
				commit10 = append(commit10, res.Merge.Duration)
			}
		}
		if out, err := exec.Command("rm", "-rf", it).CombinedOutput(); err != nil {
			b.Fatalf("removing %s: %v %s", it, err, out)
		}
	}
	b.StopTimer()
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1e3 }
	b.ReportMetric(ms(median(fresh)), "fresh-ms")
	b.ReportMetric(ms(median(merge1)), "merge-ms")
	b.ReportMetric(ms(median(merge10)), "merge10x-ms")
	b.ReportMetric(ms(median(commit1)), "commit-ms")
	b.ReportMetric(ms(median(commit10)), "commit10x-ms")
	b.ReportMetric(float64(median(merge1))/float64(median(fresh)), "merge/fresh")
	b.ReportMetric(float64(median(mergePlain))/float64(median(fresh)), "merge-nohistory/fresh")
	b.ReportMetric(float64(slices.Max(mergePlain))/float64(median(fresh)), "merge-nohistory-max/fresh")
	b.ReportMetric(float64(slices.Max(merge1))/float64(median(fresh)), "merge-max/fresh")
	b.ReportMetric(float64(median(merge10))/float64(median(merge1)), "merge10x/merge")
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
