package nixtest

import (
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"gitlab.com/hydrafy/hydrafy/internal/synth"
)

// ResultOptions shape a build result that a CI job leaves in the shared
// store.
type ResultOptions struct {
	// Refs are store paths it references; they must be valid in the store.
	Refs []string
	// Age is how long ago it was registered (0: now).
	Age time.Duration
}

// AddResult adds a build result called name to root's store as a job's
// build lands in the shared store: a small tree that mentions each of
// o.Refs, registered by Nix (`nix-store --load-db`) with those references,
// o.Age ago. Without references it is added as `nix-store --add` adds a
// source. It returns the store path.
func AddResult(t testing.TB, root, name string, o ResultOptions) string {
	t.Helper()
	var path string
	if len(o.Refs) == 0 {
		src := filepath.Join(t.TempDir(), name)
		writeResult(t, src, name, nil)
		path = Add(t, root, src)
	} else {
		path = synth.StorePath("result:"+strings.Join(o.Refs, " "), name)
		dir := filepath.Join(root, path)
		writeResult(t, dir, name, o.Refs)
		nar := Nix(t, nil, "nix-store", "--dump", dir)
		sum := sha256.Sum256([]byte(nar))
		LoadDB(t, root, []synth.Info{{Path: path, NarHash: "sha256:" + hex.EncodeToString(sum[:]), NarSize: int64(len(nar)), Refs: o.Refs}})
		if out, err := Run(nil, "chmod", "-R", "a-w", dir); err != nil {
			t.Fatalf("chmod %s: %v %s", dir, err, out)
		}
	}
	if o.Age > 0 {
		ExecSQL(t, root, `update ValidPaths set registrationTime = ? where path = ?`, time.Now().Add(-o.Age).Unix(), path)
	}
	return path
}

// writeResult writes bin/NAME, a script that mentions refs, at dir.
func writeResult(t testing.TB, dir, name string, refs []string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	script := "#!/bin/sh\necho " + name + "\n"
	for _, r := range refs {
		script += "# " + r + "\n"
	}
	if err := os.WriteFile(filepath.Join(dir, "bin", name), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
}

// Registered returns when path was registered in root's db.
func Registered(t testing.TB, root, path string) time.Time {
	t.Helper()
	var reg int64
	QueryRow(t, root, `select registrationTime from ValidPaths where path = ?`, []any{path}, &reg)
	return time.Unix(reg, 0)
}

// QueryRow runs query with args on root's Nix db, read-only, and scans
// its one row into dest; it fails the test when there is none.
func QueryRow(t testing.TB, root, query string, args []any, dest ...any) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(root, "nix/var/nix/db/db.sqlite")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.QueryRow(query, args...).Scan(dest...); err != nil {
		t.Fatalf("%s %v: %v", query, args, err)
	}
}

// RefsOf returns the references of paths in root, as Nix reports them
// (`nix path-info --json`, one call), each list sorted.
func RefsOf(t testing.TB, root string, paths []string) map[string][]string {
	t.Helper()
	out := Nix(t, nil, "nix", append([]string{"path-info", "--store", root, "--json"}, paths...)...)
	var infos []struct {
		Path       string   `json:"path"`
		References []string `json:"references"`
	}
	if err := json.Unmarshal([]byte(out), &infos); err != nil {
		t.Fatalf("parsing nix path-info --json: %v", err)
	}
	m := map[string][]string{}
	for _, in := range infos {
		m[in.Path] = slices.Sorted(slices.Values(in.References))
	}
	return m
}
