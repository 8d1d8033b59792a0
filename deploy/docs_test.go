package deploy_test

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gitlab.com/hydrafy/hydrafy/config"
	"gitlab.com/hydrafy/hydrafy/internal/nixtest"
)

// documents are the files of this directory that name config keys.
var documents = []string{"INSTALL.md", "Dockerfile", "hydrafy.service", "runner-config.toml", "hydrafy.example.toml",
	"hydrafy.bot.toml", "hydrafy.reconciler.toml"}

// keyRef finds "section.key" in prose: not part of a host name, a file
// name or a longer dotted word.
var keyRef = regexp.MustCompile(`(?:^|[^\w./-])((?:server|gitlab|bot|watch|propose|projects|store|runner|reconcile)\.[a-z_]+)(?:[^\w./-]|\.\s|\.$|$)`)

// TestDocumentsNameRealKeys checks every config key that the deployment
// files mention against config.Config, so a renamed key cannot leave a
// stale instruction behind.
func TestDocumentsNameRealKeys(t *testing.T) {
	keys := nixtest.TOMLKeys(config.Config{})
	seen := 0
	for _, doc := range documents {
		data, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(data), "\n") {
			for _, m := range keyRef.FindAllStringSubmatch(line, -1) {
				seen++
				if !slices.Contains(keys, m[1]) {
					t.Errorf("%s:%d names %s, which is not a config key", doc, i+1, m[1])
				}
			}
		}
	}
	t.Logf("%d key references checked", seen)
	if seen < 20 {
		t.Errorf("found only %d key references in %v; the pattern no longer matches the prose", seen, documents)
	}
}

// TestDocumentsNameShippedFiles checks that every deploy/ file the documents
// tell the reader to use is in this directory. The runner's drain drop-in is
// maintained and tested with the runner control, so it is not required here.
func TestDocumentsNameShippedFiles(t *testing.T) {
	elsewhere := []string{"gitlab-runner-drain.conf"}
	ref := regexp.MustCompile(`deploy/([\w.-]*\w)`)
	for _, doc := range documents {
		data, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ref.FindAllStringSubmatch(string(data), -1) {
			if slices.Contains(elsewhere, m[1]) {
				continue
			}
			if _, err := os.Stat(m[1]); err != nil {
				t.Errorf("%s refers to deploy/%s: %v", doc, m[1], err)
			}
		}
	}
}

// TestDropInNamedAlike: every document that tells where to install the
// runner's drain drop-in names the same file, the one shipped.
func TestDropInNamedAlike(t *testing.T) {
	path := regexp.MustCompile(`\.d/([\w.-]+\.conf)`)
	seen := 0
	for _, doc := range append(slices.Clone(documents), "../README.md", "../reconciler/runner/systemd.go") {
		data, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range path.FindAllStringSubmatch(string(data), -1) {
			seen++
			if m[1] != "gitlab-runner-drain.conf" {
				t.Errorf("%s installs the drop-in as %s, not gitlab-runner-drain.conf", doc, m[1])
			}
		}
	}
	if seen < 3 {
		t.Errorf("found the drop-in's install path %d times; the pattern no longer matches", seen)
	}
}
