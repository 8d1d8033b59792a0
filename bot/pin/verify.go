package pin

import (
	"errors"
	"fmt"

	"go.yaml.in/yaml/v3"
)

// verify parses the rewritten file and checks that it is the input's YAML
// with exactly the references changed, each to its pinned form, and that
// it holds no reference of the image without the digest.
func verify(inDocs []*yaml.Node, nrefs int, pinned map[*yaml.Node]string, out []byte, r repo, opts Options) error {
	outDocs, err := parse(out)
	if err != nil {
		return fmt.Errorf("it is not valid YAML: %w", err)
	}
	if len(outDocs) != len(inDocs) {
		return fmt.Errorf("it has %d documents instead of %d", len(outDocs), len(inDocs))
	}
	for i := range inDocs {
		if err := sameTree(inDocs[i], outDocs[i], pinned); err != nil {
			return err
		}
	}
	t := newText(out)
	outRefs, err := find(t, outDocs, r)
	if err != nil {
		return err
	}
	if len(outRefs) != nrefs {
		return fmt.Errorf("it has %d references of %s instead of %d", len(outRefs), r, nrefs)
	}
	for _, f := range outRefs {
		if f.ref.digest != opts.Digest {
			return fmt.Errorf("reference %q at line %d is not pinned to %s", f.node.Value, f.line, opts.Digest)
		}
		if opts.Tag != "" && f.ref.tag != "" && !hasVariable(f.ref.tag) && f.ref.tag != opts.Tag {
			return fmt.Errorf("reference %q at line %d does not carry tag %s", f.node.Value, f.line, opts.Tag)
		}
		if opts.Tag == "" && opts.VersionTag != "" && IsVersionTag(f.ref.tag) && f.ref.tag != opts.VersionTag {
			return fmt.Errorf("reference %q at line %d does not carry version tag %s", f.node.Value, f.line, opts.VersionTag)
		}
	}
	return nil
}

var errShape = errors.New("its structure differs from the input's")

// sameTree compares two parsed documents node by node. A node in pinned
// must hold its pinned value in b; every other node must be unchanged.
func sameTree(a, b *yaml.Node, pinned map[*yaml.Node]string) error {
	if a.Kind != b.Kind || a.Style != b.Style || a.Tag != b.Tag || a.Anchor != b.Anchor || len(a.Content) != len(b.Content) {
		return fmt.Errorf("%w at line %d", errShape, a.Line)
	}
	want := a.Value
	if v, ok := pinned[a]; ok {
		want = v
	}
	if b.Value != want {
		return fmt.Errorf("line %d holds %q instead of %q", b.Line, b.Value, want)
	}
	if a.Kind == yaml.AliasNode {
		return nil // the anchor's value is compared where it is defined
	}
	for i := range a.Content {
		if err := sameTree(a.Content[i], b.Content[i], pinned); err != nil {
			return err
		}
	}
	return nil
}
