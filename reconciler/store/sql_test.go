package store

import (
	"database/sql"
	"testing"
)

// execSQL runs statements on root's db through a connection of its own.
func execSQL(t testing.TB, root, query string, args ...any) {
	t.Helper()
	db, err := sql.Open("sqlite", dbFile(root))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

func hashOf(t testing.TB, root, path string) string {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+dbFile(root)+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var h string
	if err := db.QueryRow(`select hash from ValidPaths where path = ?`, path).Scan(&h); err != nil {
		t.Fatal(err)
	}
	return h
}

func narSizeOf(t testing.TB, root, path string) int64 {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+dbFile(root)+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int64
	if err := db.QueryRow(`select narSize from ValidPaths where path = ?`, path).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
