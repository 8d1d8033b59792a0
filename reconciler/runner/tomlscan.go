package runner

import (
	"fmt"
	"strconv"
	"strings"
)

// The config.toml edit is text-preserving: a small TOML scanner finds where
// each table header and key/value statement is, so that only the bytes of
// the values being changed are rewritten and every comment and layout
// choice of the user stays.

// span is a byte range [start, end) of the file.
type span struct{ start, end int }

// stmt is one statement of a TOML file: a table header or a key/value pair.
type stmt struct {
	header bool     // [table] or [[array]]
	array  bool     // [[array]]
	path   []string // header: the table path; key/value: the key (dotted keys have several parts)
	line   int      // offset of the line the statement starts on
	start  int      // offset of its first byte
	end    int      // offset just past the header or the value
	val    span     // key/value: the value
	elems  []span   // key/value with an array value: its elements
}

// scanTOML splits src into statements. It understands TOML's lexical
// structure (strings of all four kinds, arrays, inline tables, comments)
// but leaves validation to the real parser.
func scanTOML(src string) ([]stmt, error) {
	s := &tscan{src: src}
	var out []stmt
	for {
		s.skipBlank(true)
		if s.pos >= len(s.src) {
			return out, nil
		}
		st := stmt{start: s.pos, line: strings.LastIndexByte(src[:s.pos], '\n') + 1}
		var err error
		if s.src[s.pos] == '[' {
			err = s.header(&st)
		} else {
			err = s.keyval(&st)
		}
		if err != nil {
			return nil, err
		}
		st.end = s.pos
		s.skipBlank(false)
		if s.pos < len(s.src) && s.src[s.pos] != '\n' && !strings.HasPrefix(s.src[s.pos:], "\r\n") {
			return nil, s.errorf("expected the end of the line")
		}
		out = append(out, st)
	}
}

type tscan struct {
	src string
	pos int
}

func (s *tscan) errorf(format string, args ...any) error {
	line := strings.Count(s.src[:s.pos], "\n") + 1
	return fmt.Errorf("line %d: %s", line, fmt.Sprintf(format, args...))
}

// skipBlank skips spaces, tabs and comments, and newlines too when nl.
func (s *tscan) skipBlank(nl bool) {
	for s.pos < len(s.src) {
		switch c := s.src[s.pos]; {
		case c == ' ' || c == '\t':
			s.pos++
		case c == '#':
			for s.pos < len(s.src) && s.src[s.pos] != '\n' {
				s.pos++
			}
		case nl && (c == '\n' || c == '\r'):
			s.pos++
		default:
			return
		}
	}
}

func (s *tscan) header(st *stmt) error {
	st.header = true
	s.pos++
	if s.pos < len(s.src) && s.src[s.pos] == '[' {
		st.array = true
		s.pos++
	}
	path, err := s.keyPath()
	if err != nil {
		return err
	}
	st.path = path
	closing := "]"
	if st.array {
		closing = "]]"
	}
	if !strings.HasPrefix(s.src[s.pos:], closing) {
		return s.errorf("expected %q closing the table header", closing)
	}
	s.pos += len(closing)
	return nil
}

func (s *tscan) keyval(st *stmt) error {
	path, err := s.keyPath()
	if err != nil {
		return err
	}
	st.path = path
	if s.pos >= len(s.src) || s.src[s.pos] != '=' {
		return s.errorf("expected '=' after key %q", strings.Join(path, "."))
	}
	s.pos++
	s.skipBlank(false)
	st.val.start = s.pos
	elems, err := s.value()
	if err != nil {
		return err
	}
	st.val.end = s.pos
	st.elems = elems
	return nil
}

// keyPath reads a dotted key and the blanks after it.
func (s *tscan) keyPath() ([]string, error) {
	var path []string
	for {
		s.skipBlank(false)
		k, err := s.simpleKey()
		if err != nil {
			return nil, err
		}
		path = append(path, k)
		s.skipBlank(false)
		if s.pos < len(s.src) && s.src[s.pos] == '.' {
			s.pos++
			continue
		}
		return path, nil
	}
}

func (s *tscan) simpleKey() (string, error) {
	start := s.pos
	if s.pos < len(s.src) && (s.src[s.pos] == '"' || s.src[s.pos] == '\'') {
		if err := s.str(); err != nil {
			return "", err
		}
		raw := s.src[start:s.pos]
		if raw[0] == '\'' {
			return raw[1 : len(raw)-1], nil
		}
		k, err := strconv.Unquote(raw)
		if err != nil {
			return "", s.errorf("unsupported escape in key %s", raw)
		}
		return k, nil
	}
	for s.pos < len(s.src) && isBare(s.src[s.pos]) {
		s.pos++
	}
	if s.pos == start {
		return "", s.errorf("expected a key")
	}
	return s.src[start:s.pos], nil
}

func isBare(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// value reads one value; for an array it returns its elements' spans.
func (s *tscan) value() ([]span, error) {
	if s.pos >= len(s.src) {
		return nil, s.errorf("expected a value")
	}
	switch s.src[s.pos] {
	case '"', '\'':
		return nil, s.str()
	case '[':
		return s.array()
	case '{':
		return nil, s.inlineTable()
	}
	start := s.pos
	for s.pos < len(s.src) && !strings.ContainsRune(" \t\r\n,]}#", rune(s.src[s.pos])) {
		s.pos++
	}
	// A date and a time may be separated by a space.
	if s.pos-start == 10 && s.src[start+4] == '-' && s.pos+1 < len(s.src) && s.src[s.pos] == ' ' && s.src[s.pos+1] >= '0' && s.src[s.pos+1] <= '9' {
		s.pos++
		for s.pos < len(s.src) && !strings.ContainsRune(" \t\r\n,]}#", rune(s.src[s.pos])) {
			s.pos++
		}
	}
	if s.pos == start {
		return nil, s.errorf("expected a value")
	}
	return nil, nil
}

func (s *tscan) array() ([]span, error) {
	s.pos++
	var elems []span
	for {
		s.skipBlank(true)
		if s.pos >= len(s.src) {
			return nil, s.errorf("unterminated array")
		}
		if s.src[s.pos] == ']' {
			s.pos++
			return elems, nil
		}
		start := s.pos
		if _, err := s.value(); err != nil {
			return nil, err
		}
		elems = append(elems, span{start, s.pos})
		s.skipBlank(true)
		if s.pos < len(s.src) && s.src[s.pos] == ',' {
			s.pos++
			continue
		}
		if s.pos < len(s.src) && s.src[s.pos] == ']' {
			s.pos++
			return elems, nil
		}
		return nil, s.errorf("expected ',' or ']' in array")
	}
}

func (s *tscan) inlineTable() error {
	s.pos++
	for {
		s.skipBlank(true)
		if s.pos < len(s.src) && s.src[s.pos] == '}' {
			s.pos++
			return nil
		}
		if _, err := s.keyPath(); err != nil {
			return err
		}
		if s.pos >= len(s.src) || s.src[s.pos] != '=' {
			return s.errorf("expected '=' in inline table")
		}
		s.pos++
		s.skipBlank(false)
		if _, err := s.value(); err != nil {
			return err
		}
		s.skipBlank(true)
		if s.pos < len(s.src) && s.src[s.pos] == ',' {
			s.pos++
			continue
		}
		if s.pos < len(s.src) && s.src[s.pos] == '}' {
			s.pos++
			return nil
		}
		return s.errorf("expected ',' or '}' in inline table")
	}
}

// str reads a string of any of TOML's four kinds.
func (s *tscan) str() error {
	q := s.src[s.pos]
	if strings.HasPrefix(s.src[s.pos:], strings.Repeat(string(q), 3)) {
		s.pos += 3
		for s.pos < len(s.src) {
			if q == '"' && s.src[s.pos] == '\\' {
				s.pos += 2
				continue
			}
			if strings.HasPrefix(s.src[s.pos:], strings.Repeat(string(q), 3)) {
				s.pos += 3
				// Up to two more quotes belong to the content.
				for i := 0; i < 2 && s.pos < len(s.src) && s.src[s.pos] == q; i++ {
					s.pos++
				}
				return nil
			}
			s.pos++
		}
		return s.errorf("unterminated multi-line string")
	}
	s.pos++
	for s.pos < len(s.src) && s.src[s.pos] != '\n' {
		switch s.src[s.pos] {
		case '\\':
			if q == '"' {
				s.pos++
			}
		case q:
			s.pos++
			return nil
		}
		s.pos++
	}
	return s.errorf("unterminated string")
}

// quote writes s as a TOML basic string.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
