package store

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/nix-community/go-nix/pkg/narinfo/signature"
	"github.com/nix-community/go-nix/pkg/nixbase32"
	"github.com/nix-community/go-nix/pkg/nixhash"
)

// The checks below take every column of an image db row the way Nix reads
// it back (Nix 2.8 and master agree unless noted), so that no row a merge
// registers can make Nix fail on the live store. A refused row fails the
// whole stage or merge before anything changes, with one line naming the
// row's path and the column.

// ErrBadRow marks an image db row that Nix would refuse to read.
var ErrBadRow = errors.New("image db")

// maxNameLen is StorePath::MaxPathLen (libstore path.hh): the longest name
// after the hash part.
const maxNameLen = 211

// hashLen is StorePath::HashLen: the nixbase32 hash part of a store path.
const hashLen = 32

// CheckStorePath checks p as Nix parses a store path it reads from its db
// (Store::parseStorePath, libstore path.cc): directly in /nix/store, a
// 32-character nixbase32 hash part (the StorePath constructor), a dash
// (master), and a name that passes checkName.
func CheckStorePath(p string) error {
	base, ok := strings.CutPrefix(p, "/nix/store/")
	if !ok {
		return fmt.Errorf("path %q is not in the Nix store", p)
	}
	if len(base) < hashLen+1 {
		return fmt.Errorf("%q is too short to be a valid store path", p)
	}
	for i := 0; i < hashLen; i++ {
		if !strings.ContainsRune(nixbase32.Alphabet, rune(base[i])) {
			return fmt.Errorf("store path %q contains illegal base-32 character %q", p, base[i])
		}
	}
	if base[hashLen] != '-' {
		return fmt.Errorf("store path %q has no dash after its hash part", p)
	}
	if err := CheckName(base[hashLen+1:]); err != nil {
		return fmt.Errorf("store path %q: %w", p, err)
	}
	return nil
}

// CheckName is Nix's checkName (libstore path.cc): not empty, at most 211
// characters, only [0-9a-zA-Z+-._?=], and no "." or ".." as its first
// dash-separated component (master; 2.8 accepts those, newer Nix refuses
// the whole store over them).
func CheckName(name string) error {
	switch {
	case name == "":
		return errors.New("the name is empty")
	case len(name) > maxNameLen:
		return fmt.Errorf("the name is longer than %d characters (%d)", maxNameLen, len(name))
	case name == "." || name == ".." || strings.HasPrefix(name, ".-") || strings.HasPrefix(name, "..-"):
		return fmt.Errorf("the name %q is not valid: its first dash-separated component is %q", name, strings.SplitN(name, "-", 2)[0])
	}
	for i := 0; i < len(name); i++ {
		if !nameChar(name[i]) {
			return fmt.Errorf("the name contains the illegal character %q", name[i])
		}
	}
	return nil
}

func nameChar(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || strings.IndexByte("+-._?=", c) >= 0
}

// parseNarHash reads the hash column as LocalStore::queryPathInfoInternal
// does (Hash::parseAnyPrefixed: "<algo>:<base16|nixbase32|base64>" or SRI
// "<algo>-<base64>", libstore local-store.cc) and returns it as
// "sha256:<base16>". Only sha256 is taken: it is what Nix writes for NAR
// hashes and what the stage checks the extracted trees against.
func parseNarHash(s string) (string, error) {
	h, err := nixhash.ParseAny(s, nil)
	if err != nil {
		return "", fmt.Errorf("%q is not a Nix hash: %v", s, err)
	}
	if h.Algo() != nixhash.SHA256 {
		return "", fmt.Errorf("%q is a %s hash; NAR hashes are sha256", s, h.Algo())
	}
	return "sha256:" + hex.EncodeToString(h.Digest()), nil
}

// NormalNarHash returns the hash column s as "sha256:<base16>", the form
// the extractor computes, or an error when Nix could not read it.
func NormalNarHash(s string) (string, error) { return parseNarHash(s) }

// checkCA checks the ca column as parseContentAddressOpt (libstore
// content-address.cc) reads it: empty for none, else "text:sha256:<hash>"
// or "fixed:[r:]<algo>:<hash>", the hash unprefixed in base16, nixbase32
// or base64.
func checkCA(s string) error {
	if s == "" {
		return nil
	}
	prefix, rest, ok := strings.Cut(s, ":")
	if !ok {
		return fmt.Errorf("%q is not a content address (<prefix>:<rest>)", s)
	}
	switch prefix {
	case "text":
	case "fixed":
		rest = strings.TrimPrefix(rest, "r:")
	default:
		return fmt.Errorf("%q: content address prefix %q is neither text nor fixed", s, prefix)
	}
	algoName, digest, ok := strings.Cut(rest, ":")
	if !ok {
		return fmt.Errorf("%q: the content address hash is not <algo>:<hash>", s)
	}
	algo, err := nixhash.ParseAlgorithm(algoName)
	if err != nil {
		return fmt.Errorf("%q: %v", s, err)
	}
	if prefix == "text" && algo != nixhash.SHA256 {
		return fmt.Errorf("%q: a text content address uses sha256", s)
	}
	if strings.ContainsAny(digest, ":-") {
		return fmt.Errorf("%q: the content address hash must be unprefixed", s)
	}
	if _, err := nixhash.ParseAny(digest, &algo); err != nil {
		return fmt.Errorf("%q: %v", s, err)
	}
	return nil
}

// checkSigs checks the sigs column: signatures separated by spaces, as
// queryPathInfoInternal tokenises it, each "<key name>:<base64 ed25519
// signature>" as Nix's verifyDetached (libutil signature/local-keys.cc)
// reads it.
func checkSigs(s string) error {
	for _, sig := range strings.Fields(s) {
		if _, err := signature.ParseSignature(sig); err != nil {
			return fmt.Errorf("%q is not a signature (<key name>:<base64>): %v", sig, err)
		}
	}
	return nil
}

// rowError is the one line for a bad column of the row of path.
func rowError(table, path, column string, err error) error {
	return fmt.Errorf("%w: %s row of %s: column %s: %v", ErrBadRow, table, path, column, err)
}

// checkRow checks every column of one ValidPaths row.
func checkRow(r row) error {
	if err := CheckStorePath(r.path); err != nil {
		return rowError("ValidPaths", strconv.Quote(r.path), "path", err)
	}
	if _, err := parseNarHash(r.hash); err != nil {
		return rowError("ValidPaths", r.path, "hash", err)
	}
	if r.deriver.Valid {
		// queryPathInfoInternal: a non-NULL deriver goes through parseStorePath.
		if err := CheckStorePath(r.deriver.String); err != nil {
			return rowError("ValidPaths", r.path, "deriver", err)
		}
	}
	// Nix reads a NULL narSize as 0 and then fails --verify on the path:
	// the size must be given, and the stage checks it against the tree.
	if !r.narSize.Valid || r.narSize.Int64 <= 0 {
		return rowError("ValidPaths", r.path, "narSize", errors.New("missing or not positive"))
	}
	if r.sigs.Valid {
		if err := checkSigs(r.sigs.String); err != nil {
			return rowError("ValidPaths", r.path, "sigs", err)
		}
	}
	if r.ca.Valid {
		if err := checkCA(r.ca.String); err != nil {
			return rowError("ValidPaths", r.path, "ca", err)
		}
	}
	return nil
}

// checkOutput checks one DerivationOutputs row: Nix reads its path with
// parseStorePath (queryPartialDerivationOutputMap, local-store.cc), and
// its id names the output, whose store path is called <name>-<id>
// (outputPathName, derivations.cc): it must be a valid name itself. Its
// drv is an id of a checked ValidPaths row.
func checkOutput(o drvOutput) error {
	if err := CheckName(o.id); err != nil {
		return rowError("DerivationOutputs", o.drv, "id", err)
	}
	if err := CheckStorePath(o.path); err != nil {
		return rowError("DerivationOutputs", o.drv, "path", err)
	}
	return nil
}

// checkImageDB checks every row of img. References are ids into ValidPaths
// (readImageDB refuses dangling ones), so each Refs target is a checked
// ValidPaths row.
func checkImageDB(img *imageDB) error {
	for _, r := range img.rows {
		if err := checkRow(r); err != nil {
			return err
		}
	}
	for _, o := range img.outputs {
		if err := checkOutput(o); err != nil {
			return err
		}
	}
	return nil
}

// PathInfo is what an image db declares about one of its store paths.
type PathInfo struct {
	// NarHash is "sha256:<base16>", whatever encoding the row used.
	NarHash string
	NarSize int64
}

// ReadImagePaths reads the db of the staged store at root, checks every
// row as a merge does, and returns what it declares for each store path.
// It leaves the db dir as it found it: SQLite side files it had to create
// (a -shm for a db with a write-ahead log) are removed again.
func ReadImagePaths(ctx context.Context, root string) (map[string]PathInfo, error) {
	name := dbFile(root)
	var created []string
	for _, side := range []string{name + "-wal", name + "-shm"} {
		if ok, err := exists(side); err != nil {
			return nil, err
		} else if !ok {
			created = append(created, side)
		}
	}
	defer func() {
		for _, side := range created {
			os.Remove(side)
		}
	}()
	img, err := readImageDB(ctx, root)
	if err != nil {
		return nil, err
	}
	out := make(map[string]PathInfo, len(img.rows))
	for _, r := range img.rows {
		h, err := parseNarHash(r.hash)
		if err != nil {
			return nil, rowError("ValidPaths", r.path, "hash", err)
		}
		out[r.path] = PathInfo{NarHash: h, NarSize: r.narSize.Int64}
	}
	return out, nil
}
