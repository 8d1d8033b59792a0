package image

import (
	"archive/tar"
	"fmt"
	"io"
	"os"
	"strconv"
)

// dbLayer is what one layer does to nix/var/nix/db. Layers may replace
// the db (an image built on top of nixos/nix does), so each layer's db
// files land in a shard of their own and are applied in layer order.
type dbLayer struct {
	opaque    bool // hides the db of lower layers
	whiteouts []string
	files     []string
}

func dbShard(index int) string { return ".db/" + strconv.Itoa(index) }

// maxDBBytes bounds the db files written while staging. A Nix db takes a
// few hundred bytes per store path: this is room for far more paths than
// any image holds, and what a hostile db can cost on disk at most.
const maxDBBytes = 256 << 20

// checkDBEntry refuses what the db may not hold: it is flat and holds
// regular files only.
func checkDBEntry(hdr *tar.Header, rel []string) error {
	if len(rel) != 1 || hdr.Typeflag != tar.TypeReg {
		return fmt.Errorf("entry %q: nix/var/nix/db holds regular files only, the image has a %s", hdr.Name, typeName(hdr.Typeflag))
	}
	return nil
}

// dbFile extracts a file of nix/var/nix/db into the layer's shard. Its
// size is known from its header: a db larger than maxDBBytes is refused
// before anything is written.
func (lx *layerExtract) dbFile(hdr *tar.Header, rel []string, r io.Reader) error {
	if err := checkDBEntry(hdr, rel); err != nil {
		return err
	}
	if total := lx.s.dbBytes.Add(hdr.Size); total > maxDBBytes {
		return fmt.Errorf("entry %q: the image db would take more than %s (%s): refused", hdr.Name, mb(maxDBBytes), mb(total))
	}
	root := lx.s.root
	shard := dbShard(lx.index)
	if err := root.MkdirAll(shard, 0o700); err != nil {
		return err
	}
	name := shard + "/" + rel[0]
	f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("extracting %q: %w", hdr.Name, err)
	}
	n, err := io.Copy(onlyWriter{f}, r)
	lx.s.addWritten(n)
	if err == nil {
		err = f.Chmod(os.FileMode(hdr.Mode)&0o755 | 0o600)
	}
	if err == nil && lx.s.chown {
		err = f.Chown(0, 0)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("extracting %q: %w", hdr.Name, err)
	}
	if err := root.Chtimes(name, hdr.ModTime, hdr.ModTime); err != nil {
		return err
	}
	lx.db.files = append(lx.db.files, rel[0])
	return nil
}

// assembleDB applies the layers' db shards in order into nix/var/nix/db.
func (s *stager) assembleDB() error {
	final := map[string]int{}
	for i, l := range s.db {
		if l == nil {
			continue
		}
		if l.opaque {
			clear(final)
		}
		for _, w := range l.whiteouts {
			delete(final, w)
		}
		for _, f := range l.files {
			final[f] = i
		}
	}
	for f, i := range final {
		if err := s.root.Rename(dbShard(i)+"/"+f, "nix/var/nix/db/"+f); err != nil {
			return fmt.Errorf("assembling the db: %w", err)
		}
	}
	if err := s.root.RemoveAll(".db"); err != nil {
		return fmt.Errorf("assembling the db: %w", err)
	}
	return nil
}
