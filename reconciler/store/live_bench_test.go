package store

import (
	"context"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// BenchmarkMergeLiveVsDrain merges the 100-path release bigB (15 new
// paths) into copies of bigA, drained and live in turn, and prints the
// median time of each and the ratio live/drained: what the path locks,
// the re-check and the reserve copies cost. The staged files are flushed
// before each merge so that both sync the same clean files.
func BenchmarkMergeLiveVsDrain(b *testing.B) {
	times := map[bool][]time.Duration{}
	for b.Loop() {
		for _, live := range []bool{false, true} {
			b.StopTimer()
			liveDir := template(b, "go-big-a", goStore(bigA))
			staged := template(b, "go-big-b", goStore(bigB))
			if err := syncFS(liveDir); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			start := time.Now()
			rep, err := Merge(context.Background(), liveDir, staged, MergeOptions{Live: live})
			if err != nil {
				b.Fatal(err)
			}
			times[live] = append(times[live], time.Since(start))
			if len(rep.Added) != 15 {
				b.Fatalf("added %d paths, want 15", len(rep.Added))
			}
		}
	}
	med := func(d []time.Duration) time.Duration {
		d = slices.Clone(d)
		slices.Sort(d)
		return d[len(d)/2]
	}
	dm, lm := med(times[false]), med(times[true])
	b.ReportMetric(lm.Seconds()/dm.Seconds(), "live/drain")
	fmt.Printf("merge of 15 new paths (of 100): drained %v, live %v (medians of %d); live/drain = %.2f\n",
		dm.Round(time.Microsecond), lm.Round(time.Microsecond), len(times[true]), lm.Seconds()/dm.Seconds())
}

// syncFS flushes the filesystem that holds dir.
func syncFS(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return unix.Syncfs(int(f.Fd()))
}
