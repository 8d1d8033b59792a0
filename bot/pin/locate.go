package pin

import (
	"errors"
	"fmt"
	"sort"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// text is a source file with its line starts counted the way the YAML
// parser counts them, so that node positions map to byte offsets.
type text struct {
	src   []byte
	lines []int // byte offset of each line's start
}

// newText indexes src. YAML breaks lines at CR LF, CR, LF, NEL, LS and PS,
// and skips a leading UTF-8 byte order mark.
func newText(src []byte) *text {
	t := &text{src: src, lines: []int{0}}
	if len(src) >= 3 && src[0] == 0xEF && src[1] == 0xBB && src[2] == 0xBF {
		t.lines[0] = 3
	}
	for i := t.lines[0]; i < len(src); {
		if n := breakLen(src, i); n > 0 {
			i += n
			t.lines = append(t.lines, i)
			continue
		}
		i++
	}
	return t
}

// breakLen returns the length of the line break at src[i], or 0.
func breakLen(src []byte, i int) int {
	switch {
	case src[i] == '\r' && i+1 < len(src) && src[i+1] == '\n':
		return 2
	case src[i] == '\r' || src[i] == '\n':
		return 1
	case src[i] == 0xC2 && i+1 < len(src) && src[i+1] == 0x85:
		return 2
	case src[i] == 0xE2 && i+2 < len(src) && src[i+1] == 0x80 && (src[i+2] == 0xA8 || src[i+2] == 0xA9):
		return 3
	}
	return 0
}

// offset returns the byte offset of a 1-based line and column, where the
// column counts characters as the YAML parser does.
func (t *text) offset(line, column int) (int, error) {
	if line < 1 || line > len(t.lines) || column < 1 {
		return 0, fmt.Errorf("position %d:%d is outside the file", line, column)
	}
	i := t.lines[line-1]
	for c := 1; c < column; c++ {
		if i >= len(t.src) || breakLen(t.src, i) > 0 {
			return 0, fmt.Errorf("position %d:%d is outside its line", line, column)
		}
		_, n := utf8.DecodeRune(t.src[i:])
		i += n
	}
	return i, nil
}

// line returns the 1-based line that holds byte offset i.
func (t *text) line(i int) int {
	return sort.Search(len(t.lines), func(l int) bool { return t.lines[l] > i })
}

// lineEnd returns the offset of the line break (or end of file) at or
// after i.
func (t *text) lineEnd(i int) int {
	for i < len(t.src) && breakLen(t.src, i) == 0 {
		i++
	}
	return i
}

// span returns the byte range of a scalar's text: the characters between
// its quotes, the content line of a block scalar, or the plain scalar.
func (t *text) span(n *yaml.Node) (start, end int, err error) {
	i, err := t.offset(n.Line, n.Column)
	if err != nil {
		return 0, 0, err
	}
	i = t.skipProperties(i)
	src := t.src
	switch {
	case n.Style&yaml.DoubleQuotedStyle != 0:
		if i >= len(src) || src[i] != '"' {
			return 0, 0, fmt.Errorf("no opening quote at line %d", t.line(i))
		}
		j := i + 1
		for j < len(src) && src[j] != '"' {
			if src[j] == '\\' {
				j++
			}
			j++
		}
		start, end = i+1, j
	case n.Style&yaml.SingleQuotedStyle != 0:
		if i >= len(src) || src[i] != '\'' {
			return 0, 0, fmt.Errorf("no opening quote at line %d", t.line(i))
		}
		j := i + 1
		for j < len(src) && !(src[j] == '\'' && (j+1 >= len(src) || src[j+1] != '\'')) {
			if src[j] == '\'' {
				j++
			}
			j++
		}
		start, end = i+1, j
	case n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0:
		// Only a one-line block scalar can hold a reference: its content
		// is the line after the header, less the indentation.
		j := t.lineEnd(i)
		if j == len(src) {
			return 0, 0, fmt.Errorf("block scalar at line %d has no content", t.line(i))
		}
		j += breakLen(src, j)
		for j < len(src) && src[j] == ' ' {
			j++
		}
		start, end = j, t.lineEnd(j)
	default:
		start, end = i, i+len(n.Value)
	}
	if end > len(src) {
		return 0, 0, fmt.Errorf("scalar at line %d runs past the end of the file", t.line(i))
	}
	if t.line(start) != t.line(end) {
		return 0, 0, errors.New("it spans lines; write it on one line")
	}
	return start, end, nil
}

// skipProperties skips the anchor and tag in front of a node, and the
// blanks, comments and line breaks between them and the node itself.
func (t *text) skipProperties(i int) int {
	src := t.src
	for i < len(src) {
		switch c := src[i]; {
		case c == ' ' || c == '\t':
			i++
		case breakLen(src, i) > 0:
			i += breakLen(src, i)
		case c == '#':
			i = t.lineEnd(i)
		case c == '&':
			i = skipToken(src, i)
		case c == '!' && i+1 < len(src) && src[i+1] == '<':
			for i < len(src) && src[i] != '>' {
				i++
			}
			i++
		case c == '!':
			i = skipToken(src, i)
		default:
			return i
		}
	}
	return i
}

// skipToken skips an anchor or tag: up to a blank, line break or flow
// indicator.
func skipToken(src []byte, i int) int {
	for i < len(src) {
		switch src[i] {
		case ' ', '\t', ',', '[', ']', '{', '}':
			return i
		}
		if breakLen(src, i) > 0 {
			return i
		}
		i++
	}
	return i
}
