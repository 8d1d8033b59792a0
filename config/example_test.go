package config_test

import (
	"bufio"
	"bytes"
	"os"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"gitlab.com/hydrafy/hydrafy/config"
	"gitlab.com/hydrafy/hydrafy/internal/nixtest"
)

const examplePath = "../deploy/hydrafy.example.toml"

// siteSpecific are the keys whose example value is not the default: the
// example marks them so. Every other key must hold its default.
var siteSpecific = []string{
	"gitlab.token_file",
	"gitlab.url",
	"server.resync_token_file",
	"server.webhook_secret_file",
}

// leaf returns the value at a dotted key of a Config (not under projects).
func leaf(c config.Config, key string) any {
	v := reflect.ValueOf(c)
	for _, part := range strings.Split(key, ".") {
		for i := range v.NumField() {
			tag, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("toml"), ",")
			if tag == part {
				v = v.Field(i)
				break
			}
		}
	}
	return v.Interface()
}

func TestTomlKeysWalk(t *testing.T) {
	keys := nixtest.TOMLKeys(config.Config{})
	// A few keys from each kind of nesting, to prove the walk descends.
	for _, want := range []string{"server.listen", "watch.settle", "projects.path", "projects.automerge", "runner.stop_command", "reconcile.schedule"} {
		if !slices.Contains(keys, want) {
			t.Errorf("tomlKeys lacks %q; got %v", want, keys)
		}
	}
	for _, k := range keys {
		if k == "server.webhook_secret" || k == "server.resync_token" || k == "gitlab.token" || k == "runner.token" {
			t.Errorf("tomlKeys lists the secret %q, which has no TOML key", k)
		}
	}
}

func TestExampleDocumentsEveryKey(t *testing.T) {
	data, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	got, err := config.Parse(data)
	if err != nil {
		t.Fatalf("Parse(%s): %v", examplePath, err)
	}

	var raw map[string]any
	md, err := toml.Decode(string(data), &raw)
	if err != nil {
		t.Fatalf("decoding %s: %v", examplePath, err)
	}
	defined := map[string]bool{}
	for _, k := range md.Keys() {
		defined[k.String()] = true
	}
	all := nixtest.TOMLKeys(config.Config{})
	for _, k := range all {
		if !defined[k] {
			t.Errorf("%s does not set %s (document every key with its default)", examplePath, k)
		}
	}

	// Keys outside [[projects]] hold their defaults, except the
	// site-specific ones.
	def := config.Default()
	var differ []string
	for _, k := range all {
		if strings.HasPrefix(k, "projects.") {
			continue
		}
		if !cmp.Equal(leaf(def, k), leaf(got, k), cmpopts.EquateEmpty()) {
			differ = append(differ, k)
		}
	}
	sort.Strings(differ)
	if diff := cmp.Diff(siteSpecific, differ); diff != "" {
		t.Errorf("keys whose example value is not the default (-want +got):\n%s", diff)
	}

	// The second project names only its path: it shows the defaults a
	// project gets.
	if len(got.Projects) < 2 {
		t.Fatalf("example has %d projects, want an entry with every key and one with path only", len(got.Projects))
	}
	bare := got.Projects[len(got.Projects)-1]
	wantBare := config.Project{Path: bare.Path, Files: config.DefaultFiles}
	if diff := cmp.Diff(wantBare, bare); diff != "" {
		t.Errorf("path-only project (-want +got):\n%s", diff)
	}
	full := got.Projects[0]
	if diff := cmp.Diff(config.DefaultFiles, full.Files); diff != "" {
		t.Errorf("first project's files should show the default (-want +got):\n%s", diff)
	}
}

// TestExampleCommentsEveryKey checks that each key line follows a comment
// line, and that each comment of a non-site-specific key states the
// default, so the file reads as reference documentation.
func TestExampleCommentsEveryKey(t *testing.T) {
	data, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	keyLine := regexp.MustCompile(`^([a-z_]+)\s*=`)
	table := ""
	prev := ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "[") {
			table = strings.Trim(line, "[]")
		}
		if m := keyLine.FindStringSubmatch(line); m != nil {
			key := table + "." + m[1]
			if !strings.HasPrefix(prev, "#") {
				t.Errorf("line %d: %s has no comment line above it", n, key)
			}
			if !slices.Contains(siteSpecific, key) && table != "projects" && !strings.Contains(prev, "Default: ") {
				t.Errorf("line %d: the comment of %s does not state its default: %q", n, key, prev)
			}
			if slices.Contains(siteSpecific, key) && !strings.Contains(strings.ToLower(prev), "site-specific") {
				t.Errorf("line %d: the comment of %s does not mark it site-specific: %q", n, key, prev)
			}
		}
		if line != "" {
			prev = line
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
}
