package runner

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"

	"github.com/BurntSushi/toml"
)

// Configure makes the runner's config.toml mount the live store under
// storeDir into every job ([runners.docker] volumes gets
// "<storeDir>/nix/store:/nix/store:rw",
// "<storeDir>/nix/var/nix/db:/nix/var/nix/db:rw" and
// "<storeDir>/nix/var/nix/gcroots/hydrafy:/nix/var/nix/gcroots/hydrafy:ro",
// replacing older mounts of those container paths and keeping the other
// volumes) and, with
// Options.PinImage and a non-empty image, sets [runners.docker] image. It
// edits the runners named Options.Name, or every docker runner when Name is
// empty. Only the changed values are rewritten; comments and layout stay.
// The result is re-parsed and checked before it replaces the file
// atomically; changed is false and nothing is written when the file was
// already right.
func (r *Runner) Configure(storeDir, image string) (changed bool, err error) {
	if r.opts.ConfigFile == "" {
		return false, errors.New("configuring runner: no runner config file set")
	}
	if !filepath.IsAbs(storeDir) {
		return false, fmt.Errorf("configuring runner: store dir %q is not absolute", storeDir)
	}
	path, err := filepath.EvalSymlinks(r.opts.ConfigFile)
	if err != nil {
		return false, fmt.Errorf("configuring runner: %w", err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return false, fmt.Errorf("configuring runner: %w", err)
	}
	pin := ""
	if r.opts.PinImage {
		pin = image
	}
	out, err := editConfig(string(b), r.opts.Name, storeMounts(storeDir), pin)
	if err != nil {
		return false, fmt.Errorf("configuring runner %s: %w", r.opts.ConfigFile, err)
	}
	if out == string(b) {
		return false, nil
	}
	if err := writeAtomic(path, []byte(out)); err != nil {
		return false, fmt.Errorf("configuring runner: %w", err)
	}
	r.log.Info("runner config updated", "file", r.opts.ConfigFile, "store", storeDir, "image", pin)
	return true, nil
}

// checkConfig makes sure Configure can edit config.toml: it can be read,
// its dir written, and the selected runners found and edited in memory.
func (r *Runner) checkConfig() error {
	path, err := filepath.EvalSymlinks(r.opts.ConfigFile)
	if err != nil {
		return fmt.Errorf("checking runner config: %w", err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("checking runner config: %w", err)
	}
	if err := syscall.Access(filepath.Dir(path), 2 /* W_OK */); err != nil {
		return fmt.Errorf("checking runner config: dir of %s not writable: %w", path, err)
	}
	image := ""
	if r.opts.PinImage {
		image = "nixos/nix@sha256:" + strings.Repeat("0", 64)
	}
	if _, err := editConfig(string(b), r.opts.Name, storeMounts("/nix-store-check"), image); err != nil {
		return fmt.Errorf("checking runner config %s: %w", r.opts.ConfigFile, err)
	}
	return nil
}

// editConfig returns src with the selected runners' docker volumes holding
// mounts and, when image is not empty, their docker image set to it.
func editConfig(src, name string, mounts []string, image string) (string, error) {
	var orig map[string]any
	if _, err := toml.Decode(src, &orig); err != nil {
		return "", fmt.Errorf("parsing: %w", err)
	}
	runners, err := runnerTables(orig)
	if err != nil {
		return "", err
	}
	stmts, err := scanTOML(src)
	if err != nil {
		return "", fmt.Errorf("scanning: %w", err)
	}
	blocks := runnerBlocks(stmts)
	if len(blocks) != len(runners) {
		return "", fmt.Errorf("found %d [[runners]] headers but %d runners: unsupported layout", len(blocks), len(runners))
	}
	selected, err := selectRunners(runners, name)
	if err != nil {
		return "", err
	}
	e := &editor{src: src, stmts: stmts, nl: "\n"}
	if strings.Contains(src, "\r\n") {
		e.nl = "\r\n"
	}
	for _, i := range selected {
		want, err := e.runner(blocks[i], runners[i], mounts, image)
		if err != nil {
			return "", fmt.Errorf("runner %q: %w", runners[i]["name"], err)
		}
		setDocker(runners[i], want, image)
	}
	out := e.apply()
	var got map[string]any
	if _, err := toml.Decode(out, &got); err != nil {
		return "", fmt.Errorf("edited file does not parse (nothing written): %w", err)
	}
	// orig now holds the intended values: everything else must be equal.
	if !reflect.DeepEqual(orig, got) {
		return "", errors.New("edited file does not hold the intended values (nothing written)")
	}
	return out, nil
}

func runnerTables(m map[string]any) ([]map[string]any, error) {
	v, ok := m["runners"]
	if !ok {
		return nil, errors.New("no [[runners]] in the file")
	}
	rs, ok := v.([]map[string]any)
	if !ok {
		return nil, errors.New("runners is not an array of tables")
	}
	return rs, nil
}

// selectRunners picks the runners named name, or every docker runner.
func selectRunners(runners []map[string]any, name string) ([]int, error) {
	var sel []int
	for i, r := range runners {
		n, _ := r["name"].(string)
		exec, _ := r["executor"].(string)
		docker := strings.HasPrefix(exec, "docker")
		switch {
		case name != "" && n == name && !docker:
			return nil, fmt.Errorf("runner %q uses executor %q, not docker", n, exec)
		case name != "" && n == name, name == "" && docker:
			sel = append(sel, i)
		}
	}
	if len(sel) == 0 {
		if name != "" {
			return nil, fmt.Errorf("no [[runners]] named %q", name)
		}
		return nil, errors.New("no [[runners]] with a docker executor")
	}
	return sel, nil
}

// setDocker records the intended values in a decoded runner table.
func setDocker(runner map[string]any, volumes []string, image string) {
	d, _ := runner["docker"].(map[string]any)
	if d == nil {
		d = map[string]any{}
		runner["docker"] = d
	}
	vs := make([]any, len(volumes))
	for i, v := range volumes {
		vs[i] = v
	}
	d["volumes"] = vs
	if image != "" {
		d["image"] = image
	}
}

// stringList reads a decoded TOML array of strings.
func stringList(v any) ([]string, error) {
	if v == nil {
		return nil, nil
	}
	a, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("volumes is %T, not an array", v)
	}
	out := make([]string, len(a))
	for i, x := range a {
		s, ok := x.(string)
		if !ok {
			return nil, fmt.Errorf("volumes[%d] is %T, not a string", i, x)
		}
		out[i] = s
	}
	return out, nil
}

// block is where one [[runners]] entry lies among the statements.
type block struct {
	header       int   // its [[runners]] header
	last         int   // its last statement
	dockerHeader int   // its [runners.docker] header, -1 if none
	dockerKeys   []int // the key/values of that section
	dottedDocker bool  // docker set with a dotted key or inline table
}

func runnerBlocks(stmts []stmt) []*block {
	var blocks []*block
	var cur *block
	section := ""
	for i, st := range stmts {
		if st.header {
			switch {
			case st.array && slices.Equal(st.path, []string{"runners"}):
				cur = &block{header: i, dockerHeader: -1}
				blocks = append(blocks, cur)
				section = "runner"
			case cur != nil && st.path[0] == "runners":
				section = "other"
				if !st.array && slices.Equal(st.path, []string{"runners", "docker"}) {
					section = "docker"
					cur.dockerHeader = i
				}
			default:
				cur = nil
			}
		}
		if cur == nil {
			continue
		}
		cur.last = i
		if st.header {
			continue
		}
		switch section {
		case "runner":
			cur.dottedDocker = cur.dottedDocker || st.path[0] == "docker"
		case "docker":
			cur.dockerKeys = append(cur.dockerKeys, i)
		}
	}
	return blocks
}
