package main

import (
	"bytes"
	"fmt"
	"io"
	"strings"
)

// diffContext is the number of unchanged lines around each change.
const diffContext = 3

// edit is one line of an edit script: an unchanged line (' '), a line of
// a only ('-') or a line of b only ('+'), with its index in a or b.
type edit struct {
	kind byte
	a, b int
}

// writeUnifiedDiff writes a unified diff from a to b under git-style
// "--- a/NAME" and "+++ b/NAME" headers. Equal inputs write nothing.
func writeUnifiedDiff(w io.Writer, name string, a, b []byte) error {
	if bytes.Equal(a, b) {
		return nil
	}
	x, y := splitLines(a), splitLines(b)
	edits := diffLines(x, y)
	name = strings.TrimPrefix(name, "/")
	var out strings.Builder
	fmt.Fprintf(&out, "--- a/%s\n+++ b/%s\n", name, name)
	for _, h := range hunks(edits) {
		e := edits[h[0]:h[1]]
		aStart, bStart := e[0].a, e[0].b
		var aLen, bLen int
		for _, ed := range e {
			if ed.kind != '+' {
				aLen++
			}
			if ed.kind != '-' {
				bLen++
			}
		}
		fmt.Fprintf(&out, "@@ -%s +%s @@\n", hunkRange(aStart, aLen), hunkRange(bStart, bLen))
		for _, ed := range e {
			line := ""
			switch ed.kind {
			case '+':
				line = y[ed.b]
			default:
				line = x[ed.a]
			}
			out.WriteByte(ed.kind)
			out.WriteString(line)
			if !strings.HasSuffix(line, "\n") {
				out.WriteString("\n\\ No newline at end of file\n")
			}
		}
	}
	_, err := io.WriteString(w, out.String())
	return err
}

// hunkRange formats a hunk's range: 1-based start and count, the count
// left out when it is 1, and an empty range named by the line before it.
func hunkRange(start, n int) string {
	switch n {
	case 0:
		return fmt.Sprintf("%d,0", start)
	case 1:
		return fmt.Sprintf("%d", start+1)
	}
	return fmt.Sprintf("%d,%d", start+1, n)
}

// hunks groups an edit script into [start, end) ranges of edits that hold
// the changes with diffContext unchanged lines around them; changes that
// close to each other share one hunk.
func hunks(edits []edit) [][2]int {
	var out [][2]int
	for i := 0; i < len(edits); {
		if edits[i].kind == ' ' {
			i++
			continue
		}
		start := max(i-diffContext, 0)
		end := i
		for end < len(edits) {
			if edits[end].kind != ' ' {
				end++
				continue
			}
			// Count the unchanged run; a short one between changes
			// stays inside the hunk.
			run := end
			for run < len(edits) && edits[run].kind == ' ' {
				run++
			}
			if run == len(edits) || run-end > 2*diffContext {
				end = min(end+diffContext, len(edits))
				break
			}
			end = run
		}
		out = append(out, [2]int{start, end})
		i = end
	}
	return out
}

// splitLines splits s after each '\n'; the last line may lack one.
func splitLines(s []byte) []string {
	var lines []string
	for len(s) > 0 {
		i := bytes.IndexByte(s, '\n') + 1
		if i == 0 {
			i = len(s)
		}
		lines = append(lines, string(s[:i]))
		s = s[i:]
	}
	return lines
}

// maxEditDistance bounds the work of diffLines: beyond it, the middle of
// the files is shown as removed and added whole, which is still correct.
const maxEditDistance = 4096

// diffLines returns a shortest edit script from x to y (Myers' algorithm,
// after the common head and tail are set aside).
func diffLines(x, y []string) []edit {
	var edits []edit
	head := 0
	for head < len(x) && head < len(y) && x[head] == y[head] {
		edits = append(edits, edit{' ', head, head})
		head++
	}
	tail := 0
	for tail < len(x)-head && tail < len(y)-head && x[len(x)-1-tail] == y[len(y)-1-tail] {
		tail++
	}
	edits = append(edits, myers(x[head:len(x)-tail], y[head:len(y)-tail], head)...)
	for i := tail; i > 0; i-- {
		edits = append(edits, edit{' ', len(x) - i, len(y) - i})
	}
	return edits
}

// myers diffs x and y, whose first lines are line off of both files.
func myers(x, y []string, off int) []edit {
	n, m := len(x), len(y)
	whole := func() []edit {
		var e []edit
		for i := range n {
			e = append(e, edit{'-', off + i, off})
		}
		for j := range m {
			e = append(e, edit{'+', off + n, off + j})
		}
		return e
	}
	if n == 0 || m == 0 {
		return whole()
	}
	// v[k] is the furthest x reached on diagonal k = x - y; trace keeps
	// v[-d..d] after each step d for the walk back.
	limit := min(n+m, maxEditDistance)
	v := make([]int, 2*limit+3)
	at := func(k int) *int { return &v[k+limit+1] }
	var trace [][]int
	for d := 0; d <= limit; d++ {
		for k := -d; k <= d; k += 2 {
			var xi int
			if k == -d || (k != d && *at(k - 1) < *at(k + 1)) {
				xi = *at(k + 1) // down: insert y
			} else {
				xi = *at(k - 1) + 1 // right: delete x
			}
			yi := xi - k
			for xi < n && yi < m && x[xi] == y[yi] {
				xi, yi = xi+1, yi+1
			}
			*at(k) = xi
			if xi >= n && yi >= m {
				trace = append(trace, append([]int(nil), v[limit+1-d:limit+2+d]...))
				return walkBack(trace, n, m, off)
			}
		}
		trace = append(trace, append([]int(nil), v[limit+1-d:limit+2+d]...))
	}
	return whole()
}

// walkBack turns Myers' trace into the edit script, last edit first, then
// reverses it.
func walkBack(trace [][]int, n, m, off int) []edit {
	var rev []edit
	xi, yi := n, m
	for d := len(trace) - 1; d > 0; d-- {
		prev := trace[d-1] // prev[k+d-1] holds diagonal k of step d-1
		get := func(k int) int { return prev[k+d-1] }
		k := xi - yi
		var pk int
		if k == -d || (k != d && get(k-1) < get(k+1)) {
			pk = k + 1
		} else {
			pk = k - 1
		}
		px := get(pk)
		py := px - pk
		for xi > px && yi > py {
			xi, yi = xi-1, yi-1
			rev = append(rev, edit{' ', off + xi, off + yi})
		}
		if pk == k+1 {
			yi--
			rev = append(rev, edit{'+', off + xi, off + yi})
		} else {
			xi--
			rev = append(rev, edit{'-', off + xi, off + yi})
		}
	}
	for xi > 0 && yi > 0 {
		xi, yi = xi-1, yi-1
		rev = append(rev, edit{' ', off + xi, off + yi})
	}
	for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
		rev[i], rev[j] = rev[j], rev[i]
	}
	return rev
}
