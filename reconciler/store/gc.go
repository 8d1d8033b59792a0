package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"gitlab.com/hydrafy/hydrafy/internal/fsutil"
)

// GCPolicy says what a garbage collection keeps. Everything a kept path
// references is kept too, whatever its age.
type GCPolicy struct {
	// Digests are index digests whose seeded images are kept: those pinned
	// anywhere, the runner's default image.
	Digests []string
	// Strict makes a digest of Digests that no seeded image has an error
	// (digests typed by hand), rather than nothing to keep.
	Strict bool
	// KeepImages keeps every image seeded within this long (zero: none by age).
	KeepImages time.Duration
	// KeepBuilds keeps every build result (a valid path that no seeded image
	// holds) registered within this long (zero: none by age).
	KeepBuilds time.Duration
	// Roots are further store paths to keep (/nix/store/…).
	Roots []string
	// MaxSize, when positive, deletes kept build results too, oldest
	// first, until the store's NAR size is at most MaxSize. Kept images,
	// roots and what they reference are never deleted for it.
	MaxSize int64
	// Now is the time the ages are counted from; time.Now when zero.
	Now time.Time
}

// GCOptions tune GC.
type GCOptions struct {
	Policy GCPolicy
	// DryRun reports what would go and changes nothing: no lock, the live
	// db opened read-only.
	DryRun bool
	// LockTimeout bounds the wait for the exclusive big-lock
	// (DefaultLockTimeout when zero).
	LockTimeout time.Duration
	// Log receives warnings; nil discards.
	Log *slog.Logger
	// Progress receives one line per step; nil discards.
	Progress io.Writer
}

// GCImage is a seeded image that a collection deletes.
type GCImage struct {
	Name     string    `json:"name"`
	Recorded time.Time `json:"recorded,omitzero"`
	// Paths are the image's paths deleted with it (paths it shares with a
	// kept image or build stay) and Bytes their NAR size.
	Paths []string `json:"paths"`
	Bytes int64    `json:"bytes"`
}

// GCBuild is a build result that a collection deletes.
type GCBuild struct {
	Path       string    `json:"path"`
	Registered time.Time `json:"registered"`
	Bytes      int64     `json:"bytes"`
}

// GCReport says what a collection deleted (or, for a dry run, would).
type GCReport struct {
	Images []GCImage `json:"images,omitempty"`
	// Builds are sorted oldest first.
	Builds []GCBuild `json:"builds,omitempty"`
	// Leftovers are entries of nix/store that no valid path owns (a run
	// killed while deleting, an interrupted merge), removed with the rest.
	Leftovers     []string `json:"leftovers,omitempty"`
	LeftoverBytes int64    `json:"leftover_bytes"`
	// PathsDeleted and BytesFreed count the valid paths deleted and their
	// NAR size (leftovers not included).
	PathsDeleted int   `json:"paths_deleted"`
	BytesFreed   int64 `json:"bytes_freed"`
	// PathsKept and BytesKept describe the store afterwards.
	PathsKept int   `json:"paths_kept"`
	BytesKept int64 `json:"bytes_kept"`
	// OverMaxSize is set when MaxSize could not be reached without deleting
	// what must be kept.
	OverMaxSize bool `json:"over_max_size,omitempty"`
	// Unseeded are digests of the policy that no seeded image has.
	Unseeded []string `json:"unseeded,omitempty"`
	// Roots counts the GC roots left in nix/var/nix/gcroots/hydrafy.
	Roots    int           `json:"roots"`
	DryRun   bool          `json:"dry_run,omitempty"`
	LockWait time.Duration `json:"lock_wait"`
	Duration time.Duration `json:"duration"`
}

// GC deletes the paths of the live store at liveDir that policy does not
// keep. It takes the exclusive big-lock (no Nix process has the store
// open: the runner is drained), decides under it from the db, removes the
// rows of every path to delete in one transaction, and only then their
// files. Killed at any moment, it leaves a store that Nix verifies: at
// worst with files of deleted rows left over, which the next run removes.
// The set deleted is closed under referrers (nothing kept references a
// deleted path). Afterwards it rewrites the seeded-image records and the
// GC roots (WriteRoots).
func GC(ctx context.Context, liveDir string, opts GCOptions) (GCReport, error) {
	start := time.Now()
	var log *slog.Logger
	var progress io.Writer
	opts.LockTimeout, log, progress = withDefaults(opts.LockTimeout, opts.Log, opts.Progress)
	if opts.Policy.Now.IsZero() {
		opts.Policy.Now = time.Now()
	}
	rep := GCReport{DryRun: opts.DryRun}
	if _, err := os.Stat(dbFile(liveDir)); err != nil {
		return rep, fmt.Errorf("%s holds no Nix store: %w", liveDir, err)
	}
	roots, err := checkRoots(opts.Policy.Roots)
	if err != nil {
		return rep, err
	}
	admin, err := adminRoots(liveDir)
	if err != nil {
		return rep, err
	}
	opts.Policy.Roots = append(roots, admin...)
	lf, err := readLayerFile(liveDir)
	if err != nil {
		return rep, err
	}
	// A dry run reads the db as Nix processes may write it meanwhile and
	// takes no lock; a real run decides under the exclusive big-lock.
	mode := readLive
	if !opts.DryRun {
		fmt.Fprintf(progress, "waiting for the store lock (up to %v)\n", opts.LockTimeout)
		unlock, err := Lock(ctx, liveDir, opts.LockTimeout)
		if err != nil {
			return rep, err
		}
		defer unlock()
		rep.LockWait = time.Since(start)
		at("gc-locked")
		mode = readWrite
	}
	db, conn, err := openDB(ctx, liveDir, mode)
	if err != nil {
		return rep, fmt.Errorf("live store: %w", err)
	}
	defer db.Close()
	defer conn.Close()
	g, err := loadGraph(ctx, conn)
	if err != nil {
		return rep, err
	}
	p, err := planGC(g, lf, opts.Policy)
	if err != nil {
		return rep, err
	}
	p.fill(&rep)
	if opts.DryRun {
		if rep.Leftovers, rep.LeftoverBytes, err = leftovers(liveDir, g); err != nil {
			return rep, err
		}
		rep.Duration = time.Since(start)
		return rep, nil
	}
	for _, d := range rep.Unseeded {
		log.Warn("no seeded image has a digest to keep", "digest", d)
	}
	if rep.OverMaxSize {
		log.Warn("the store stays above max_size: what is left must be kept", "bytes_kept", rep.BytesKept, "max_size", opts.Policy.MaxSize)
	}

	// From here on the store changes; finish even when ctx is cancelled.
	ctx = context.WithoutCancel(ctx)
	if len(p.del) > 0 {
		fmt.Fprintf(progress, "deleting %d paths (%s)\n", len(p.del), size(rep.BytesFreed))
		if err := unregister(ctx, conn, p.del); err != nil {
			return rep, err
		}
		at("gc-committed")
	}
	// The rows are gone: every file below is an unregistered leftover.
	for i, n := range p.del {
		if err := removeTree(filepath.Join(liveDir, n.path)); err != nil {
			return rep, err
		}
		if err := removeIfExists(filepath.Join(liveDir, n.path+".lock")); err != nil {
			return rep, err
		}
		if i == 0 {
			at("gc-removed")
		}
	}
	// Leftovers of earlier runs (this one's are gone already).
	for n := range p.del {
		delete(g.byPath, p.del[n].path)
	}
	if rep.Leftovers, rep.LeftoverBytes, err = leftovers(liveDir, g); err != nil {
		return rep, err
	}
	for _, l := range rep.Leftovers {
		if err := removeTree(filepath.Join(liveDir, l)); err != nil {
			return rep, err
		}
	}
	if err := fsutil.Fsync(storePath(liveDir)); err != nil {
		log.Warn("syncing the live store dir", "err", err)
	}
	at("gc-swept")
	lf = p.forget(lf)
	if err := lf.write(liveDir); err != nil {
		return rep, err
	}
	n, err := writeRoots(liveDir, g, lf)
	if err != nil {
		return rep, err
	}
	rep.Roots = n
	rep.Duration = time.Since(start)
	fmt.Fprintf(progress, "deleted %d paths (%s), %d kept (%s), in %v\n", rep.PathsDeleted, size(rep.BytesFreed),
		rep.PathsKept, size(rep.BytesKept), rep.Duration.Round(time.Millisecond))
	return rep, nil
}

// gcPlan is what planGC decided.
type gcPlan struct {
	keep     map[*node]bool
	del      []*node // by path
	images   []GCImage
	builds   []GCBuild
	kept     map[string]bool // image records kept
	over     bool
	unseeded []string
}

// planGC decides what to keep: the closure of the kept images, the roots
// and the kept build results. It is a pure function of the graph, the
// records and the policy.
func planGC(g *graph, lf *layerFile, pol GCPolicy) (*gcPlan, error) {
	p := &gcPlan{keep: map[*node]bool{}, kept: map[string]bool{}}
	names := make([]string, 0, len(lf.Images))
	for name := range lf.Images {
		names = append(names, name)
	}
	sort.Strings(names)
	imagePath := map[*node]bool{}
	for _, name := range names {
		for _, path := range lf.paths(lf.Images[name]) {
			if n := g.byPath[path]; n != nil {
				imagePath[n] = true
			}
		}
	}
	digests := map[string]bool{}
	for _, d := range pol.Digests {
		digests[d] = true
	}
	found := map[string]bool{}
	var protected []*node
	for _, name := range names {
		rec := lf.Images[name]
		_, d, _ := strings.Cut(name, "@")
		keep := digests[d]
		found[d] = found[d] || keep
		if pol.KeepImages > 0 && !rec.Recorded.Before(pol.Now.Add(-pol.KeepImages)) {
			keep = true
		}
		if !keep {
			continue
		}
		p.kept[name] = true
		for _, path := range lf.paths(rec) {
			if n := g.byPath[path]; n != nil {
				protected = append(protected, n)
			}
		}
	}
	for _, d := range pol.Digests {
		if !found[d] {
			p.unseeded = append(p.unseeded, d)
		}
	}
	sort.Strings(p.unseeded)
	if pol.Strict && len(p.unseeded) > 0 {
		seeded := append([]string(nil), names...)
		if len(seeded) == 0 {
			seeded = []string{"none"}
		}
		return nil, fmt.Errorf("no image with digest %s was seeded in this store (seeded: %s)", strings.Join(p.unseeded, ", "), strings.Join(seeded, ", "))
	}
	for _, r := range pol.Roots {
		if n := g.byPath[r]; n != nil {
			protected = append(protected, n)
		}
	}
	closure(p.keep, protected...)

	// Build results within keep_builds, newest first: with a max size the
	// oldest are the first to go.
	var builds []*node
	since := pol.Now.Add(-pol.KeepBuilds).Unix()
	for _, n := range g.sorted {
		if !imagePath[n] && pol.KeepBuilds > 0 && n.registered >= since {
			builds = append(builds, n)
		}
	}
	sort.SliceStable(builds, func(i, j int) bool { return builds[i].registered > builds[j].registered })
	var kept int64
	for n := range p.keep {
		kept += n.size
	}
	if pol.MaxSize > 0 && kept > pol.MaxSize {
		p.over = true
	}
	for _, b := range builds {
		if p.keep[b] {
			continue
		}
		if pol.MaxSize <= 0 {
			closure(p.keep, b)
			continue
		}
		trial := map[*node]bool{}
		var add int64
		for _, n := range closure(trial, b) {
			if !p.keep[n] {
				add += n.size
			}
		}
		if kept+add > pol.MaxSize {
			break
		}
		kept += add
		closure(p.keep, b)
	}
	for _, n := range g.sorted {
		if !p.keep[n] {
			p.del = append(p.del, n)
		}
	}

	// Group what goes: each deleted image path under the first image (by
	// name) that holds it, the rest as builds.
	claimed := map[*node]bool{}
	for _, name := range names {
		if p.kept[name] {
			continue
		}
		rec := lf.Images[name]
		img := GCImage{Name: name, Recorded: rec.Recorded, Paths: []string{}}
		for _, path := range lf.paths(rec) {
			n := g.byPath[path]
			if n == nil || p.keep[n] || claimed[n] {
				continue
			}
			claimed[n] = true
			img.Paths = append(img.Paths, path)
			img.Bytes += n.size
		}
		sort.Strings(img.Paths)
		p.images = append(p.images, img)
	}
	for _, n := range p.del {
		if imagePath[n] {
			if !claimed[n] {
				// Held by a kept image's record only: impossible, since
				// kept images are kept whole.
				return nil, fmt.Errorf("internal error: %s of a kept image planned for deletion", n.path)
			}
			continue
		}
		p.builds = append(p.builds, GCBuild{Path: n.path, Registered: time.Unix(n.registered, 0).UTC(), Bytes: n.size})
	}
	sort.SliceStable(p.builds, func(i, j int) bool { return p.builds[i].Registered.Before(p.builds[j].Registered) })
	return p, nil
}

func (p *gcPlan) fill(rep *GCReport) {
	rep.Images, rep.Builds = p.images, p.builds
	rep.OverMaxSize, rep.Unseeded = p.over, p.unseeded
	rep.PathsDeleted = len(p.del)
	for _, n := range p.del {
		rep.BytesFreed += n.size
	}
	rep.PathsKept = len(p.keep)
	for n := range p.keep {
		rep.BytesKept += n.size
	}
}

// forget drops the records of the images not kept, and layers no kept
// image lists.
func (p *gcPlan) forget(lf *layerFile) *layerFile {
	out := &layerFile{Layers: map[string][]string{}, Images: map[string]imageRecord{}}
	for name, rec := range lf.Images {
		if !p.kept[name] {
			continue
		}
		out.Images[name] = rec
		for _, l := range rec.Layers {
			if paths, ok := lf.Layers[l]; ok {
				out.Layers[l] = paths
			}
		}
	}
	return out
}

// unregister deletes the rows of del in one BEGIN IMMEDIATE transaction:
// their references, derivation outputs and ValidPaths rows. It refuses
// (and changes nothing) when a path outside del references one inside:
// Refs.reference is "on delete restrict", and the path would dangle.
func unregister(ctx context.Context, conn *sql.Conn, del []*node) error {
	// A commit that a power loss could undo after the files are gone
	// would leave rows of missing paths: sync the WAL at commit.
	if _, err := conn.ExecContext(ctx, `pragma synchronous = full`); err != nil {
		return fmt.Errorf("deleting rows: %w", err)
	}
	if _, err := conn.ExecContext(ctx, `create temp table if not exists hydrafy_gc (id integer primary key)`); err != nil {
		return fmt.Errorf("deleting rows: %w", err)
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("deleting rows: %w", err)
	}
	defer tx.Rollback()
	at("gc-begun")
	if _, err := tx.ExecContext(ctx, `delete from temp.hydrafy_gc`); err != nil {
		return fmt.Errorf("deleting rows: %w", err)
	}
	ins, err := tx.PrepareContext(ctx, `insert into temp.hydrafy_gc (id) values (?)`)
	if err != nil {
		return fmt.Errorf("deleting rows: %w", err)
	}
	for _, n := range del {
		if _, err := ins.ExecContext(ctx, n.id); err != nil {
			ins.Close()
			return fmt.Errorf("deleting rows: %w", err)
		}
	}
	ins.Close()
	var dangling int
	err = tx.QueryRowContext(ctx, `select count(*) from Refs where reference in (select id from temp.hydrafy_gc) and referrer not in (select id from temp.hydrafy_gc)`).Scan(&dangling)
	if err != nil {
		return fmt.Errorf("deleting rows: %w", err)
	}
	if dangling > 0 {
		return fmt.Errorf("refusing to delete: %d references from kept paths to paths to delete", dangling)
	}
	for _, q := range []string{
		`delete from Refs where referrer in (select id from temp.hydrafy_gc)`,
		`delete from DerivationOutputs where drv in (select id from temp.hydrafy_gc)`,
		`delete from ValidPaths where id in (select id from temp.hydrafy_gc)`,
	} {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("deleting rows: %w", err)
		}
	}
	at("gc-deleted")
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("deleting rows: committing: %w", err)
	}
	return nil
}

// leftovers lists the entries of nix/store that no valid path of g owns:
// store-path names with no row, their lock files, a merge's trash. Other
// names (.links) are left alone.
func leftovers(liveDir string, g *graph) ([]string, int64, error) {
	entries, err := os.ReadDir(storePath(liveDir))
	if err != nil {
		return nil, 0, fmt.Errorf("reading live store: %w", err)
	}
	var out []string
	var bytes int64
	for _, e := range entries {
		name := e.Name()
		path := "/nix/store/" + strings.TrimSuffix(name, ".lock")
		switch {
		case strings.HasPrefix(name, trashPrefix):
		case CheckStorePath(path) != nil:
			continue
		case g.byPath[path] != nil:
			continue
		}
		out = append(out, "/nix/store/"+name)
		n, err := treeSize(filepath.Join(storePath(liveDir), name))
		if err != nil {
			return nil, 0, err
		}
		bytes += n
	}
	return out, bytes, nil
}

// treeSize is the apparent size of the files under p. Entries that vanish
// meanwhile (a job's build dir, when planning while jobs run) count as
// nothing.
func treeSize(p string) (int64, error) {
	var n int64
	err := filepath.WalkDir(p, func(_ string, d os.DirEntry, err error) error {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			fi, err := d.Info()
			if errors.Is(err, os.ErrNotExist) {
				return nil
			}
			if err != nil {
				return err
			}
			n += fi.Size()
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("measuring %s: %w", p, err)
	}
	return n, nil
}

func removeIfExists(p string) error {
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing %s: %w", p, err)
	}
	return nil
}

// adminRoots returns the store paths that the roots under
// DIR/nix/var/nix/gcroots keep, hydrafy's own roots excepted (they are the
// result of the last collection, not an input of this one). As Nix's
// findRoots does (2.8: gc.cc:220-280), a link whose target is not in the store
// is followed once more: an indirect root (gcroots/auto/… → a result link).
// DIR/nix/var/nix/profiles is not read: jobs' profiles live in their
// containers, and the host's copy is whatever an image or a manual copy left.
func adminRoots(liveDir string) ([]string, error) {
	dir := filepath.Join(liveDir, "nix/var/nix/gcroots")
	own := filepath.Join(liveDir, RootsDir)
	var out []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		switch {
		case errors.Is(err, os.ErrNotExist) && p == dir:
			return filepath.SkipAll
		case err != nil:
			return err
		case p == own:
			return filepath.SkipDir
		case d.Type()&os.ModeSymlink == 0:
			return nil
		}
		t, err := os.Readlink(p)
		if err != nil {
			return err
		}
		if !strings.HasPrefix(t, "/nix/store/") {
			if next, err := os.Readlink(rootLinkPath(liveDir, p, t)); err == nil {
				t = next
			}
		}
		if base, ok := strings.CutPrefix(t, "/nix/store/"); ok {
			base, _, _ = strings.Cut(base, "/")
			if CheckStorePath("/nix/store/"+base) == nil {
				out = append(out, "/nix/store/"+base)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading GC roots: %w", err)
	}
	return out, nil
}

// rootLinkPath is where the target t of the root link p is on this host:
// relative to the link's dir, under DIR for the store's own /nix/ paths, or
// as it stands (an indirect root elsewhere on the host).
func rootLinkPath(liveDir, p, t string) string {
	switch {
	case !filepath.IsAbs(t):
		return filepath.Join(filepath.Dir(p), t)
	case strings.HasPrefix(t, "/nix/"):
		return filepath.Join(liveDir, t)
	default:
		return t
	}
}

// checkRoots refuses a root that is not a store path and returns each
// root's store path (a path inside one counts as that one).
func checkRoots(roots []string) ([]string, error) {
	out := make([]string, 0, len(roots))
	for _, r := range roots {
		base, ok := strings.CutPrefix(r, "/nix/store/")
		if ok {
			base, _, _ = strings.Cut(base, "/")
		}
		p := "/nix/store/" + base
		if !ok || CheckStorePath(p) != nil {
			return nil, fmt.Errorf("root %q is not a store path (/nix/store/<hash>-<name>)", r)
		}
		out = append(out, p)
	}
	return out, nil
}
