package image

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"golang.org/x/sync/errgroup"
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
}

// Close removes the staging dir, read-only trees included.
func (s *Staged) Close() error {
	if s == nil || s.Dir == "" {
		return nil
	}
	return removeTree(s.Dir)
}

// Stage pulls ref's image for opts.Platform and extracts its store into a
// fresh staging dir in opts.StageIn, layers in parallel, then checks every
// store path's NAR hash against the image's db. On any error, ctx
// cancellation included, the staging dir is removed again.
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
	res, err := resolve(r, want, remoteOptions(ctx, o), o.Retries)
	if err != nil {
		return nil, err
	}
	layers, err := res.img.Layers()
	if err != nil {
		return nil, registryError(r, o.Retries, err)
	}
	cf, err := res.img.ConfigFile()
	if err != nil {
		return nil, registryError(r, o.Retries, err)
	}
	st := &Staged{Ref: ref, Digest: res.digest, Manifest: res.manifest, Config: cf}
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
	skipped, err := s.pull(ctx, cancel, r, layers, layerPaths(cf, len(layers)), st, o)
	if err != nil {
		return fail(err)
	}
	if err := s.assembleDB(); err != nil {
		return fail(err)
	}
	s.close()
	if err := verify(s, st, skipped); err != nil {
		return fail(fmt.Errorf("pulling %s: %w", r, err))
	}
	st.Bytes = s.written.Load()
	return st, nil
}

// pull downloads and extracts the layers, o.Parallel at a time, and
// returns the store paths of the skipped layers.
func (s *stager) pull(ctx context.Context, cancel context.CancelFunc, ref fmt.Stringer, layers []v1.Layer, listed [][]string, st *Staged, o Options) (map[string]bool, error) {
	skipped := map[string]bool{}
	var todo []int
	var total int64
	for i, l := range layers {
		d, err := l.Digest()
		if err != nil {
			return nil, err
		}
		st.Layers = append(st.Layers, d)
		if len(listed[i]) > 0 && o.Skip != nil && o.Skip(d, listed[i]) {
			for _, p := range listed[i] {
				skipped[p] = true
			}
			continue
		}
		size, err := l.Size()
		if err != nil {
			return nil, err
		}
		total += size
		todo = append(todo, i)
	}
	prog := startProgress(o.Progress, len(todo), total)
	defer prog.end()

	var once sync.Once
	var first error
	failed := func(err error) error {
		once.Do(func() { first = err; cancel() })
		return err
	}
	g := new(errgroup.Group)
	g.SetLimit(o.Parallel)
	for _, i := range todo {
		if ctx.Err() != nil {
			break
		}
		g.Go(func() error {
			if err := s.layer(ctx, i, layers[i], prog); err != nil {
				return failed(fmt.Errorf("pulling %s: layer %d (%s): %w", ref, i, st.Layers[i], err))
			}
			prog.done.Add(1)
			return nil
		})
	}
	g.Wait()
	if first != nil {
		return nil, first
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("pulling %s: %w", ref, err)
	}
	return skipped, nil
}

// layer streams one layer: download, decompress, extract, hash.
func (s *stager) layer(ctx context.Context, index int, l v1.Layer, prog *progress) error {
	rc, err := l.Compressed()
	if err != nil {
		return err
	}
	defer rc.Close()
	br := bufio.NewReaderSize(countReader{rc, prog}, 1<<20)
	tr, closeTar, err := decompress(br)
	if err != nil {
		return err
	}
	defer closeTar()
	if _, err := s.extract(ctx, index, tr); err != nil {
		return err
	}
	// Read to the end: the layer digest is checked at EOF.
	if _, err := io.Copy(io.Discard, tr); err != nil {
		return err
	}
	if _, err := io.Copy(io.Discard, br); err != nil {
		return err
	}
	return nil
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

// verify checks the staged store against the image db: every staged path
// is registered with its NAR hash, every registered path was staged or
// skipped.
func verify(s *stager, st *Staged, skipped map[string]bool) error {
	dbFile := filepath.Join(s.dir, "nix/var/nix/db/db.sqlite")
	if _, err := os.Stat(dbFile); err != nil {
		return fmt.Errorf("%w: it has no nix/var/nix/db/db.sqlite", ErrNotNix)
	}
	if len(s.hashes) == 0 && len(skipped) == 0 {
		return fmt.Errorf("%w: it has no store paths", ErrNotNix)
	}
	rows, err := readDB(dbFile)
	if err != nil {
		return err
	}
	for p, h := range s.hashes {
		want, ok := rows[p]
		if !ok {
			return fmt.Errorf("store path %s is not registered in the image db", p)
		}
		if !sameHash(want, h) {
			return fmt.Errorf("store path %s: NAR hash %s does not match the image db's %s", p, h, want)
		}
		st.Paths = append(st.Paths, p)
	}
	var missing []string
	for p := range rows {
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
