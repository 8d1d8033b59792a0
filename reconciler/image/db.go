package image

import (
	"archive/tar"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path"
	"strconv"
	"strings"

	"github.com/nix-community/go-nix/pkg/nixbase32"
	_ "modernc.org/sqlite" // the pure-Go sqlite driver
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

// dbFile extracts a file of nix/var/nix/db into the layer's shard. The db
// is flat and holds regular files only.
func (lx *layerExtract) dbFile(hdr *tar.Header, rel []string, r io.Reader) error {
	if len(rel) != 1 || hdr.Typeflag != tar.TypeReg {
		return fmt.Errorf("entry %q: nix/var/nix/db holds regular files only, the image has a %s", hdr.Name, typeName(hdr.Typeflag))
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

// readDB returns the image db's ValidPaths: path → NAR hash. It leaves
// the db dir as the image had it: without a write-ahead log to read, the
// db is opened immutable (no -wal or -shm appear); with one, sqlite needs
// its -shm, which is removed again if the image had none.
func readDB(file string) (map[string]string, error) {
	query := "mode=ro&immutable=1"
	if fi, err := os.Stat(file + "-wal"); err == nil && fi.Size() > 0 {
		query = "mode=ro"
	}
	var created []string
	for _, side := range []string{file + "-wal", file + "-shm"} {
		if _, err := os.Lstat(side); errors.Is(err, fs.ErrNotExist) {
			created = append(created, side)
		}
	}
	defer func() {
		for _, side := range created {
			os.Remove(side)
		}
	}()
	u := url.URL{Scheme: "file", Path: file, RawQuery: query}
	db, err := sql.Open("sqlite", u.String())
	if err != nil {
		return nil, fmt.Errorf("opening the image db: %w", err)
	}
	defer db.Close()
	rows, err := db.Query(`select path, hash from ValidPaths`)
	if err != nil {
		return nil, fmt.Errorf("reading the image db: %w", err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var p, h string
		if err := rows.Scan(&p, &h); err != nil {
			return nil, fmt.Errorf("reading the image db: %w", err)
		}
		if path.Dir(p) != "/nix/store" || !storeName.MatchString(path.Base(p)) {
			return nil, fmt.Errorf("the image db lists %q: not a path in /nix/store", p)
		}
		out[p] = h
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading the image db: %w", err)
	}
	return out, nil
}

// sameHash compares a db hash (sha256:<base16> as Nix writes it, or
// sha256:<nixbase32>) with a computed sha256:<base16>.
func sameHash(db, computed string) bool {
	algo, digest, ok := strings.Cut(db, ":")
	if !ok || algo != "sha256" {
		return false
	}
	want := strings.TrimPrefix(computed, "sha256:")
	if len(digest) == 52 {
		b, err := nixbase32.DecodeString(digest)
		if err != nil {
			return false
		}
		return hex.EncodeToString(b) == want
	}
	return strings.EqualFold(digest, want)
}
