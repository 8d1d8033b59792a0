package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
)

// TestHelpAndVersion: help asked for goes to stdout with exit 0; a
// mistake gets one line on stderr that points at --help, exit 2.
func TestHelpAndVersion(t *testing.T) {
	for _, tc := range []struct {
		args      []string
		code      int
		out, errs string // substrings; "" for stderr means empty
		errExact  bool
	}{
		{[]string{"--help"}, 0, "usage: hydrafy COMMAND", "", true},
		{[]string{"-h"}, 0, "hydrafy help COMMAND", "", true},
		{[]string{"help"}, 0, "  check      ", "", true},
		{[]string{"help", "pin"}, 0, "usage: hydrafy pin --image REPO", "", true},
		{[]string{"pin", "--help"}, 0, "-digest string", "", true},
		{[]string{"seed", "-h"}, 0, "usage: hydrafy seed IMAGE --store DIR", "", true},
		{[]string{"check", "--help"}, 0, "POST /resync?watch=1", "", true},
		{[]string{"help", "check"}, 0, "-no-seed", "", true},
		{[]string{"--version"}, 0, "hydrafy ", "", true},
		{[]string{"version"}, 0, "hydrafy ", "", true},
		{[]string{}, 2, "", "usage: hydrafy COMMAND", false},
		{[]string{"help", "frob"}, 2, "", "hydrafy: unknown command \"frob\" (see hydrafy --help)\n", true},
		{[]string{"frob"}, 2, "", "hydrafy: unknown command \"frob\" (see hydrafy --help)\n", true},
		{[]string{"--frob"}, 2, "", "hydrafy: unknown flag --frob (see hydrafy --help)\n", true},
		{[]string{"check", "--frob"}, 2, "", "hydrafy check: flag provided but not defined: -frob (see hydrafy check --help)\n", true},
		{[]string{"serve", "--config"}, 2, "", "hydrafy serve: flag needs an argument: -config (see hydrafy serve --help)\n", true},
		{[]string{"version", "x"}, 2, "", "hydrafy version: unexpected argument \"x\" (see hydrafy version --help)\n", true},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, out, errs := runCmd(tc.args...)
			okErr := strings.Contains(errs, tc.errs)
			if tc.errExact {
				okErr = errs == tc.errs
			}
			if code != tc.code || !strings.Contains(out, tc.out) || !okErr || (tc.out == "" && out != "") {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit %d, stdout with %q, stderr %q", code, out, errs, tc.code, tc.out, tc.errs)
			}
		})
	}
}

// TestRegistryUnreachableWording: a registry that cannot be reached reads
// the same from every command that talks to it.
func TestRegistryUnreachableWording(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	host := strings.TrimPrefix(srv.URL, "http://")
	srv.Close()
	dir := t.TempDir()
	want := "cannot reach registry " + host + ": connect: connection refused\n"
	cfg := writeConfig(t, dir, fmt.Sprintf("image = %q", host+"/nixos/nix"))
	for _, args := range [][]string{
		{"seed", host + "/nixos/nix:2.24.9", "--store", filepath.Join(dir, "store")},
		{"check", "--config", cfg, "--dry-run"},
	} {
		code, _, errs := runCmd(args...)
		if code != 1 || !strings.HasSuffix(errs, want) || strings.Count(errs, "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q; want one line ending in %q", args, code, errs, want)
		}
	}
}
