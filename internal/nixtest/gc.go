package nixtest

import (
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite" // the db of a test store, for SetRegistered

	"gitlab.com/hydrafy/hydrafy/internal/synth"
)

// AddBuild registers a build result in root's store as a job's build
// would leave it: a path named name (hashed with seed "build") whose file
// "out" names refs, registered with those references by Nix (--load-db).
// It returns the store path.
func AddBuild(t testing.TB, root, name string, refs ...string) string {
	t.Helper()
	sp := synth.StorePath("build", name)
	dir := filepath.Join(root, sp)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	body := name + "\n" + strings.Join(refs, "\n") + "\n"
	if err := os.WriteFile(filepath.Join(dir, "out"), []byte(body), 0o444); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o555); err != nil {
		t.Fatal(err)
	}
	nar := Nix(t, nil, "nix-store", "--dump", dir)
	sum := sha256.Sum256([]byte(nar))
	LoadDB(t, root, []synth.Info{{Path: sp, NarHash: "sha256:" + hex.EncodeToString(sum[:]), NarSize: int64(len(nar)), Refs: refs}})
	return sp
}

// SetRegistered sets the registration time of path in root's db, as if it
// had been built at that time.
func SetRegistered(t testing.TB, root, path string, at time.Time) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(root, "nix/var/nix/db/db.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	res, err := db.Exec(`update ValidPaths set registrationTime = ? where path = ?`, at.Unix(), path)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		t.Fatalf("setting the registration time of %s: %d rows", path, n)
	}
}

// Closure returns the closure of paths in root's store as Nix computes it
// (`nix-store -qR`), sorted.
func Closure(t testing.TB, root string, paths ...string) []string {
	t.Helper()
	if len(paths) == 0 {
		return []string{}
	}
	out := strings.Fields(Nix(t, nil, "nix-store", append([]string{"--store", root, "-qR"}, paths...)...))
	sort.Strings(out)
	return out
}

// JobGC runs Nix's garbage collector on the store under root as a CI job
// sees it: the shared nix/store and db, but a state dir of its own whose
// only GC roots are a copy of rootsDir at gcroots/hydrafy (what the
// runner's read-only mount shows the job); rootsDir "" gives the job no
// roots at all. It returns the collector's output.
func JobGC(t testing.TB, root, rootsDir string) string {
	t.Helper()
	state := filepath.Join(t.TempDir(), "state")
	if err := os.MkdirAll(filepath.Join(state, "gcroots"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(root, "nix/var/nix/db"), filepath.Join(state, "db")); err != nil {
		t.Fatal(err)
	}
	if rootsDir != "" {
		if out, err := exec.Command("cp", "-a", rootsDir, filepath.Join(state, "gcroots", "hydrafy")).CombinedOutput(); err != nil {
			t.Fatalf("copying the roots: %v\n%s", err, out)
		}
	}
	store := "local?real=" + filepath.Join(root, "nix/store") + "&state=" + state
	return Nix(t, nil, "nix-collect-garbage", "--store", store)
}
