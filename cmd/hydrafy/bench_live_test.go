package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"gitlab.com/hydrafy/hydrafy/internal/nixtest"
	"gitlab.com/hydrafy/hydrafy/internal/synth"
	"gitlab.com/hydrafy/hydrafy/reconciler"
)

// jobRunner is a runner serving one job that holds the store's big-lock
// shared (a real `flock -s` process, as a job's Nix holds it): WaitIdle
// waits for the job to end; stop and start are instant, so what the
// benchmark measures is the drain and hydrafy's own work.
type jobRunner struct {
	quickRunner
	job  *exec.Cmd
	done chan struct{}
}

func (r *jobRunner) WaitIdle(ctx context.Context) error {
	select {
	case <-r.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// startJob starts a job that holds dir's store open for d.
func startJob(b *testing.B, dir string, d time.Duration) *jobRunner {
	b.Helper()
	lock := filepath.Join(dir, "nix/var/nix/db/big-lock")
	cmd := exec.Command("flock", "-s", lock, "sleep", strconv.FormatFloat(d.Seconds(), 'f', 3, 64))
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	r := &jobRunner{job: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); close(r.done) }()
	b.Cleanup(func() { cmd.Process.Kill(); <-r.done })
	for exec.Command("flock", "-n", "-x", lock, "true").Run() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	return r
}

// jobStager starts the job once the image is staged: the job then holds
// the store for its whole N seconds from the first moment the upgrade
// could commit. It flushes the staged files to disk first, so that both
// merges sync the same (clean) files: a drain would otherwise give the
// kernel seconds to write them back that a live merge does not get, and
// the merge times would compare the page cache rather than the merges.
type jobStager struct {
	reconciler.Stager
	dir   string
	start func()
}

func (s jobStager) Stage(ctx context.Context, ref string) (reconciler.Staged, error) {
	st, err := s.Stager.Stage(ctx, ref)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(s.dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if err := unix.Syncfs(int(f.Fd())); err != nil {
		return nil, err
	}
	s.start()
	return st, nil
}

// BenchmarkUpgradeDrainVsLive runs one upgrade per mode and iteration (a
// reconcile pass merging release B into a store holding A, real stager and
// store) while a job holds the store open for N seconds
// (HYDRAFY_BENCH_JOB_SECONDS, default 2) from the end of the staging: runner
// downtime (stop to start), queue stall (pause to unpause: queued jobs
// wait) and the merge's own time (the commit step), drained and live. It
// prints medians and the live merge's time as a ratio of the drained one.
func BenchmarkUpgradeDrainVsLive(b *testing.B) {
	jobFor := 2 * time.Second
	if s := os.Getenv("HYDRAFY_BENCH_JOB_SECONDS"); s != "" {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			b.Fatalf("HYDRAFY_BENCH_JOB_SECONDS: %v", err)
		}
		jobFor = time.Duration(f * float64(time.Second))
	}
	host := nixtest.Registry(b)
	base := synth.ReleaseOptions{Paths: 80, Shared: 60, Base: "nixpkgs", FilesPerPath: 12, FileSize: 32 << 10}
	digestA, _ := pushSynth(b, host, "2.24.9", base)
	digestB, _ := pushSynth(b, host, "2.25.0", base)
	repo := host + "/nixos/nix"

	type sample struct{ down, stall, drain, merge float64 }
	got := map[string][]sample{}
	for b.Loop() {
		for _, mode := range []string{"drain", "live"} {
			dir, live, stager := benchStore(b, repo+"@"+digestA)
			job := &jobRunner{}
			stager = jobStager{Stager: stager, dir: live, start: func() { *job = *startJob(b, live, jobFor) }}
			rec, err := reconciler.New(reconciler.Options{
				Image:     repo,
				Projects:  []reconciler.Project{{Path: "group/app", Files: []string{".gitlab-ci.yml"}}},
				StoreDir:  live,
				StateDir:  filepath.Join(dir, "state"),
				LiveMerge: mode == "live",
				Repo:      pinnedRepo{ci: "build:\n  image: " + repo + "@" + digestB + "\n"},
				Find:      reconciler.PinFind,
				Stager:    stager,
				Runner:    job,
			}, nil)
			if err != nil {
				b.Fatal(err)
			}
			rep := rec.Once(context.Background(), reconciler.Reason{Kind: reconciler.KindManual})
			rec.Close()
			if rep.Result != reconciler.ResultOK || rep.Mode != mode || len(rep.Commits) != 1 || rep.Commits[0].PathsAdded == 0 {
				b.Fatalf("%s pass: %s %q, mode %q, commits %+v", mode, rep.Result, rep.Error, rep.Mode, rep.Commits)
			}
			if mode == "live" {
				select {
				case <-job.done:
					b.Fatalf("the job ended before the live pass did: raise HYDRAFY_BENCH_JOB_SECONDS")
				default:
				}
			}
			s := sample{down: rep.DowntimeSeconds, stall: rep.StallSeconds, drain: rep.DrainSeconds}
			for _, st := range rep.Steps {
				if st.Name == "commit" {
					s.merge += st.Seconds
				}
			}
			got[mode] = append(got[mode], s)
		}
	}
	med := func(mode string, f func(sample) float64) float64 {
		var v []float64
		for _, s := range got[mode] {
			v = append(v, f(s))
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	for _, mode := range []string{"drain", "live"} {
		down, stall := med(mode, func(s sample) float64 { return s.down }), med(mode, func(s sample) float64 { return s.stall })
		drain, merge := med(mode, func(s sample) float64 { return s.drain }), med(mode, func(s sample) float64 { return s.merge })
		b.ReportMetric(down, mode+"-downtime-s")
		b.ReportMetric(stall, mode+"-stall-s")
		b.ReportMetric(merge, mode+"-merge-s")
		fmt.Printf("%-5s upgrade with a job holding the store %.1fs: runner downtime %.3fs, queue stall %.3fs (drain %.3fs), merge %.3fs (medians of %d)\n",
			mode, jobFor.Seconds(), down, stall, drain, merge, len(got[mode]))
	}
	dm, lm := med("drain", func(s sample) float64 { return s.merge }), med("live", func(s sample) float64 { return s.merge })
	ds := med("drain", func(s sample) float64 { return s.stall })
	fmt.Printf("(a job starts holding the store %.1fs as staging ends; stall = pause to unpause, downtime = stop to start)\n", jobFor.Seconds())
	fmt.Printf("live/drain: merge time %.2f, queue stall %.3fs vs %.3fs, downtime %.3fs vs %.3fs\n",
		lm/dm, med("live", func(s sample) float64 { return s.stall }), ds,
		med("live", func(s sample) float64 { return s.down }), med("drain", func(s sample) float64 { return s.down }))
}
