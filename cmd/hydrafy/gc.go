package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/dustin/go-humanize"

	"gitlab.com/hydrafy/hydrafy/config"
	"gitlab.com/hydrafy/hydrafy/reconciler"
	"gitlab.com/hydrafy/hydrafy/reconciler/store"
)

const gcUsage = `usage: hydrafy gc --config FILE [--dry-run] [--json]
       hydrafy gc --store DIR --keep REF@DIGEST [--keep REF@DIGEST…] [--keep-builds D]
                  [--keep-images D] [--roots FILE] [--max-size SIZE] [--dry-run] [--lock-timeout D] [--json]

Deletes the store paths of the live store that nothing keeps. Kept, with
everything they reference: the images pinned (with --config: every digest
pinned on any branch of the watched projects, and runner.default_image;
with --store: the --keep images, as they were seeded), every image seeded
within keep_images, every build result (a path no seeded image holds)
registered within keep_builds, and the paths of the roots file. With a max
size, kept build results go too, oldest first, until the store fits.

Paths are deleted only while no Nix process has the store open: with
--config the runner is drained and stopped as for a merge; with --store it
waits up to --lock-timeout for every job to close the store. Then the
paths' rows go in one transaction, then their files. Afterwards
DIR/nix/var/nix/gcroots/hydrafy holds a GC root for everything kept.
--dry-run prints what would go, grouped, and changes nothing.`

// runGC is `hydrafy gc`.
func runGC(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("gc", gcUsage, stdout, stderr)
	def := config.Default().GC
	cfgPath := fs.String("config", "", "config `FILE`: the [gc] policy, the watched projects and the runner")
	dir := fs.String("store", "", "store `DIR` (without --config)")
	var keep []string
	fs.Func("keep", "keep the image seeded as `REF@DIGEST` (repeatable; without --config)", func(s string) error {
		if !strings.Contains(s, "@sha256:") {
			return fmt.Errorf("%q is not a digest reference (IMAGE@sha256:…)", s)
		}
		keep = append(keep, s)
		return nil
	})
	keepBuilds := durationFlag(fs.FlagSet, "keep-builds", def.KeepBuilds.D(), "keep build results registered within `D` (14d, 36h)")
	keepImages := durationFlag(fs.FlagSet, "keep-images", def.KeepImages.D(), "keep images seeded within `D`")
	roots := fs.String("roots", "", "`FILE` of further store paths to keep, one a line")
	var maxSize config.Size
	fs.Func("max-size", "delete kept build results, oldest first, until the store is at most `SIZE` (500GiB)", func(s string) error {
		return maxSize.UnmarshalText([]byte(s))
	})
	dryRun := fs.Bool("dry-run", false, "print what would be deleted and change nothing")
	lockTimeout := fs.Duration("lock-timeout", store.DefaultLockTimeout, "how long to wait for Nix processes to close the store (without --config)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if err := fs.parseFlagsOnly(args); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	switch {
	case *cfgPath != "" && *dir != "":
		return fs.usageError("--config and --store are exclusive (the config names the store)")
	case *cfgPath != "":
		for _, name := range []string{"keep", "keep-builds", "keep-images", "roots", "max-size", "lock-timeout"} {
			if set[name] {
				return fs.usageError("--%s goes with --store; with --config the [gc] section says it", name)
			}
		}
		return gcWithConfig(ctx, *cfgPath, *dryRun, *asJSON, stdout, stderr)
	case *dir == "":
		return fs.usageError("--config FILE or --store DIR is required")
	case len(keep) == 0:
		return fs.usageError("name the images to keep with --keep REF@DIGEST (the digests CI files pin)")
	}
	abs, err := filepath.Abs(*dir)
	if err != nil {
		return fmt.Errorf("store dir: %w", err)
	}
	digests := make([]string, len(keep))
	for i, k := range keep {
		_, digests[i], _ = strings.Cut(k, "@")
	}
	c := &storeCollector{
		dir: abs, lockTimeout: *lockTimeout,
		gc:  config.GC{KeepBuilds: config.Duration(*keepBuilds), KeepImages: config.Duration(*keepImages), RootsFile: *roots, MaxSize: maxSize},
		log: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	if terminal(stderr) {
		c.progress = stderr
	}
	pol, err := c.policy(digests)
	if err != nil {
		return err
	}
	pol.Strict = true // typed by hand: an unknown digest is a typo
	rep, err := store.GC(ctx, abs, store.GCOptions{Policy: pol, DryRun: *dryRun, LockTimeout: *lockTimeout, Log: c.log, Progress: c.progress})
	if err != nil {
		return err
	}
	return printGC(stdout, abs, rep, digests, *asJSON)
}

// gcWithConfig is `hydrafy gc --config FILE`: a dry run reads GitLab and
// the store; a real one is a reconcile pass that only collects.
func gcWithConfig(ctx context.Context, cfgPath string, dryRun, asJSON bool, stdout, stderr io.Writer) error {
	cfg, err := loadConfig(cfgPath, true)
	if err != nil {
		return err
	}
	if !cfg.Reconcile.Enabled {
		return errors.New("this host has no store to collect ([reconcile] enabled = false)")
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	storeDir, err := filepath.Abs(cfg.Store.Dir)
	if err != nil {
		return fmt.Errorf("store dir: %w", err)
	}
	if dryRun {
		gl, err := newGitLabClient(cfg, nil)
		if err != nil {
			return err
		}
		digests, err := reconciler.PinnedDigests(ctx, reconciler.GitLabRepo{Client: gl}, reconciler.PinFind, cfg.Watch.Image,
			projectsOf(cfg), cfg.Runner.DefaultImage)
		if err != nil {
			return fmt.Errorf("reading what the projects pin: %w", err)
		}
		rep, err := newCollector(cfg, storeDir, log).run(ctx, digests, true)
		if err != nil {
			return err
		}
		return printGC(stdout, storeDir, rep, digests, asJSON)
	}
	stager, err := newStager(cfg, log)
	if err != nil {
		return err
	}
	d, err := newDaemon(cfg, log, stager)
	if err != nil {
		return err
	}
	defer d.Close()
	rep := d.rec.Collect(ctx, reconciler.Reason{Detail: "hydrafy gc"})
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		printCollect(stdout, storeDir, rep)
	}
	if rep.Result == reconciler.ResultFailed {
		return fmt.Errorf("gc %s failed: %s", rep.ID, firstLine(rep.Error))
	}
	return nil
}

// printCollect prints a collecting pass: what went, then its steps.
func printCollect(w io.Writer, dir string, rep reconciler.Report) {
	c := rep.Collect
	switch {
	case c == nil:
		fmt.Fprintf(w, "collected nothing in %s\n", dir)
	case c.DryRun:
		fmt.Fprintf(w, "nothing to collect in %s: %d paths (%s) kept\n", dir, c.PathsKept, human(c.BytesKept))
	default:
		fmt.Fprintf(w, "collected %s: %d paths deleted (%s), %d kept (%s); %s free of %s\n", dir, c.PathsDeleted, human(c.BytesFreed),
			c.PathsKept, human(c.BytesKept), human(c.Space.Free), human(c.Space.Total))
	}
	printReport(w, rep)
}

// printGC prints a store collection's report, grouped: old images, old
// builds (oldest first), leftovers.
func printGC(w io.Writer, dir string, rep store.GCReport, digests []string, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	verb := "deleted"
	if rep.DryRun {
		verb = "would delete"
		fmt.Fprint(w, "dry run: ")
	}
	fmt.Fprintf(w, "collecting %s %s %d paths (%s); %d paths (%s) stay\n", dir, verb, rep.PathsDeleted, human(rep.BytesFreed), rep.PathsKept, human(rep.BytesKept))
	fmt.Fprintf(w, "kept by digest: %s\n", orNone(digests))
	if len(rep.Unseeded) > 0 {
		fmt.Fprintf(w, "  (not seeded here: %s)\n", strings.Join(rep.Unseeded, ", "))
	}
	var imageBytes int64
	for _, img := range rep.Images {
		imageBytes += img.Bytes
	}
	fmt.Fprintf(w, "old images: %d (%s)\n", len(rep.Images), human(imageBytes))
	for _, img := range rep.Images {
		fmt.Fprintf(w, "  %s  seeded %s  %d paths  %s\n", img.Name, img.Recorded.Format(time.DateOnly), len(img.Paths), human(img.Bytes))
	}
	var buildBytes int64
	for _, b := range rep.Builds {
		buildBytes += b.Bytes
	}
	fmt.Fprintf(w, "old builds: %d (%s), oldest first\n", len(rep.Builds), human(buildBytes))
	for _, b := range rep.Builds {
		fmt.Fprintf(w, "  %s  %9s  %s\n", b.Registered.Format(time.DateOnly), human(b.Bytes), b.Path)
	}
	if len(rep.Leftovers) > 0 {
		fmt.Fprintf(w, "leftovers (no valid path owns them): %d (%s)\n", len(rep.Leftovers), human(rep.LeftoverBytes))
		for _, l := range rep.Leftovers {
			fmt.Fprintf(w, "  %s\n", l)
		}
	}
	if rep.OverMaxSize {
		fmt.Fprintln(w, "the store stays above max_size: what is left must be kept")
	}
	if !rep.DryRun {
		fmt.Fprintf(w, "GC roots: %d in %s\n", rep.Roots, filepath.Join(dir, store.RootsDir))
	}
	return nil
}

// human formats bytes in binary units.
func human(n int64) string { return humanize.IBytes(uint64(max(n, 0))) }

// durationFlag defines a flag that takes days and weeks too ("14d").
func durationFlag(fs *flag.FlagSet, name string, value time.Duration, usage string) *time.Duration {
	d := value
	fs.Func(name, usage+" (default "+days(value)+")", func(s string) error {
		v, err := config.ParseDuration(s)
		if err != nil {
			return err
		}
		if v < 0 {
			return errors.New("negative")
		}
		d = v
		return nil
	})
	return &d
}

// days writes whole days as "14d", other durations as Go does.
func days(d time.Duration) string {
	if d > 0 && d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return d.String()
}

// projectsOf returns the watched projects as the reconciler takes them.
func projectsOf(cfg config.Config) []reconciler.Project {
	out := make([]reconciler.Project, 0, len(cfg.Projects))
	for _, p := range cfg.Projects {
		out = append(out, reconciler.Project{Path: p.Path, Files: p.Files})
	}
	return out
}
