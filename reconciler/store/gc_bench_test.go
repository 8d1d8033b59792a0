package store

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"gitlab.com/hydrafy/hydrafy/internal/synth"
)

// BenchmarkGC measures, in one run, a collection that deletes an old
// release's own paths and 900 old build results from a store of about
// 1,100 paths (release A, release B merged into it, the builds), against
// the floor of deleting the same trees and nothing else (rm -rf of each,
// on another copy): what the db work, the plan, the sweep and the roots
// add to the file removal that any collector must do. Each iteration
// starts from fresh copies of the store, made outside the timing.
//
// Metrics, medians over the iterations: gc-ms (lock to the end), rm-ms,
// gc/rm, and deleted (paths per collection).
func BenchmarkGC(b *testing.B) {
	ctx := context.Background()
	build := func(t testing.TB, root string) {
		goStore(bigA)(t, root)
		staged := filepath.Join(filepath.Dir(root), "bench-gc-b")
		goStore(bigB)(t, staged)
		if _, err := Merge(ctx, root, staged, MergeOptions{}); err != nil {
			t.Fatal(err)
		}
		for i := range 9 {
			v := fmt.Sprintf("build%d", i)
			extra := filepath.Join(filepath.Dir(root), "bench-gc-"+v)
			// Registered at time 1 by synth: builds long past keep_builds.
			goStore(synth.Release(synth.ReleaseOptions{Version: v, Paths: 100, Base: v, FilesPerPath: 2, FileSize: 512}))(t, extra)
			if _, err := Merge(ctx, root, extra, MergeOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		if err := RecordImage(root, "nixos/nix@"+digestA, nil, bigA.StorePaths()); err != nil {
			t.Fatal(err)
		}
		if err := RecordImage(root, "nixos/nix@"+digestB, nil, bigB.StorePaths()); err != nil {
			t.Fatal(err)
		}
	}
	pol := GCPolicy{Digests: []string{digestB}, KeepBuilds: 14 * 24 * time.Hour}
	var gcs, rms []time.Duration
	deleted := 0
	for b.Loop() {
		b.StopTimer()
		live, floor := template(b, "bench-gc", build), template(b, "bench-gc", build)
		syncDisks(b)
		b.StartTimer()
		start := time.Now()
		rep, err := GC(ctx, live, GCOptions{Policy: pol})
		if err != nil {
			b.Fatal(err)
		}
		gcs = append(gcs, time.Since(start))
		deleted = rep.PathsDeleted
		var gone []string
		for _, img := range rep.Images {
			gone = append(gone, img.Paths...)
		}
		for _, bl := range rep.Builds {
			gone = append(gone, bl.Path)
		}
		start = time.Now()
		for _, p := range gone {
			if err := removeTree(filepath.Join(floor, p)); err != nil {
				b.Fatal(err)
			}
		}
		rms = append(rms, time.Since(start))
	}
	b.StopTimer()
	med := func(d []time.Duration) time.Duration {
		s := slices.Clone(d)
		slices.Sort(s)
		return s[len(s)/2]
	}
	b.ReportMetric(float64(med(gcs).Microseconds())/1000, "gc-ms")
	b.ReportMetric(float64(med(rms).Microseconds())/1000, "rm-ms")
	b.ReportMetric(float64(med(gcs))/float64(med(rms)), "gc/rm")
	b.ReportMetric(float64(deleted), "deleted")
}

// syncDisks flushes the filesystems, so that the copies' writeback does not
// land in the timing.
func syncDisks(b *testing.B) {
	b.Helper()
	if out, err := exec.Command("sync").CombinedOutput(); err != nil {
		b.Fatalf("sync: %v: %s", err, out)
	}
}
