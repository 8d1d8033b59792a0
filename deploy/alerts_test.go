package deploy_test

import (
	"os"
	"os/exec"
	"regexp"
	"testing"

	"gitlab.com/hydrafy/hydrafy/server"
)

// promtool returns the path of Prometheus's promtool. It fails the test
// when promtool is missing: ./scripts/test installs it (Debian's prometheus).
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool not found: install Debian's prometheus package (./scripts/test does)")
	}
	return p
}

// TestAlertRules: the alert rules load in Prometheus and fire, or stay
// quiet, as their unit tests say.
func TestAlertRules(t *testing.T) {
	pt := promtool(t)
	for _, args := range [][]string{
		{"check", "rules", "hydrafy.rules.yml"},
		{"test", "rules", "hydrafy.rules.test.yml"},
	} {
		out, err := exec.Command(pt, args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %v: %v\n%s", args, err, out)
		}
	}
}

// TestAlertRulesNameExportedMetrics: every hydrafy metric the rules use is
// one the daemon exports, so a renamed metric cannot silence an alert.
func TestAlertRulesNameExportedMetrics(t *testing.T) {
	m := server.NewMetrics()
	m.WatchStore(t.TempDir())
	m.SetBuildInfo("test")
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	exported := map[string]bool{}
	for _, mf := range mfs {
		exported[mf.GetName()] = true
	}
	rules, err := os.ReadFile("hydrafy.rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	used := regexp.MustCompile(`hydrafy_[a-z_]+`).FindAllString(string(rules), -1)
	if len(used) == 0 {
		t.Fatal("the rules use no hydrafy metric")
	}
	for _, name := range used {
		if !exported[name] {
			t.Errorf("the rules use %s, which the daemon does not export", name)
		}
	}
}
