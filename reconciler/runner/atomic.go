package runner

import "gitlab.com/hydrafy/hydrafy/internal/fsutil"

// writeAtomic replaces path with data, keeping its mode and owner. A reader
// (the runner re-reads config.toml every 3 s) sees the old or the new file,
// never half of one.
func writeAtomic(path string, data []byte) error { return fsutil.ReplaceFile(path, data) }
