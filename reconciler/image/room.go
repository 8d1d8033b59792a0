package image

import (
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"

	"gitlab.com/hydrafy/hydrafy/reconciler/store"
)

// roomMargin is the free space a stage leaves beyond the declared NAR
// sizes of the paths it writes: file system blocks and inodes the NAR does
// not count, and room for the jobs that share the disk.
const roomMargin = 64 << 20

// checkRoom refuses a stage when the filesystem of dir has less free space
// than the declared NAR sizes of the paths to stage (all rows but those of
// skipped layers) plus roomMargin.
func checkRoom(dir string, rows map[string]store.PathInfo, skipped map[string]bool) error {
	var need int64
	for p, info := range rows {
		if !skipped[p] {
			need += info.NarSize
		}
	}
	var fs unix.Statfs_t
	if err := unix.Statfs(dir, &fs); err != nil {
		return fmt.Errorf("checking the free space in %s: %w", dir, err)
	}
	free := int64(fs.Bavail) * fs.Bsize
	if need+roomMargin > free {
		return noRoom(fmt.Sprintf("not enough free space in %s: the image's store paths need %s (their declared NAR sizes) plus %s to spare, the filesystem has %s free", dir, mb(need), mb(roomMargin), mb(free)))
	}
	return nil
}

// noRoom is a stage refused for want of space. It is a full disk
// (errors.Is syscall.ENOSPC) as one met while writing is: the daemon then
// collects garbage and stages again.
type noRoom string

func (e noRoom) Error() string { return string(e) }

// Is reports that the refusal is ENOSPC.
func (e noRoom) Is(target error) bool { return target == syscall.ENOSPC }
