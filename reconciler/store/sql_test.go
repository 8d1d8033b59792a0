package store

import (
	"database/sql"
	"fmt"
	"testing"

	"gitlab.com/hydrafy/hydrafy/internal/nixtest"
)

func hashOf(t testing.TB, root, path string) string {
	t.Helper()
	var h string
	nixtest.QueryRow(t, root, `select hash from ValidPaths where path = ?`, []any{path}, &h)
	return h
}

func narSizeOf(t testing.TB, root, path string) int64 {
	t.Helper()
	var n int64
	nixtest.QueryRow(t, root, `select narSize from ValidPaths where path = ?`, []any{path}, &n)
	return n
}

// dbRows returns the ValidPaths row of path as strings, id first.
func dbRows(t testing.TB, root, path string) []string {
	t.Helper()
	var id, reg int64
	var hash string
	var deriver, sigs, ca sql.NullString
	var narSize, ultimate sql.NullInt64
	nixtest.QueryRow(t, root, `select id, hash, registrationTime, deriver, narSize, ultimate, sigs, ca from ValidPaths where path = ?`, []any{path},
		&id, &hash, &reg, &deriver, &narSize, &ultimate, &sigs, &ca)
	return []string{fmt.Sprint(id), hash, fmt.Sprint(reg), fmt.Sprint(deriver), fmt.Sprint(narSize), fmt.Sprint(ultimate), fmt.Sprint(sigs), fmt.Sprint(ca)}
}

// derivationOutputs lists "drv id path" of every DerivationOutputs row.
func derivationOutputs(t testing.TB, root string) []string {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+dbFile(root)+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`select v.path, d.id, d.path from DerivationOutputs d join ValidPaths v on v.id = d.drv order by 1, 2`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var a, b, c string
		if err := rows.Scan(&a, &b, &c); err != nil {
			t.Fatal(err)
		}
		out = append(out, a+" "+b+" "+c)
	}
	return out
}
