package demo

import (
	"context"
	"os"
	"path/filepath"

	"gitlab.com/hydrafy/hydrafy/internal/fsutil"

	"gitlab.com/hydrafy/hydrafy/internal/synth"
	"gitlab.com/hydrafy/hydrafy/reconciler/store"
)

// BuildCached adds a store path to the live store as a CI job's build
// would: hello-2.12, referencing a library of the first release. It is the
// cache that an upgrade must keep. It returns the path.
func BuildCached(ctx context.Context, e *Env) (string, error) {
	lib := synth.StorePath("base", "lib000-1.0")
	spec := synth.Spec{Seed: "job", Paths: []synth.Path{{
		Name: "hello-2.12",
		Files: []synth.File{
			{Name: "bin/hello", Exec: true, Data: "#!/bin/sh\necho hello from the cache\n"},
			{Name: "lib/dep", Link: lib + "/bin"},
		},
	}}}
	staged, err := os.MkdirTemp(e.StoreDir(), ".job-")
	if err != nil {
		return "", err
	}
	defer fsutil.RemoveTree(staged)
	infos, err := synth.WriteTrees(staged, spec)
	if err != nil {
		return "", err
	}
	for i := range infos {
		if infos[i].NarHash, infos[i].NarSize, err = synth.NarHash(filepath.Join(staged, infos[i].Path)); err != nil {
			return "", err
		}
	}
	// The job's db holds the row of the library it references (already
	// valid in the live store, so the merge leaves it as it is).
	infos[0].Refs = []string{lib}
	libInfo, err := libRow(e, lib)
	if err != nil {
		return "", err
	}
	if err := synth.Register(staged, append(infos, libInfo), 1); err != nil {
		return "", err
	}
	if _, err := store.Merge(ctx, e.StoreDir(), staged, store.MergeOptions{}); err != nil {
		return "", err
	}
	return infos[0].Path, nil
}

// libRow is the registration of lib as the live store's tree hashes it.
func libRow(e *Env, lib string) (synth.Info, error) {
	h, n, err := synth.NarHash(filepath.Join(e.StoreDir(), lib))
	if err != nil {
		return synth.Info{}, err
	}
	return synth.Info{Path: lib, NarHash: h, NarSize: n}, nil
}
