package image

import (
	"archive/tar"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"

	"golang.org/x/sys/unix"

	"gitlab.com/hydrafy/hydrafy/reconciler/store"
)

// maxDirFds bounds the directory handles one store path keeps open.
const maxDirFds = 256

// store extracts one entry of store path name; relComps is the entry's
// name inside the store path.
//
// Entries are created relative to directory handles: the nix/store handle
// comes from the staging dir's os.Root, every deeper one is opened from its
// parent's handle with O_NOFOLLOW, and each create names a single component
// (O_EXCL, never following a link). With the kinds map refusing any entry
// below a symlink or a file, no name can climb out or write through a link.
func (lx *layerExtract) store(hdr *tar.Header, name string, relComps []string, r io.Reader) error {
	if strings.HasPrefix(name, ".") {
		return nil // .links and other store internals are no store paths
	}
	// The same rule as the image db's rows: what Nix takes for a store path.
	if err := store.CheckStorePath("/nix/store/" + name); err != nil {
		return fmt.Errorf("entry %q: %w", hdr.Name, err)
	}
	if lx.valid[name] {
		return nil // the live store holds it: not written, not hashed
	}
	p := lx.paths[name]
	if p == nil {
		// Only paths the image db declares are written, and no more of
		// each than its declared NAR size.
		info, ok := lx.s.rows["/nix/store/"+name]
		if !ok {
			return fmt.Errorf("entry %q: store path /nix/store/%s has no row in the image db: refused before writing it", hdr.Name, name)
		}
		if err := lx.s.claim(name, lx.index); err != nil {
			return err
		}
		if lx.s.valid != nil && lx.s.valid("/nix/store/"+name) {
			lx.valid[name] = true
			lx.s.leftValid("/nix/store/" + name)
			return nil
		}
		p = &storePath{name: name, kinds: map[string]kind{}, files: map[string]fileMeta{}, fds: map[string]int{}, nar: newNarStream(),
			narBytes: narHeader, declared: info.NarSize}
		lx.paths[name] = p
		lx.order = append(lx.order, name)
	}
	rel := strings.Join(relComps, "/")
	for i := 0; i < len(relComps); i++ {
		if err := lx.ensureDir(p, strings.Join(relComps[:i], "/"), hdr.Name); err != nil {
			return err
		}
	}
	if k, ok := p.kinds[rel]; ok {
		if k == dirKind && hdr.Typeflag == tar.TypeDir {
			return nil
		}
		return fmt.Errorf("entry %q: /nix/store/%s already holds a %s there", hdr.Name, p.full(rel), k)
	}
	exec := hdr.Mode&0o100 != 0
	var cost int64
	switch hdr.Typeflag {
	case tar.TypeDir:
		cost = entryCost(rel) + dirNode
	case tar.TypeReg:
		cost = entryCost(rel) + fileNode(hdr.Size, exec)
	case tar.TypeSymlink:
		cost = entryCost(rel) + symlinkNode(hdr.Linkname)
	}
	if err := p.grow(cost); err != nil {
		return fmt.Errorf("entry %q: %w", hdr.Name, err)
	}
	var err error
	switch hdr.Typeflag {
	case tar.TypeDir:
		err = lx.mkdir(p, rel)
		if err == nil {
			p.nar.dir(rel)
		}
	case tar.TypeReg:
		err = lx.file(p, rel, exec, hdr.Size, r)
		if err == nil {
			p.kinds[rel] = fileKind
			p.files[rel] = fileMeta{size: hdr.Size, exec: exec}
		}
	case tar.TypeSymlink:
		err = lx.symlink(p, rel, hdr.Linkname)
		if err == nil {
			p.kinds[rel] = symlinkKind
			p.nar.symlink(rel, hdr.Linkname)
		}
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
		p.nar.broken = true // the NAR holds the target's contents again
		p.links = append(p.links, hardlink{name: rel, target: target})
	}
	if err != nil {
		return fmt.Errorf("extracting %q: %w", hdr.Name, err)
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
	if err := p.grow(entryCost(rel) + dirNode); err != nil {
		return fmt.Errorf("entry %q: %w", entry, err)
	}
	if err := lx.mkdir(p, rel); err != nil {
		return fmt.Errorf("extracting %q: %w", entry, err)
	}
	p.nar.broken = true // a directory without its own entry
	return nil
}

// parent returns the handle of rel's parent directory and rel's last name.
func (lx *layerExtract) parent(p *storePath, rel string) (int, string, error) {
	if rel == "" {
		return lx.s.storeFd, p.name, nil
	}
	dir, base := path.Split(rel)
	fd, err := lx.dirFd(p, strings.TrimSuffix(dir, "/"))
	return fd, base, err
}

// dirFd returns a handle of directory rel of p, opening it from its parent
// without following a symlink.
func (lx *layerExtract) dirFd(p *storePath, rel string) (int, error) {
	if fd, ok := p.fds[rel]; ok {
		return fd, nil
	}
	if p.kinds[rel] != dirKind {
		return -1, fmt.Errorf("/nix/store/%s is no directory", p.full(rel))
	}
	// Evict before the parent is looked up: a handle, once returned, stays
	// open until its user is done with it.
	if len(p.fds) >= maxDirFds {
		p.closeFds()
	}
	pfd, base, err := lx.parent(p, rel)
	if err != nil {
		return -1, err
	}
	fd, err := unix.Openat(pfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: "/nix/store/" + p.full(rel), Err: err}
	}
	p.fds[rel] = fd
	return fd, nil
}

func (p *storePath) closeFds() {
	for _, fd := range p.fds {
		unix.Close(fd)
	}
	clear(p.fds)
}

func (lx *layerExtract) mkdir(p *storePath, rel string) error {
	pfd, base, err := lx.parent(p, rel)
	if err != nil {
		return err
	}
	if err := unix.Mkdirat(pfd, base, 0o755); err != nil {
		return &os.PathError{Op: "mkdir", Path: "/nix/store/" + p.full(rel), Err: err}
	}
	p.kinds[rel] = dirKind
	p.dirs = append(p.dirs, rel)
	return nil
}

var epoch1 = []unix.Timeval{{Sec: 1}, {Sec: 1}}

// file writes a regular file of size bytes, streaming, with canonical
// metadata: it is created read-only (the handle stays writable) and gets
// mtime 1. Its contents go to the store path's NAR stream as they are
// written.
func (lx *layerExtract) file(p *storePath, rel string, exec bool, size int64, r io.Reader) error {
	pfd, base, err := lx.parent(p, rel)
	if err != nil {
		return err
	}
	mode := uint32(0o444)
	if exec {
		mode = 0o555
	}
	fd, err := unix.Openat(pfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, mode)
	if err != nil {
		return &os.PathError{Op: "create", Path: "/nix/store/" + p.full(rel), Err: err}
	}
	f := os.NewFile(uintptr(fd), "/nix/store/"+p.full(rel))
	w := io.Writer(onlyWriter{f})
	if h := p.nar.file(rel, exec, size); h != nil {
		w = teeWriter{f, h}
	}
	bp := bufPool.Get().(*[]byte)
	n, err := io.CopyBuffer(w, r, *bp)
	bufPool.Put(bp)
	lx.s.addWritten(n)
	if err == nil && n != size {
		err = fmt.Errorf("wrote %d bytes, the entry has %d", n, size)
	}
	if err == nil {
		p.nar.end(rel, size)
	}
	if err == nil && lx.s.umask&0o555 != 0 {
		err = unix.Fchmod(fd, mode)
	}
	if err == nil && lx.s.chown {
		err = unix.Fchown(fd, 0, 0)
	}
	if err == nil {
		err = unix.Futimes(fd, epoch1)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// teeWriter writes to a file, then what was written to a hash.
type teeWriter struct {
	f *os.File
	h io.Writer
}

func (t teeWriter) Write(b []byte) (int, error) {
	n, err := t.f.Write(b)
	t.h.Write(b[:n])
	return n, err
}

// onlyWriter hides ReadFrom so that CopyBuffer uses the pooled buffer.
type onlyWriter struct{ w io.Writer }

func (o onlyWriter) Write(b []byte) (int, error) { return o.w.Write(b) }

// symlink creates a symlink as it is: its target is never followed.
func (lx *layerExtract) symlink(p *storePath, rel, target string) error {
	pfd, base, err := lx.parent(p, rel)
	if err != nil {
		return err
	}
	if err := unix.Symlinkat(target, pfd, base); err != nil {
		return &os.PathError{Op: "symlink", Path: "/nix/store/" + p.full(rel), Err: err}
	}
	if lx.s.chown {
		if err := unix.Fchownat(pfd, base, 0, 0, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return err
		}
	}
	ts := []unix.Timespec{{Sec: 1}, {Sec: 1}}
	return unix.UtimesNanoAt(pfd, base, ts, unix.AT_SYMLINK_NOFOLLOW)
}

// finish makes the pending hardlinks of p, then gives its directories
// canonical metadata (deepest first), closes their handles and records
// the store path's NAR hash.
func (lx *layerExtract) finish(p *storePath) error {
	for len(p.links) > 0 {
		var left []hardlink
		for _, l := range p.links {
			switch p.kinds[l.target] {
			case fileKind:
				// The NAR holds the target's contents once more.
				m := p.files[l.target]
				if err := p.grow(entryCost(l.name) + fileNode(m.size, m.exec)); err != nil {
					return fmt.Errorf("hardlink /nix/store/%s: %w", p.full(l.name), err)
				}
				p.files[l.name] = m
				if err := lx.link(p, l); err != nil {
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
	for _, d := range p.dirs {
		fd, err := lx.dirFd(p, d)
		if err != nil {
			return err
		}
		if err := unix.Fchmod(fd, 0o555); err != nil {
			return err
		}
		if lx.s.chown {
			if err := unix.Fchown(fd, 0, 0); err != nil {
				return err
			}
		}
		if err := unix.Futimes(fd, epoch1); err != nil {
			return err
		}
	}
	p.closeFds()
	lx.s.counted(p.name, p.narBytes)
	if h, n, ok := p.nar.sum(); ok {
		lx.s.setHash(p.name, h, n)
		return nil
	}
	return lx.s.hash(p.name)
}

func (lx *layerExtract) link(p *storePath, l hardlink) error {
	ofd, obase, err := lx.parent(p, l.target)
	if err != nil {
		return err
	}
	// Keep the target's handle open while the new name's parent is found.
	ofd, err = unix.Dup(ofd)
	if err != nil {
		return err
	}
	defer unix.Close(ofd)
	nfd, nbase, err := lx.parent(p, l.name)
	if err != nil {
		return err
	}
	return unix.Linkat(ofd, obase, nfd, nbase, 0)
}
