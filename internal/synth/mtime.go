package synth

import (
	"golang.org/x/sys/unix"
)

// setMtime sets atime and mtime of p (not following a symlink) to 1, as Nix does.
func setMtime(p string) error {
	ts := []unix.Timespec{{Sec: 1}, {Sec: 1}}
	return unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW)
}
