package seed_test

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// readmeTable is the heading of README's table of what is refused.
const readmeTable = "### What hydrafy refuses, and why"

// TestReadmeListsEachRefusal keeps README's table of refusals in step with
// the tests that prove them: every refusal tested is a row, every row is
// tested.
func TestReadmeListsEachRefusal(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), readmeTable+"\n")
	if !ok {
		t.Fatalf("README.md has no %q section", readmeTable)
	}
	if i := strings.Index(section, "\n#"); i >= 0 {
		section = section[:i]
	}
	var rows []string
	for _, line := range strings.Split(section, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 4 || strings.HasPrefix(strings.TrimSpace(cells[1]), "---") {
			continue
		}
		rows = append(rows, strings.TrimSpace(cells[1]))
	}
	rows = rows[1:] // the header
	var tested []string
	x := "/nix/store/" + strings.Repeat("x", 40) // any path: only the labels count
	for _, r := range rowRefusals(rowWorld{pkg: x, long: x, chars: x, dotted: x, drv: x}) {
		tested = append(tested, r.refusal)
	}
	for _, r := range sizeRefusals(fixture{}) {
		tested = append(tested, r.refusal)
	}
	slices.Sort(rows)
	slices.Sort(tested)
	if diff := cmp.Diff(tested, rows); diff != "" {
		t.Errorf("README's refusals differ from the tested ones (-tested +README):\n%s", diff)
	}
}
