package nixtest

import (
	"database/sql"
	"path/filepath"
	"testing"

	_ "modernc.org/sqlite" // the pure-Go sqlite driver
)

// ExecSQL runs query on root's Nix db (root/nix/var/nix/db/db.sqlite):
// the way tests make image dbs that real Nix would never write.
func ExecSQL(t testing.TB, root, query string, args ...any) {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(root, "nix/var/nix/db/db.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

// Deriver returns the deriver of path in root's store (`nix-store -q
// --deriver`), "unknown-deriver" when it has none.
func Deriver(t testing.TB, root, path string) string {
	t.Helper()
	out := Nix(t, nil, "nix-store", "--store", root, "-q", "--deriver", path)
	return string(trimNewline(out))
}

func trimNewline(s string) string {
	for len(s) > 0 && (s[len(s)-1] == '\n' || s[len(s)-1] == '\r') {
		s = s[:len(s)-1]
	}
	return s
}
