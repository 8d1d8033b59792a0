package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"gitlab.com/hydrafy/hydrafy/internal/fsutil"

	"gitlab.com/hydrafy/hydrafy/bot/pin"
)

const pinUsage = `usage: hydrafy pin --image REPO --digest sha256:… [--tag TAG] [--write] FILE…

Pins every reference of REPO in the CI files to the digest: quoted or not,
docker.io/ or index.docker.io/ prefixed, through GitLab's Dependency Proxy
($CI_DEPENDENCY_PROXY_GROUP_IMAGE_PREFIX/…), in name: forms, variables and
services. A reference keeps its tag unless --tag names the digest's tag;
a version tag kept next to the new digest is named on stderr. References
that cannot be pinned (a registry in a variable defined elsewhere) are
listed. Without --write it prints a unified diff and changes nothing. It
exits 1 when no reference of REPO can be pinned.`

// pinned is one file's rewrite, made in memory before anything is shown
// or written.
type pinned struct {
	name     string
	old, new []byte
	changes  []pin.Change
}

func runPin(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("pin", pinUsage, stdout, stderr)
	var opts pin.Options
	fs.StringVar(&opts.Image, "image", "", "repository to pin, such as nixos/nix")
	fs.StringVar(&opts.Digest, "digest", "", "digest to pin every reference to (sha256:…)")
	fs.StringVar(&opts.Tag, "tag", "", "also replace the tag of references that carry one")
	write := fs.Bool("write", false, "write the files instead of printing a diff")
	files, err := fs.parse(args)
	if err != nil {
		return err
	}
	switch {
	case opts.Image == "":
		return fs.usageError("--image REPO is required")
	case opts.Digest == "":
		return fs.usageError("--digest sha256:… is required")
	case len(files) == 0:
		return fs.usageError("no FILE to pin")
	}
	// Rewrite checks the options before it looks at the file.
	if _, _, err := pin.Rewrite(nil, opts); err != nil {
		return err
	}

	// Every file is rewritten and checked before any is shown or written.
	var results []pinned
	refs, skipped := 0, 0
	for _, name := range files {
		if err := ctx.Err(); err != nil {
			return err
		}
		src, err := os.ReadFile(name)
		if err != nil {
			return fmt.Errorf("reading %s: %w", name, cause(err))
		}
		out, changes, err := pin.Rewrite(src, opts)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		found, err := pin.References(src, opts.Image)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		unpinnable, err := pin.Unpinnable(src, opts.Image)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		for _, u := range unpinnable {
			fmt.Fprintf(stderr, "%s:%d: not pinned: %s: %s\n", name, u.Line, u.Raw, u.Reason)
		}
		refs, skipped = refs+len(found), skipped+len(unpinnable)
		results = append(results, pinned{name: name, old: src, new: out, changes: changes})
	}
	if refs == 0 {
		if skipped > 0 {
			return fmt.Errorf("no reference of %s that can be pinned in %s (%d listed above cannot be)", opts.Image, strings.Join(files, ", "), skipped)
		}
		return fmt.Errorf("no reference of %s in %s", opts.Image, strings.Join(files, ", "))
	}

	for _, r := range results {
		if len(r.changes) == 0 {
			continue
		}
		if opts.Tag == "" {
			// The rule keeps a reference's tag; say where that puts a
			// release's name next to a digest nobody said it names.
			for _, c := range r.changes {
				if pin.IsVersionTag(c.Tag) {
					fmt.Fprintf(stderr, "%s:%d: %s: tag %s kept, but nothing said it points at this digest (--tag TAG names the digest's tag)\n",
						r.name, c.Line, c.New, c.Tag)
				}
			}
		}
		if !*write {
			if err := writeUnifiedDiff(stdout, filepath.ToSlash(filepath.Clean(r.name)), r.old, r.new); err != nil {
				return fmt.Errorf("printing the diff of %s: %w", r.name, err)
			}
			continue
		}
		if err := writeAtomic(r.name, r.new); err != nil {
			return err
		}
		noun := "references"
		if len(r.changes) == 1 {
			noun = "reference"
		}
		fmt.Fprintf(stdout, "pinned %d %s in %s\n", len(r.changes), noun, r.name)
	}
	return nil
}

// writeAtomic replaces the file name (or the file its symlink points to)
// with data atomically, keeping its mode and owner.
func writeAtomic(name string, data []byte) error {
	target, err := filepath.EvalSymlinks(name)
	if err != nil {
		return fmt.Errorf("writing %s: %w", name, cause(err))
	}
	if err := fsutil.ReplaceFile(target, data); err != nil {
		return fmt.Errorf("writing %s: %w", name, cause(errors.Unwrap(err)))
	}
	return nil
}

// cause drops the operation and path that an *fs.PathError repeats, for
// errors that name the file already.
func cause(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
