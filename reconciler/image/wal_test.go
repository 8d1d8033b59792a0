package image_test

import (
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	_ "modernc.org/sqlite"

	"gitlab.com/hydrafy/hydrafy/internal/nixtest"
	"gitlab.com/hydrafy/hydrafy/internal/synth"
	"gitlab.com/hydrafy/hydrafy/reconciler/image"
)

// TestStageReadsTheWAL: an image whose db has changes still in its
// write-ahead log is read with them.
func TestStageReadsTheWAL(t *testing.T) {
	for _, tc := range []struct {
		name, update, wantErr string
	}{
		{"registration time in the log", "update ValidPaths set registrationTime = 42", ""},
		{"lying hash in the log", "update ValidPaths set hash = 'sha256:" + strings.Repeat("0", 64) + "' where path = ?", "does not match"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			infos := nixtest.Build(t, root, synth.Release(synth.ReleaseOptions{Version: "1", Paths: 4, FilesPerPath: 1}))
			db, err := sql.Open("sqlite", filepath.Join(root, "nix/var/nix/db/db.sqlite"))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			db.SetMaxOpenConns(1)
			for _, q := range []string{"pragma journal_mode = wal", "pragma wal_autocheckpoint = 0"} {
				if _, err := db.Exec(q); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := db.Exec(tc.update, infos[1].Path); err != nil {
				t.Fatal(err)
			}
			if fi, err := os.Stat(filepath.Join(root, "nix/var/nix/db/db.sqlite-wal")); err != nil || fi.Size() == 0 {
				t.Fatalf("no write-ahead log to test with: %v", err)
			}
			img, err := synth.Image(root, synth.ImageOptions{}) // the db with its log, as the image holds it
			if err != nil {
				t.Fatal(err)
			}
			host := nixtest.Registry(t)
			nixtest.PushImage(t, host+"/nixos/nix:1", img)
			st, err := stage(t, host+"/nixos/nix:1", image.Options{})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), infos[1].Path) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q naming %s", err, tc.wantErr, infos[1].Path)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			for _, in := range infos {
				want = append(want, in.Path)
			}
			if diff := cmp.Diff(nixtest.Paths(t, root), nixtest.Verify(t, st.Dir)); diff != "" {
				t.Errorf("paths (-want +got):\n%s", diff)
			}
			if len(st.Paths) != len(want) {
				t.Errorf("staged %d paths, want %d", len(st.Paths), len(want))
			}
		})
	}
}
