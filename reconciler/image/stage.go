package image

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"golang.org/x/sync/errgroup"

	"gitlab.com/hydrafy/hydrafy/internal/fsutil"
	"gitlab.com/hydrafy/hydrafy/reconciler/store"
)

// Staged is an image's store extracted and verified in a staging dir.
type Staged struct {
	// Dir holds nix/store/… and nix/var/nix/db/… only.
	Dir string
	// Ref is the reference as given.
	Ref string
	// From is the mirror's reference the image was pulled from; "" when
	// it came from Ref's registry.
	From string
	// Digest is the index digest when Ref names an index, else the
	// manifest digest.
	Digest string
	// Manifest is the digest of the platform's image manifest.
	Manifest string
	// Layers are all layers of the image, in order (skipped ones too).
	Layers []v1.Hash
	// Paths are the store paths staged and verified (/nix/store/…), sorted.
	Paths []string
	// Bytes is how many bytes were written.
	Bytes int64
	// Config is the platform image's config file.
	Config *v1.ConfigFile
	// Held are, by layer, the store paths the layer held as extracted (or,
	// for a skipped layer, as recorded or listed): what a layer record
	// should say. Nil for a layer whose paths are not known.
	Held [][]string
	// History are, by layer, the store paths its history comment lists.
	History [][]string
	// AlreadyValid counts store paths not written because the live store
	// held them already (Options.Valid).
	AlreadyValid int
}

// Close removes the staging dir, read-only trees included.
func (s *Staged) Close() error {
	if s == nil || s.Dir == "" {
		return nil
	}
	return removeTree(s.Dir)
}

// Stage pulls ref's image for opts.Platform and extracts its store into a
// fresh staging dir in opts.StageIn, then checks every store path's NAR
// hash and size against the image's db. The db comes first: the layers are
// read from the top down until one holds it, its rows are checked as a
// merge checks them (store.ReadImagePaths), and the filesystem must have
// room for the declared sizes of the paths to stage. Then the store layers
// are extracted in parallel; an entry of a path no row declares, or one
// that grows a path past its declared NAR size, fails the stage before it
// is written. On any error, ctx cancellation included, the staging dir is
// removed again.
func Stage(ctx context.Context, ref string, opts Options) (*Staged, error) {
	o := opts.withDefaults()
	want, err := v1.ParsePlatform(o.Platform)
	if err != nil {
		return nil, fmt.Errorf("parsing platform %q: %w", o.Platform, err)
	}
	r, err := parseRef(ref)
	if err != nil {
		return nil, err
	}
	if len(o.Mirrors) > 0 {
		return stageMirrored(ctx, ref, r, want, o)
	}
	return stageFrom(ctx, ref, r, want, o)
}

// stageFrom is Stage pulling from r, which may be a mirror's copy of ref.
func stageFrom(ctx context.Context, ref string, r name.Reference, want *v1.Platform, o Options) (*Staged, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ropts := remoteOptions(ctx, o)
	// One puller for the manifest and every blob: one transport and one
	// token for the repository, however many layers.
	puller, err := remote.NewPuller(ropts...)
	if err != nil {
		return nil, fmt.Errorf("pulling %s: %w", r, err)
	}
	ropts = append(ropts, remote.Reuse(puller))
	res, err := resolve(r, want, ropts, o.Retries)
	if err != nil {
		return nil, err
	}
	// The manifest is parsed once: asking each remote layer for its size
	// or blob parses the whole manifest again, which costs O(layers) per
	// layer.
	m, err := res.img.Manifest()
	if err != nil {
		return nil, registryError(r, o.Retries, err)
	}
	cf, err := res.img.ConfigFile()
	if err != nil {
		return nil, registryError(r, o.Retries, err)
	}
	st := &Staged{Ref: ref, Digest: res.digest, Manifest: res.manifest, Config: cf}
	layers := make([]blob, len(m.Layers))
	for i, d := range m.Layers {
		layers[i] = blob{digest: d.Digest, size: d.Size, ref: r.Context().Digest(d.Digest.String())}
		st.Layers = append(st.Layers, d.Digest)
	}
	s, err := newStager(o.StageIn, len(layers))
	if err != nil {
		return nil, err
	}
	st.Dir = s.dir
	fail := func(err error) (*Staged, error) {
		s.close()
		removeTree(s.dir)
		return nil, err
	}
	listed := layerPaths(cf, len(layers))
	if o.Recorded != nil {
		for i, l := range layers {
			if rec := o.Recorded(l.digest); len(rec) > 0 {
				listed[i] = rec
			}
		}
	}
	s.valid = o.Valid
	todo, skipped := s.plan(layers, listed, o.Skip)
	for i := range layers {
		if !slices.Contains(todo, i) {
			s.held[i] = listed[i]
		}
	}
	var total int64
	for _, i := range todo {
		total += layers[i].size
	}
	prog := startProgress(o.Progress, len(todo), total)
	defer prog.end()
	pl := &pull{s: s, puller: puller, ref: r, layers: layers, prog: prog, cancel: cancel}

	done, err := pl.db(ctx)
	if err != nil {
		return fail(err)
	}
	if err := s.readRows(ctx); err != nil {
		return fail(fmt.Errorf("pulling %s: %w", r, err))
	}
	if err := checkRoom(o.StageIn, s.rows, skipped); err != nil {
		return fail(fmt.Errorf("pulling %s: %w", r, err))
	}
	todo = slices.DeleteFunc(todo, func(i int) bool { return done[i] })
	if err := pl.storeWrittenBack(ctx, todo, o); err != nil {
		return fail(err)
	}
	s.close()
	maps.Copy(skipped, s.validSeen)
	if err := verify(s, st, skipped); err != nil {
		return fail(fmt.Errorf("pulling %s: %w", r, err))
	}
	st.Bytes = s.written.Load()
	st.Held = s.held
	st.History = layerPaths(cf, len(layers))
	st.AlreadyValid = len(s.validSeen)
	return st, nil
}

// blob is one layer of the manifest.
type blob struct {
	digest v1.Hash
	size   int64
	ref    name.Digest
}

// plan returns the layers to pull and the store paths of the layers that
// skip says need no download.
func (s *stager) plan(layers []blob, listed [][]string, skip func(v1.Hash, []string) bool) ([]int, map[string]bool) {
	skipped := map[string]bool{}
	var todo []int
	for i, l := range layers {
		if len(listed[i]) > 0 && skip != nil && skip(l.digest, listed[i]) {
			for _, p := range listed[i] {
				skipped[p] = true
			}
			continue
		}
		todo = append(todo, i)
	}
	return todo, skipped
}

// pull is the download of one image's layers.
type pull struct {
	s      *stager
	puller *remote.Puller
	ref    name.Reference
	layers []blob
	prog   *progress
	cancel context.CancelFunc
}

func (pl *pull) layerError(i int, err error) error {
	return fmt.Errorf("pulling %s: layer %d (%s): %w", pl.ref, i, pl.layers[i].digest, err)
}

// db reads the layers from the top down until one holds the db
// (db.sqlite, or a whiteout that hides the db of the layers below) and
// assembles it. It returns the layers it read that hold no store entries:
// they need not be read again.
func (pl *pull) db(ctx context.Context) (map[int]bool, error) {
	done := map[int]bool{}
	for i := len(pl.layers) - 1; i >= 0; i-- {
		lx, err := pl.layer(ctx, i, dbPhase)
		if err != nil {
			return nil, pl.layerError(i, err)
		}
		pl.s.scanned[i] = true
		if !lx.hasStore {
			done[i] = true
			pl.s.held[i] = []string{}
			pl.prog.done.Add(1)
		}
		if lx.db.opaque || slices.Contains(lx.db.files, "db.sqlite") {
			break
		}
	}
	if err := pl.s.assembleDB(); err != nil {
		return nil, err
	}
	return done, nil
}

// store extracts the store paths of layers todo, parallel at a time.
func (pl *pull) store(ctx context.Context, todo []int, parallel int) error {
	var once sync.Once
	var first error
	failed := func(err error) error {
		once.Do(func() { first = err; pl.cancel() })
		return err
	}
	g := new(errgroup.Group)
	g.SetLimit(parallel)
	for _, i := range todo {
		if ctx.Err() != nil {
			break
		}
		g.Go(func() error {
			lx, err := pl.layer(ctx, i, storePhase)
			if err != nil {
				return failed(pl.layerError(i, err))
			}
			pl.s.setHeld(i, lx.held())
			pl.prog.done.Add(1)
			return nil
		})
	}
	g.Wait()
	if first != nil {
		return first
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("pulling %s: %w", pl.ref, err)
	}
	return nil
}

// storeWrittenBack is store, with the staged files written back to disk
// meanwhile when o asks for it.
func (pl *pull) storeWrittenBack(ctx context.Context, todo []int, o Options) error {
	if !o.Writeback {
		return pl.store(ctx, todo, o.Parallel)
	}
	wb, err := fsutil.StartWriteback(pl.s.dir, pl.s.written.Load)
	if err != nil {
		return err
	}
	err = pl.store(ctx, todo, o.Parallel)
	if werr := wb.Stop(); err == nil && werr != nil {
		return fmt.Errorf("pulling %s: %w", pl.ref, werr)
	}
	return err
}

// layer streams one layer: download, decompress, extract, hash.
func (pl *pull) layer(ctx context.Context, index int, ph phase) (*layerExtract, error) {
	l, err := pl.puller.Layer(ctx, pl.layers[index].ref)
	if err != nil {
		return nil, err
	}
	rc, err := l.Compressed()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	br := bufio.NewReaderSize(countReader{rc, pl.prog}, 64<<10)
	tr, closeTar, err := decompress(br)
	if err != nil {
		return nil, err
	}
	defer closeTar()
	lx, err := pl.s.extract(ctx, index, tr, ph)
	if err != nil {
		return nil, err
	}
	// Read to the end: the layer digest is checked at EOF.
	if _, err := io.Copy(io.Discard, tr); err != nil {
		return nil, err
	}
	if _, err := io.Copy(io.Discard, br); err != nil {
		return nil, err
	}
	return lx, nil
}

// decompress detects gzip, zstd or a plain tar by its magic bytes.
func decompress(br *bufio.Reader) (io.Reader, func(), error) {
	magic, err := br.Peek(4)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, nil, err
	}
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, fmt.Errorf("decompressing: %w", err)
		}
		return zr, func() { zr.Close() }, nil
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, nil, fmt.Errorf("decompressing: %w", err)
		}
		return zr, zr.Close, nil
	}
	return br, func() {}, nil
}

// readRows reads and checks the assembled image db.
func (s *stager) readRows(ctx context.Context) error {
	if _, err := os.Stat(filepath.Join(s.dir, "nix/var/nix/db/db.sqlite")); err != nil {
		return fmt.Errorf("%w: it has no nix/var/nix/db/db.sqlite", ErrNotNix)
	}
	rows, err := store.ReadImagePaths(ctx, s.dir)
	if err != nil {
		return err
	}
	if len(rows) == 0 {
		return fmt.Errorf("%w: it has no store paths", ErrNotNix)
	}
	s.rows = rows
	return nil
}

// verify checks the staged store against the image db: every staged path
// has the NAR hash and size its row declares, every registered path was
// staged or skipped.
func verify(s *stager, st *Staged, skipped map[string]bool) error {
	for p, h := range s.hashes {
		want, ok := s.rows[p]
		if !ok {
			return fmt.Errorf("store path %s is not registered in the image db", p)
		}
		if h != want.NarHash {
			return fmt.Errorf("store path %s: NAR hash %s does not match the image db's %s", p, h, want.NarHash)
		}
		if n := s.sizes[p]; n != want.NarSize {
			return fmt.Errorf("store path %s: its NAR is %d bytes, the image db's narSize says %d", p, n, want.NarSize)
		}
		st.Paths = append(st.Paths, p)
	}
	var missing []string
	for p := range s.rows {
		if _, ok := s.hashes[p]; !ok && !skipped[p] {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return fmt.Errorf("the image db registers %s (and %d more) but no layer holds it", missing[0], len(missing)-1)
	}
	sort.Strings(st.Paths)
	return nil
}
