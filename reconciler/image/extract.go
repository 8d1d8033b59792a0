package image

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

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
// name holds (so nothing is ever written through a symlink or a file) and
// the hardlinks still to make.
type storePath struct {
	name  string
	kinds map[string]kind // "" is the store path itself
	dirs  []string
	links []hardlink
}

type hardlink struct{ name, target string }

// full returns the name of rel relative to the nix/store root.
func (p *storePath) full(rel string) string {
	if rel == "" {
		return p.name
	}
	return p.name + "/" + rel
}

// layerExtract is the extraction of one layer.
type layerExtract struct {
	s     *stager
	index int
	paths map[string]*storePath
	order []string
	db    dbLayer
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

// extract reads the tar stream r of layer index into the staging dir and
// returns the names of the store paths it holds, complete and canonical.
func (s *stager) extract(ctx context.Context, index int, r io.Reader) ([]string, error) {
	lx := &layerExtract{s: s, index: index, paths: map[string]*storePath{}}
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
	s.setDB(index, lx.db)
	for _, name := range lx.order {
		if err := lx.finish(lx.paths[name]); err != nil {
			return nil, err
		}
	}
	return lx.order, nil
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
		return lx.store(hdr, comps[2], comps[3:], r)
	case dbEntry:
		if err := checkHeader(hdr); err != nil {
			return err
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
	case len(target) == len(dbDir)+1 && within(target, dbDir):
		lx.db.whiteouts = append(lx.db.whiteouts, target[len(dbDir)])
	case within(dbDir, target) || within(target, dbDir):
		lx.db.opaque = true
	}
	return nil
}

// store extracts one entry of store path name; rel is the entry's name
// inside the store path.
func (lx *layerExtract) store(hdr *tar.Header, name string, relComps []string, r io.Reader) error {
	if strings.HasPrefix(name, ".") {
		return nil // .links and other store internals are no store paths
	}
	if !storeName.MatchString(name) {
		return fmt.Errorf("entry %q: %q is not a store path name", hdr.Name, name)
	}
	p := lx.paths[name]
	if p == nil {
		if err := lx.s.claim(name, lx.index); err != nil {
			return err
		}
		p = &storePath{name: name, kinds: map[string]kind{}}
		lx.paths[name] = p
		lx.order = append(lx.order, name)
	}
	rel := strings.Join(relComps, "/")
	if len(relComps) > 0 {
		for i := 0; i < len(relComps); i++ {
			if err := lx.ensureDir(p, strings.Join(relComps[:i], "/"), hdr.Name); err != nil {
				return err
			}
		}
	}
	if k, ok := p.kinds[rel]; ok {
		if k == dirKind && hdr.Typeflag == tar.TypeDir {
			return nil
		}
		return fmt.Errorf("entry %q: /nix/store/%s already holds a %s there", hdr.Name, p.full(rel), k)
	}
	st := lx.s.store
	switch hdr.Typeflag {
	case tar.TypeDir:
		if err := st.Mkdir(p.full(rel), 0o755); err != nil {
			return fmt.Errorf("extracting %q: %w", hdr.Name, err)
		}
		p.kinds[rel] = dirKind
		p.dirs = append(p.dirs, rel)
	case tar.TypeReg:
		if err := lx.file(p.full(rel), hdr, r); err != nil {
			return fmt.Errorf("extracting %q: %w", hdr.Name, err)
		}
		p.kinds[rel] = fileKind
	case tar.TypeSymlink:
		if err := lx.symlink(p.full(rel), hdr.Linkname); err != nil {
			return fmt.Errorf("extracting %q: %w", hdr.Name, err)
		}
		p.kinds[rel] = symlinkKind
	case tar.TypeLink:
		t, err := splitName(hdr.Linkname)
		if err != nil {
			return fmt.Errorf("hardlink %q: %w", hdr.Name, err)
		}
		if len(t) < 4 || !within(t, append(storeDir, name)) {
			return fmt.Errorf("hardlink %q → %q leaves its store path", hdr.Name, hdr.Linkname)
		}
		target := strings.Join(t[3:], "/")
		if target == rel {
			return fmt.Errorf("hardlink %q points at itself", hdr.Name)
		}
		p.kinds[rel] = pendingLink
		p.links = append(p.links, hardlink{name: rel, target: target})
	}
	return nil
}

// ensureDir makes sure that rel inside p is a directory: it creates a
// missing parent (its own header may come later) and refuses to go below
// anything else.
func (lx *layerExtract) ensureDir(p *storePath, rel, entry string) error {
	k, ok := p.kinds[rel]
	if ok && k == dirKind {
		return nil
	}
	if ok {
		return fmt.Errorf("entry %q lies below a %s (/nix/store/%s)", entry, k, p.full(rel))
	}
	if err := lx.s.store.Mkdir(p.full(rel), 0o755); err != nil {
		return fmt.Errorf("extracting %q: %w", entry, err)
	}
	p.kinds[rel] = dirKind
	p.dirs = append(p.dirs, rel)
	return nil
}

// file writes a regular file, streaming, with canonical metadata.
func (lx *layerExtract) file(name string, hdr *tar.Header, r io.Reader) error {
	f, err := lx.s.store.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	bp := bufPool.Get().(*[]byte)
	n, err := io.CopyBuffer(onlyWriter{f}, r, *bp)
	bufPool.Put(bp)
	lx.s.addWritten(n)
	if err == nil {
		err = lx.s.canonicalFile(f, hdr.Mode&0o100 != 0)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// onlyWriter hides ReadFrom so that CopyBuffer uses the pooled buffer.
type onlyWriter struct{ w io.Writer }

func (o onlyWriter) Write(b []byte) (int, error) { return o.w.Write(b) }

// canonicalFile gives an open file the metadata of a store file.
func (s *stager) canonicalFile(f *os.File, exec bool) error {
	mode := os.FileMode(0o444)
	if exec {
		mode = 0o555
	}
	if err := f.Chmod(mode); err != nil {
		return err
	}
	if s.asRoot {
		if err := f.Chown(0, 0); err != nil {
			return err
		}
	}
	return unix.Futimes(int(f.Fd()), []unix.Timeval{{Sec: 1}, {Sec: 1}})
}

// symlink creates a symlink as it is: its target is never followed.
func (lx *layerExtract) symlink(name, target string) error {
	st := lx.s.store
	if err := st.Symlink(target, name); err != nil {
		return err
	}
	if lx.s.asRoot {
		if err := st.Lchown(name, 0, 0); err != nil {
			return err
		}
	}
	dir, err := st.Open(path.Dir(name))
	if err != nil {
		return err
	}
	defer dir.Close()
	ts := []unix.Timespec{{Sec: 1}, {Sec: 1}}
	return unix.UtimesNanoAt(int(dir.Fd()), path.Base(name), ts, unix.AT_SYMLINK_NOFOLLOW)
}

// finish makes the pending hardlinks of p, then gives its directories
// canonical metadata (deepest first) and records its NAR hash.
func (lx *layerExtract) finish(p *storePath) error {
	st := lx.s.store
	for len(p.links) > 0 {
		var left []hardlink
		for _, l := range p.links {
			switch p.kinds[l.target] {
			case fileKind:
				if err := st.Link(p.full(l.target), p.full(l.name)); err != nil {
					return fmt.Errorf("hardlinking /nix/store/%s: %w", p.full(l.name), err)
				}
				p.kinds[l.name] = fileKind
			case pendingLink:
				left = append(left, l)
			default:
				return fmt.Errorf("hardlink /nix/store/%s points at %s, not a file of its store path", p.full(l.name), p.full(l.target))
			}
		}
		if len(left) == len(p.links) {
			return fmt.Errorf("hardlinks in /nix/store/%s form a cycle", p.name)
		}
		p.links = left
	}
	// A child's name is longer than its parent's: longest first.
	sort.SliceStable(p.dirs, func(i, j int) bool { return len(p.dirs[i]) > len(p.dirs[j]) })
	one := time.Unix(1, 0)
	for _, d := range p.dirs {
		n := p.full(d)
		if err := st.Chmod(n, 0o555); err != nil {
			return err
		}
		if lx.s.asRoot {
			if err := st.Lchown(n, 0, 0); err != nil {
				return err
			}
		}
		if err := st.Chtimes(n, one, one); err != nil {
			return err
		}
	}
	return lx.s.hash(p.name)
}
