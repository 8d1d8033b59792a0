package runner

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	gitlab "gitlab.com/gitlab-org/api/client-go"
)

var update = flag.Bool("update", false, "rewrite the expected golden files")

const (
	goldenStore = "/srv/hydrafy"
	goldenImage = "nixos/nix@sha256:4444444444444444444444444444444444444444444444444444444444444444"
)

func newConfigRunner(t *testing.T, file, name string, pin bool) *Runner {
	t.Helper()
	r := newRunner(t, Options{Control: "none", ConfigFile: file, Name: name, PinImage: pin}, nil, nil)
	return r
}

// TestConfigureGolden edits testdata/configure/NAME.original.toml and
// compares the result with NAME.expected.toml.
func TestConfigureGolden(t *testing.T) {
	tests := []struct {
		name        string
		runner      string
		pin         bool
		wantChanged bool
	}{
		{name: "one-runner", pin: true, wantChanged: true},
		{name: "several-runners", pin: true, wantChanged: true},
		{name: "named-runner", runner: "nix-gpu", wantChanged: true},
		{name: "stale-multiline", pin: true, wantChanged: true},
		{name: "append-multiline", wantChanged: true},
		{name: "already-right", wantChanged: false},
		{name: "no-volumes-no-image", pin: true, wantChanged: true},
		{name: "no-docker-section", pin: true, wantChanged: true},
		{name: "crlf", pin: true, wantChanged: true},
		{name: "anonymous-and-dup", wantChanged: true},
		{name: "tricky-syntax", pin: true, wantChanged: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			orig, err := os.ReadFile(filepath.Join("testdata", "configure", tt.name+".original.toml"))
			if err != nil {
				t.Fatal(err)
			}
			file := filepath.Join(t.TempDir(), "config.toml")
			if err := os.WriteFile(file, orig, 0o600); err != nil {
				t.Fatal(err)
			}
			image := ""
			if tt.pin {
				image = goldenImage
			}
			r := newConfigRunner(t, file, tt.runner, tt.pin)
			changed, err := r.Configure(goldenStore, image)
			if err != nil {
				t.Fatal(err)
			}
			if changed != tt.wantChanged {
				t.Errorf("changed = %v, want %v", changed, tt.wantChanged)
			}
			got, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			expectedFile := filepath.Join("testdata", "configure", tt.name+".expected.toml")
			if *update {
				if err := os.WriteFile(expectedFile, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(expectedFile)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("config.toml (-want +got):\n%s", diff)
			}
			// A second run finds nothing to do.
			changed, err = r.Configure(goldenStore, image)
			if err != nil || changed {
				t.Errorf("second Configure: changed=%v err=%v, want no change", changed, err)
			}
		})
	}
}

func TestConfigureKeepsModeAndWritesNothingOnError(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "config.toml")
	orig := "[[runners]]\n  name = \"nix\"\n  executor = \"docker\"\n"
	if err := os.WriteFile(file, []byte(orig), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(file, 1234, 5678); err != nil {
		t.Fatal(err)
	}
	if _, err := newConfigRunner(t, file, "absent", false).Configure(goldenStore, ""); err == nil {
		t.Fatal("Configure with an unknown runner name succeeded")
	}
	if _, err := newConfigRunner(t, file, "", false).Configure(goldenStore, ""); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if fi.Mode().Perm() != 0o640 || st.Uid != 1234 || st.Gid != 5678 {
		t.Errorf("mode %v owner %d:%d, want 0640 1234:5678", fi.Mode().Perm(), st.Uid, st.Gid)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("temp files left behind: %v", entries)
	}
}

func TestConfigureRefusesBadInput(t *testing.T) {
	tests := []struct {
		name    string
		config  string
		runner  string
		store   string
		wantErr string
	}{
		{name: "not toml", config: "[[runners]\nname=", wantErr: "parsing"},
		{name: "no runners", config: "concurrent = 1\n", wantErr: "no [[runners]]"},
		{name: "unknown name", config: "[[runners]]\nname = \"a\"\nexecutor = \"docker\"\n", runner: "b", wantErr: `no [[runners]] named "b"`},
		{name: "shell runner named", config: "[[runners]]\nname = \"a\"\nexecutor = \"shell\"\n", runner: "a", wantErr: "not docker"},
		{name: "no docker runner", config: "[[runners]]\nname = \"a\"\nexecutor = \"shell\"\n", wantErr: "no [[runners]] with a docker executor"},
		{name: "dotted docker keys", config: "[[runners]]\nname = \"a\"\nexecutor = \"docker\"\ndocker.image = \"x\"\n", wantErr: "dotted keys"},
		{name: "volumes not strings", config: "[[runners]]\nname = \"a\"\nexecutor = \"docker\"\n[runners.docker]\nvolumes = [1]\n", wantErr: "not a string"},
		{name: "relative store", config: "[[runners]]\nname = \"a\"\nexecutor = \"docker\"\n", store: "srv/nix", wantErr: "not absolute"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "config.toml")
			if err := os.WriteFile(file, []byte(tt.config), 0o600); err != nil {
				t.Fatal(err)
			}
			store := tt.store
			if store == "" {
				store = goldenStore
			}
			changed, err := newConfigRunner(t, file, tt.runner, true).Configure(store, goldenImage)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans lines: %q", err)
			}
			got, _ := os.ReadFile(file)
			if changed || string(got) != tt.config {
				t.Errorf("file changed on error")
			}
		})
	}
}

func TestPlanVolumes(t *testing.T) {
	want := storeMounts("/s")
	tests := []struct {
		name string
		old  []string
		res  []string
	}{
		{"empty", nil, want},
		{"keeps others in order", []string{"/cache", "/a:/b"}, []string{"/cache", "/a:/b", want[0], want[1], want[2]}},
		{"replaces in place", []string{"/x/nix/var/nix/db:/nix/var/nix/db", "/cache", "/x/nix/store:/nix/store/"}, []string{want[1], "/cache", want[0], want[2]}},
		{"drops duplicates", []string{want[0], "/y:/nix/store:ro", want[1], want[1]}, want},
		{"anonymous", []string{"/nix/store"}, want},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.res, planVolumes(tt.old, want).result); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestPreflightChecksConfig(t *testing.T) {
	tests := []struct {
		name, config, runner, wantErr string
	}{
		{"editable", "[[runners]]\nname = \"a\"\nexecutor = \"docker\"\n", "", ""},
		{"unknown runner", "[[runners]]\nname = \"a\"\nexecutor = \"docker\"\n", "b", `no [[runners]] named "b"`},
		{"broken file", "[[runners]\n", "", "parsing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "config.toml")
			if err := os.WriteFile(file, []byte(tt.config), 0o600); err != nil {
				t.Fatal(err)
			}
			r := newRunner(t, Options{Control: "none", ConfigFile: file, Name: tt.runner, ID: 7, PinImage: true}, gitlabClientForPreflight(t), nil)
			err := r.Preflight(testContext(t))
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatal(err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
			}
			got, _ := os.ReadFile(file)
			if string(got) != tt.config {
				t.Error("Preflight changed config.toml")
			}
		})
	}
	if _, err := os.Stat("/nix-store-check"); err == nil {
		t.Error("Preflight created its placeholder store dir")
	}
}

func gitlabClientForPreflight(t *testing.T) *gitlab.Client {
	_, gl := newGitLab(t)
	return gl
}
