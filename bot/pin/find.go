package pin

import (
	"fmt"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// skipKeys are GitLab CI keys whose values name projects, files, jobs,
// stages or shell commands, never images: a value there that looks like a
// reference (a project "nixos/nix", say) is left alone.
var skipKeys = map[string]bool{
	"project": true, "file": true, "local": true, "remote": true,
	"template": true, "component": true, "ref": true, "trigger": true,
	"extends": true, "needs": true, "dependencies": true,
	"stage": true, "stages": true,
	"script": true, "before_script": true, "after_script": true,
}

// found is one reference of the image with its place in the source.
type found struct {
	node       *yaml.Node
	ref        ref
	start, end int // byte range of the reference's text
	line       int
}

// find returns every reference of r in the parsed documents, in file order.
func find(t *text, docs []*yaml.Node, r repo) ([]found, error) {
	refs, _, err := scan(t, docs, r)
	return refs, err
}

// scan returns every reference of r in the parsed documents and the
// references of r that cannot be pinned, both in file order.
func scan(t *text, docs []*yaml.Node, r repo) ([]found, []Skipped, error) {
	f := finder{repo: r, hint: r.path[strings.LastIndex(r.path, "/")+1:], seen: map[*yaml.Node]bool{}}
	for _, d := range docs {
		f.walk(d, 0)
	}
	var skipped []Skipped
	for _, s := range f.skipped {
		line := s.node.Line
		if start, _, err := t.span(s.node); err == nil {
			line = t.line(start)
		}
		skipped = append(skipped, Skipped{Line: line, Raw: s.node.Value, Reason: s.reason})
	}
	sort.SliceStable(skipped, func(i, j int) bool { return skipped[i].Line < skipped[j].Line })
	refs, err := f.located(t)
	return refs, skipped, err
}

// located maps the references found to their places in the source.
func (f *finder) located(t *text) ([]found, error) {
	var out []found
	for _, n := range f.nodes {
		rf, _ := parseRef(n.Value)
		start, end, err := t.span(n)
		if err == nil {
			err = checkSpan(t.src[start:end], n)
		}
		if err != nil {
			return nil, fmt.Errorf("locating reference %q at line %d: %w", n.Value, n.Line, err)
		}
		out = append(out, found{node: n, ref: rf, start: start, end: end, line: t.line(start)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].start < out[j].start })
	for i := 1; i < len(out); i++ {
		if out[i].start < out[i-1].end {
			return nil, fmt.Errorf("locating reference %q at line %d: it overlaps another", out[i].node.Value, out[i].line)
		}
	}
	return out, nil
}

// checkSpan makes sure that the located text spells the scalar's value.
func checkSpan(raw []byte, n *yaml.Node) error {
	got := string(raw)
	if n.Style&yaml.DoubleQuotedStyle != 0 {
		var s string
		if err := yaml.Unmarshal([]byte(`"`+got+`"`), &s); err != nil {
			return fmt.Errorf("reading %q: %w", got, err)
		}
		got = s
	}
	if got != n.Value {
		return fmt.Errorf("the text there is %q", raw)
	}
	return nil
}

type finder struct {
	repo  repo
	hint  string // the repository's last path component, in every reference
	seen  map[*yaml.Node]bool
	nodes []*yaml.Node
	// skipped are the scalars that name the image in a form that cannot
	// be pinned, with the reason.
	skipped []skippedNode
}

type skippedNode struct {
	node   *yaml.Node
	reason string
}

// walk visits n, depth levels below the document's root.
func (f *finder) walk(n *yaml.Node, depth int) {
	if f.seen[n] {
		return
	}
	f.seen[n] = true
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			f.walk(c, 0)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			name := ""
			if k.Kind == yaml.ScalarNode {
				name = k.Value
			}
			if skipKeys[name] {
				continue
			}
			if name == "include" && depth == 0 {
				f.walkInclude(v)
				continue
			}
			f.walk(v, depth+1)
		}
	case yaml.SequenceNode:
		for _, c := range n.Content {
			f.walk(c, depth+1)
		}
	case yaml.AliasNode:
		if n.Alias != nil {
			f.walk(n.Alias, depth)
		}
	case yaml.ScalarNode:
		if !strings.Contains(n.Value, f.hint) {
			return
		}
		if r, ok := parseRef(n.Value); ok && r.repo == f.repo {
			f.nodes = append(f.nodes, n)
		} else if why := unresolved(n.Value, f.repo); why != "" {
			f.skipped = append(f.skipped, skippedNode{node: n, reason: why})
		}
	}
}

// walkInclude visits the top-level include: its plain entries are file
// paths and URLs, but its mappings can pass images as component inputs.
func (f *finder) walkInclude(n *yaml.Node) {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	switch n.Kind {
	case yaml.MappingNode:
		f.walk(n, 1)
	case yaml.SequenceNode:
		for _, c := range n.Content {
			if c.Kind == yaml.MappingNode {
				f.walk(c, 2)
			}
		}
	}
}
