package image

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// kind is what the extractor has put at a name inside a store path.
type kind int

const (
	dirKind kind = iota + 1
	fileKind
	symlinkKind
	pendingLink // a hardlink made when the layer ends
)

func (k kind) String() string {
	switch k {
	case dirKind:
		return "directory"
	case fileKind:
		return "file"
	case symlinkKind:
		return "symlink"
	case pendingLink:
		return "hardlink"
	}
	return "nothing"
}

// storePath tracks one store path while its layer is extracted: what each
// name holds (so nothing is ever written through a symlink or a file), the
// hardlinks still to make, open handles of its directories and the NAR
// bytes its entries add up to so far.
type storePath struct {
	name  string
	kinds map[string]kind // "" is the store path itself
	files map[string]fileMeta
	dirs  []string
	links []hardlink
	fds   map[string]int // directory handles by name, at most maxDirFds
	nar   *narStream
	// narBytes is the NAR size of what was extracted so far (narCost);
	// declared is the image db's narSize, which it may never exceed.
	narBytes, declared int64
}

// fileMeta is what a hardlink to a file adds to the NAR again.
type fileMeta struct {
	size int64
	exec bool
}

type hardlink struct{ name, target string }

// full returns the name of rel relative to the nix/store root.
func (p *storePath) full(rel string) string {
	if rel == "" {
		return p.name
	}
	return p.name + "/" + rel
}

// phase is which part of a layer an extraction takes.
type phase int

const (
	// dbPhase extracts the layer's db files only and notes whether it
	// holds store entries: the db comes first, so that every store path's
	// declared NAR size and hash are known before any is written.
	dbPhase phase = iota
	// storePhase extracts the store paths; db entries are checked and
	// dropped (the db phase took the db).
	storePhase
)

// layerExtract is the extraction of one layer.
type layerExtract struct {
	s     *stager
	index int
	phase phase
	paths map[string]*storePath
	order []string
	db    dbLayer
	// hasStore: the layer has entries below nix/store (db phase).
	hasStore bool
	// valid are the store path names the live store holds already: their
	// entries are dropped.
	valid map[string]bool
}

// held returns the store paths the layer held, extracted or left out as
// valid, sorted.
func (lx *layerExtract) held() []string {
	out := make([]string, 0, len(lx.order)+len(lx.valid))
	for _, n := range lx.order {
		out = append(out, "/nix/store/"+n)
	}
	for n := range lx.valid {
		out = append(out, "/nix/store/"+n)
	}
	sort.Strings(out)
	return out
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

// extract reads the tar stream r of layer index into the staging dir: in
// the store phase the store paths it holds, complete and canonical, in the
// db phase its db files.
func (s *stager) extract(ctx context.Context, index int, r io.Reader, ph phase) (*layerExtract, error) {
	lx := &layerExtract{s: s, index: index, phase: ph, paths: map[string]*storePath{}, valid: map[string]bool{}}
	defer func() {
		for _, p := range lx.paths {
			p.closeFds()
		}
	}()
	tr := tar.NewReader(r)
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading layer: %w", err)
		}
		if err := lx.entry(hdr, tr); err != nil {
			return nil, err
		}
	}
	if ph == dbPhase {
		s.setDB(index, lx.db)
		return lx, nil
	}
	for _, name := range lx.order {
		if err := lx.finish(lx.paths[name]); err != nil {
			return nil, err
		}
	}
	return lx, nil
}

func (lx *layerExtract) entry(hdr *tar.Header, r io.Reader) error {
	comps, err := splitName(hdr.Name)
	if err != nil {
		return err
	}
	if len(comps) == 0 || comps[0] != "nix" {
		return nil // etc/, root/, …: not part of the store
	}
	if t := whiteoutTarget(comps); t != nil {
		return lx.whiteout(hdr.Name, t)
	}
	switch classify(comps) {
	case skeletonDir:
		if hdr.Typeflag != tar.TypeDir {
			return fmt.Errorf("entry %q: %s must be a directory, the image has a %s", hdr.Name, strings.Join(comps, "/"), typeName(hdr.Typeflag))
		}
		return nil
	case storeEntry:
		if err := checkHeader(hdr); err != nil {
			return err
		}
		if lx.phase == dbPhase {
			lx.hasStore = true
			return nil
		}
		return lx.store(hdr, comps[2], comps[3:], r)
	case dbEntry:
		if err := checkHeader(hdr); err != nil {
			return err
		}
		if lx.phase == storePhase {
			return checkDBEntry(hdr, comps[4:])
		}
		return lx.dbFile(hdr, comps[4:], r)
	}
	return nil
}

// checkHeader refuses entry types and mode bits that a Nix store never has.
func checkHeader(hdr *tar.Header) error {
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeDir, tar.TypeSymlink, tar.TypeLink:
	default:
		return fmt.Errorf("entry %q is a %s: not allowed in a Nix store", hdr.Name, typeName(hdr.Typeflag))
	}
	if hdr.Mode&(unix.S_ISUID|unix.S_ISGID) != 0 {
		return fmt.Errorf("entry %q has the setuid or setgid bit: not allowed in a Nix store", hdr.Name)
	}
	return nil
}

func typeName(t byte) string {
	switch t {
	case tar.TypeReg:
		return "regular file"
	case tar.TypeDir:
		return "directory"
	case tar.TypeSymlink:
		return "symlink"
	case tar.TypeLink:
		return "hardlink"
	case tar.TypeChar:
		return "character device"
	case tar.TypeBlock:
		return "block device"
	case tar.TypeFifo:
		return "fifo"
	}
	return "entry of type " + strconv.Quote(string(t))
}

var (
	storeDir = []string{"nix", "store"}
	dbDir    = []string{"nix", "var", "nix", "db"}
)

// whiteout handles an overlay whiteout: hiding the db (or one db file) of
// lower layers is honoured, hiding store contents is refused, and anything
// else is outside the store and dropped.
func (lx *layerExtract) whiteout(name string, target []string) error {
	switch {
	case within(storeDir, target) || within(target, storeDir):
		return fmt.Errorf("whiteout %q removes store contents of lower layers: not supported", name)
	case lx.phase == storePhase:
	case len(target) == len(dbDir)+1 && within(target, dbDir):
		lx.db.whiteouts = append(lx.db.whiteouts, target[len(dbDir)])
	case within(dbDir, target) || within(target, dbDir):
		lx.db.opaque = true
	}
	return nil
}
