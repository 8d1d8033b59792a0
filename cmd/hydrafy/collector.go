package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"gitlab.com/hydrafy/hydrafy/config"
	"gitlab.com/hydrafy/hydrafy/reconciler"
	"gitlab.com/hydrafy/hydrafy/reconciler/store"
)

// storeCollector adapts the store's garbage collection to the reconciler:
// the [gc] policy, with the digests to keep given by the caller.
type storeCollector struct {
	dir         string // absolute live store dir
	gc          config.GC
	lockTimeout time.Duration
	log         *slog.Logger
	progress    io.Writer
}

var _ reconciler.Collector = (*storeCollector)(nil)

// policy is the [gc] policy keeping digests; the roots file is read now.
func (c *storeCollector) policy(digests []string) (store.GCPolicy, error) {
	roots, err := readRootsFile(c.gc.RootsFile)
	if err != nil {
		return store.GCPolicy{}, err
	}
	return store.GCPolicy{
		Digests:    digests,
		KeepImages: c.gc.KeepImages.D(),
		KeepBuilds: c.gc.KeepBuilds.D(),
		Roots:      roots,
		MaxSize:    int64(c.gc.MaxSize),
	}, nil
}

// run collects (or plans, dryRun) with the store's report.
func (c *storeCollector) run(ctx context.Context, digests []string, dryRun bool) (store.GCReport, error) {
	pol, err := c.policy(digests)
	if err != nil {
		return store.GCReport{}, err
	}
	return store.GC(ctx, c.dir, store.GCOptions{
		Policy: pol, DryRun: dryRun, LockTimeout: c.lockTimeout, Log: c.log, Progress: c.progress,
	})
}

// Plan reports what Collect would delete, with no lock and no change.
func (c *storeCollector) Plan(ctx context.Context, digests []string) (reconciler.CollectReport, error) {
	rep, err := c.run(ctx, digests, true)
	if err != nil {
		return reconciler.CollectReport{}, err
	}
	return c.report(rep), nil
}

// Collect deletes under the big-lock.
func (c *storeCollector) Collect(ctx context.Context, digests []string) (reconciler.CollectReport, error) {
	rep, err := c.run(ctx, digests, false)
	if err != nil {
		return reconciler.CollectReport{}, err
	}
	return c.report(rep), nil
}

func (c *storeCollector) report(rep store.GCReport) reconciler.CollectReport {
	out := reconciler.CollectReport{
		At: time.Now().UTC(), DryRun: rep.DryRun,
		PathsDeleted: rep.PathsDeleted, BytesFreed: rep.BytesFreed, Leftovers: len(rep.Leftovers),
		PathsKept: rep.PathsKept, BytesKept: rep.BytesKept, Seconds: rep.Duration.Seconds(),
	}
	if sp, err := c.Space(); err == nil {
		out.Space = sp
	}
	return out
}

// Space reports the store filesystem's free space (what an unprivileged
// writer may use) and min_free in bytes.
func (c *storeCollector) Space() (reconciler.Space, error) {
	free, total, err := fsSpace(c.dir)
	if err != nil {
		return reconciler.Space{}, err
	}
	return reconciler.Space{Dir: c.dir, Free: free, Total: total, MinFree: c.gc.MinFree.Of(total)}, nil
}

// fsSpace returns the free (available) and total bytes of dir's filesystem.
func fsSpace(dir string) (free, total int64, err error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, 0, fmt.Errorf("reading the free space of %s: %w", dir, err)
	}
	return int64(st.Bavail) * st.Bsize, int64(st.Blocks) * st.Bsize, nil
}

// readRootsFile reads one store path a line; blank lines and lines
// starting with # are skipped. An empty name is no file.
func readRootsFile(name string) ([]string, error) {
	if name == "" {
		return nil, nil
	}
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("reading the GC roots file: %w", err)
	}
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if !strings.HasPrefix(line, "/nix/store/") {
			return nil, fmt.Errorf("%s:%d: %q is not a store path (/nix/store/…)", name, n, line)
		}
		out = append(out, line)
	}
	return out, nil
}
