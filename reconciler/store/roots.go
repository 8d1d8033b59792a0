package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"gitlab.com/hydrafy/hydrafy/internal/fsutil"
)

// RootsDir is where hydrafy keeps GC roots inside a store dir. Mounted
// read-only at /nix/var/nix/gcroots/hydrafy in every job, it makes a
// job's own garbage collection keep what hydrafy keeps.
const RootsDir = "nix/var/nix/gcroots/hydrafy"

// maxName is the longest file name Linux filesystems take.
const maxName = 255

// WriteRoots makes DIR/nix/var/nix/gcroots/hydrafy hold one symlink to
// /nix/store/… for each seeded image's top paths ("<digest>-<name>") and
// for the top build results ("build-<name>"): together their closures are
// every path the store holds now. It reads the live db read-only, without
// the big-lock, and edits the dir in place (new links first, then stale
// ones removed), so that a job's garbage collection running meanwhile, or
// a crash, sees at least the roots of the paths that stay. It returns how
// many roots there are.
func WriteRoots(ctx context.Context, liveDir string) (int, error) {
	return writeRootsMode(ctx, liveDir, readLive)
}

// WriteInstalledRoots is WriteRoots for a store just installed, which no
// Nix process has opened yet: it reads the db without creating a file
// next to it (no -shm or -wal).
func WriteInstalledRoots(ctx context.Context, liveDir string) (int, error) {
	return writeRootsMode(ctx, liveDir, readImmutable)
}

func writeRootsMode(ctx context.Context, liveDir string, mode dbMode) (int, error) {
	lf, err := readLayerFile(liveDir)
	if err != nil {
		return 0, err
	}
	db, conn, err := openDB(ctx, liveDir, mode)
	if err != nil {
		return 0, fmt.Errorf("live store: %w", err)
	}
	defer db.Close()
	defer conn.Close()
	g, err := loadGraph(ctx, conn)
	if err != nil {
		return 0, err
	}
	return writeRoots(liveDir, g, lf)
}

// writeRoots writes the roots of the paths g still holds (g.byPath).
func writeRoots(liveDir string, g *graph, lf *layerFile) (int, error) {
	want := rootLinks(g, lf)
	dir := filepath.Join(liveDir, RootsDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, fmt.Errorf("writing GC roots: %w", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, fmt.Errorf("writing GC roots: %w", err)
	}
	have := map[string]bool{}
	for _, e := range entries {
		have[e.Name()] = true
	}
	names := make([]string, 0, len(want))
	for name := range want {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		link := filepath.Join(dir, name)
		if t, err := os.Readlink(link); err == nil && t == want[name] {
			continue
		}
		tmp := filepath.Join(dir, ".tmp-"+name)
		if err := removeIfExists(tmp); err != nil {
			return 0, fmt.Errorf("writing GC roots: %w", err)
		}
		if err := os.Symlink(want[name], tmp); err != nil {
			return 0, fmt.Errorf("writing GC roots: %w", err)
		}
		if err := os.Rename(tmp, link); err != nil {
			return 0, fmt.Errorf("writing GC roots: %w", err)
		}
	}
	for name := range have {
		if _, ok := want[name]; ok {
			continue
		}
		if err := removeIfExists(filepath.Join(dir, name)); err != nil {
			return 0, fmt.Errorf("writing GC roots: %w", err)
		}
	}
	if err := fsutil.Fsync(dir); err != nil {
		return 0, fmt.Errorf("writing GC roots: %w", err)
	}
	return len(want), nil
}

// rootLinks maps each root's link name to its target.
func rootLinks(g *graph, lf *layerFile) map[string]string {
	live := func(n *node) bool { return n != nil && g.byPath[n.path] == n }
	links := map[string]string{}
	imagePath := map[*node]bool{}
	for name, rec := range lf.Images {
		set := map[*node]bool{}
		for _, p := range lf.paths(rec) {
			if n := g.byPath[p]; live(n) {
				set[n] = true
				imagePath[n] = true
			}
		}
		_, digest, _ := strings.Cut(name, "@")
		digest = strings.TrimPrefix(digest, "sha256:")
		digest = digest[:min(12, len(digest))]
		for _, n := range tops(set) {
			links[linkName(digest+"-"+filepath.Base(n.path))] = n.path
		}
	}
	builds := map[*node]bool{}
	for _, n := range g.sorted {
		if live(n) && !imagePath[n] {
			builds[n] = true
		}
	}
	for _, n := range tops(builds) {
		links[linkName("build-"+filepath.Base(n.path))] = n.path
	}
	return links
}

// linkName cuts name to a length every filesystem takes; the store path's
// hash, near the start, keeps it unique.
func linkName(name string) string {
	if len(name) > maxName-5 { // room for the ".tmp-" of a new link
		return name[:maxName-5]
	}
	return name
}

// ReadRoots returns the store paths the roots in liveDir point at, sorted.
func ReadRoots(liveDir string) ([]string, error) {
	dir := filepath.Join(liveDir, RootsDir)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading GC roots: %w", err)
	}
	var out []string
	for _, e := range entries {
		t, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		out = append(out, t)
	}
	sort.Strings(out)
	return out, nil
}
