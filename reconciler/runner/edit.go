package runner

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// editor collects byte-range edits of a config.toml.
type editor struct {
	src   string
	stmts []stmt
	nl    string
	edits []textEdit
}

// textEdit replaces src[start:end] with text.
type textEdit struct {
	start, end int
	text       string
}

func (e *editor) add(start, end int, text string) {
	e.edits = append(e.edits, textEdit{start, end, text})
}

// apply returns the edited text. Edits are applied from the end backwards;
// at the same offset the wider one goes first, so an insertion lands before
// whatever replaced the text after it.
func (e *editor) apply() string {
	slices.SortStableFunc(e.edits, func(a, b textEdit) int {
		if c := cmp.Compare(b.start, a.start); c != 0 {
			return c
		}
		return cmp.Compare(b.end, a.end)
	})
	out := e.src
	for _, ed := range e.edits {
		out = out[:ed.start] + ed.text + out[ed.end:]
	}
	return out
}

// runner plans the edits of one runner and returns its resulting volumes.
func (e *editor) runner(b *block, dec map[string]any, mounts []string, image string) ([]string, error) {
	d, _ := dec["docker"].(map[string]any)
	old, err := stringList(d["volumes"])
	if err != nil {
		return nil, err
	}
	plan := planVolumes(old, mounts)
	setImage := image != "" && d["image"] != image

	if b.dockerHeader < 0 {
		if b.dottedDocker {
			return nil, errors.New("docker settings written as dotted keys or an inline table: write them as a [runners.docker] section")
		}
		indent := e.indent(e.stmts[b.header]) + "  "
		text := e.nl + indent + "[runners.docker]" + e.nl
		if image != "" {
			text += indent + "  image = " + quote(image) + e.nl
		}
		text += indent + "  volumes = " + inlineList(plan.result) + e.nl
		e.insertAfterLine(e.stmts[b.last].end, text)
		return plan.result, nil
	}

	var vol, img *stmt
	for _, k := range b.dockerKeys {
		st := &e.stmts[k]
		switch {
		case slices.Equal(st.path, []string{"volumes"}):
			vol = st
		case slices.Equal(st.path, []string{"image"}):
			img = st
		}
	}
	keyIndent := e.indent(e.stmts[b.dockerHeader]) + "  "
	after := e.stmts[b.dockerHeader].end
	if len(b.dockerKeys) > 0 {
		keyIndent = e.indent(e.stmts[b.dockerKeys[0]])
		after = e.stmts[b.dockerKeys[len(b.dockerKeys)-1]].end
	}
	var lines string
	if setImage {
		if img != nil {
			e.add(img.val.start, img.val.end, quote(image))
		} else {
			lines += keyIndent + "image = " + quote(image) + e.nl
		}
	}
	switch {
	case vol == nil:
		lines += keyIndent + "volumes = " + inlineList(plan.result) + e.nl
	case len(vol.elems) != len(old):
		return nil, fmt.Errorf("volumes: scanned %d elements, parsed %d: unsupported layout", len(vol.elems), len(old))
	case plan.changed():
		if err := e.volumes(vol, plan, keyIndent); err != nil {
			return nil, err
		}
	}
	if lines != "" {
		e.insertAfterLine(after, lines)
	}
	return plan.result, nil
}

// volumes edits the elements of an existing volumes array in place, so that
// comments inside it stay.
func (e *editor) volumes(st *stmt, p volumeEdit, keyIndent string) error {
	elems := st.elems
	n := len(elems)
	if !strings.HasPrefix(e.src[st.val.start:], "[") {
		return errors.New("volumes is not an array")
	}
	if n == 0 {
		e.add(st.val.start, st.val.end, inlineList(p.result))
		return nil
	}
	for i, w := range p.replace {
		e.add(elems[i].start, elems[i].end, quote(w))
	}
	// last is the last element kept; tail is where the kept elements end
	// once removed elements after last are gone.
	last := n - 1
	for p.remove[last] {
		last--
	}
	if last < 0 {
		return fmt.Errorf("internal: every volume removed")
	}
	// A removed element alone on its line goes with its line (and the
	// comment on it); otherwise with the separator up to the next element.
	// Removed elements after the last kept one go with the separator before
	// them, unless all of them sit on lines of their own.
	trailingLines := true
	for i := last + 1; i < n; i++ {
		if _, ok := e.ownLine(elems[i]); !ok {
			trailingLines = false
		}
	}
	tail := elems[last].end
	var dels []span
	for i := range p.remove {
		if sp, ok := e.ownLine(elems[i]); ok && (i < last || trailingLines) {
			dels = append(dels, sp)
		} else if i < last {
			dels = append(dels, span{elems[i].start, elems[i+1].start})
		}
	}
	if last < n-1 && !trailingLines {
		tail = elems[n-1].end
		dels = append(dels, span{elems[last].end, tail})
	}
	for _, d := range mergeSpans(dels) {
		e.add(d.start, d.end, "")
	}
	if len(p.append) == 0 {
		return nil
	}
	closing := st.val.end - 1
	if !strings.Contains(e.src[tail:closing], "\n") {
		var text string
		for _, w := range p.append {
			text += ", " + quote(w)
		}
		e.add(elems[last].end, elems[last].end, text)
		return nil
	}
	// One element per line: add lines after the last element's line, in
	// its indentation, and give it a trailing comma if it had none.
	indent := e.src[strings.LastIndexByte(e.src[:elems[last].start], '\n')+1 : elems[last].start]
	if strings.Trim(indent, " \t") != "" {
		indent = keyIndent + "  "
	}
	if rest := strings.TrimLeft(e.src[tail:], " \t"); !strings.HasPrefix(rest, ",") {
		e.add(elems[last].end, elems[last].end, ",")
	}
	var text string
	for _, w := range p.append {
		text += indent + quote(w) + "," + e.nl
	}
	at := tail + strings.IndexByte(e.src[tail:], '\n') + 1
	e.add(at, at, text)
	return nil
}

// insertAfterLine inserts text after the line that holds offset pos.
func (e *editor) insertAfterLine(pos int, text string) {
	i := strings.IndexByte(e.src[pos:], '\n')
	if i < 0 {
		e.add(len(e.src), len(e.src), e.nl+text)
		return
	}
	e.add(pos+i+1, pos+i+1, text)
}

// indent is the blank space before a statement on its line.
func (e *editor) indent(st stmt) string {
	return e.src[st.line:st.start]
}

func inlineList(vs []string) string {
	q := make([]string, len(vs))
	for i, v := range vs {
		q[i] = quote(v)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// ownLine returns the whole line of an array element (with its comma and
// comment) when nothing else is on it.
func (e *editor) ownLine(el span) (span, bool) {
	ls := strings.LastIndexByte(e.src[:el.start], '\n') + 1
	if strings.Trim(e.src[ls:el.start], " \t") != "" {
		return span{}, false
	}
	nl := strings.IndexByte(e.src[el.end:], '\n')
	if nl < 0 {
		return span{}, false
	}
	rest := strings.TrimLeft(e.src[el.end:el.end+nl], " \t")
	rest = strings.TrimLeft(strings.TrimPrefix(rest, ","), " \t")
	if rest != "" && rest != "\r" && !strings.HasPrefix(rest, "#") {
		return span{}, false
	}
	return span{ls, el.end + nl + 1}, true
}

// mergeSpans unites overlapping ranges.
func mergeSpans(spans []span) []span {
	slices.SortFunc(spans, func(a, b span) int { return cmp.Compare(a.start, b.start) })
	var out []span
	for _, s := range spans {
		if k := len(out) - 1; k >= 0 && s.start <= out[k].end {
			out[k].end = max(out[k].end, s.end)
			continue
		}
		out = append(out, s)
	}
	return out
}
