package pin

import (
	"bytes"
	"fmt"

	"go.yaml.in/yaml/v3"
)

// Rewrite returns src with every reference of opts.Image pinned to
// opts.Digest. Only the text of those references changes. The result is
// parsed again and checked: when it is not the same YAML with every
// reference pinned, Rewrite returns an error and no output.
func Rewrite(src []byte, opts Options) (out []byte, changes []Change, err error) {
	r, err := opts.validate()
	if err != nil {
		return nil, nil, err
	}
	docs, err := parse(src)
	if err != nil {
		return nil, nil, fmt.Errorf("parsing: %w", err)
	}
	t := newText(src)
	refs, err := find(t, docs, r)
	if err != nil {
		return nil, nil, err
	}
	var b bytes.Buffer
	b.Grow(len(src) + len(refs)*len(opts.Digest))
	last := 0
	want := map[*yaml.Node]string{} // each reference's node → its pinned value
	for _, f := range refs {
		raw := string(src[f.start:f.end])
		pinned := f.ref.pinned(opts)
		want[f.node] = pinned
		if raw == pinned {
			continue
		}
		b.Write(src[last:f.start])
		b.WriteString(pinned)
		last = f.end
		tag := ""
		if r, ok := parseRef(pinned); ok {
			tag = r.tag
		}
		changes = append(changes, Change{Line: f.line, Old: raw, New: pinned, Tag: tag})
	}
	if len(changes) == 0 {
		return bytes.Clone(src), nil, nil
	}
	b.Write(src[last:])
	out = b.Bytes()
	if err := verify(docs, len(refs), want, out, r, opts); err != nil {
		return nil, nil, fmt.Errorf("checking the rewritten file: %w", err)
	}
	return out, changes, nil
}

// References lists every reference of image found in src, in file order.
func References(src []byte, image string) ([]Reference, error) {
	refs, _, err := scanSource(src, image)
	if err != nil {
		return nil, err
	}
	out := make([]Reference, 0, len(refs))
	for _, f := range refs {
		out = append(out, Reference{Line: f.line, Raw: string(src[f.start:f.end]), Tag: f.ref.tag, Digest: f.ref.digest})
	}
	return out, nil
}

// Unpinnable lists the references of image in src that cannot be pinned
// (a registry or digest held in a variable defined elsewhere), in file
// order. Rewrite leaves them as they are.
func Unpinnable(src []byte, image string) ([]Skipped, error) {
	_, skipped, err := scanSource(src, image)
	return skipped, err
}

// scanSource parses src and scans it for the references of image.
func scanSource(src []byte, image string) ([]found, []Skipped, error) {
	r, err := parseImage(image)
	if err != nil {
		return nil, nil, err
	}
	docs, err := parse(src)
	if err != nil {
		return nil, nil, fmt.Errorf("parsing: %w", err)
	}
	return scan(newText(src), docs, r)
}
