// Package image pulls a nixos/nix-shaped image from a registry and stages
// its Nix store: it resolves the reference, picks the platform, downloads,
// decompresses and extracts the store layers in parallel into a staging dir
// on the live store's filesystem, and checks every store path's NAR hash
// against the image's own Nix db before anything is handed on.
//
// # What is kept
//
// Only nix/store/… and nix/var/nix/db/… are extracted. A leading "/" or
// "./" is stripped first: store layers name their entries absolutely
// (/nix/store/…), the top layer relatively (nix/var/nix/db/…). Everything
// else (etc/, root/, nix/var/nix/profiles, gcroots, …) is dropped.
//
// # Hostile entries
//
// Each kind of entry that could write outside the staging dir, damage a
// store or smuggle metadata in is either refused (the whole stage fails,
// the staging dir is removed) or dropped (the entry is skipped, the rest
// is extracted):
//
//	kind                                              policy
//	a ".." component in a name or hardlink target     fails
//	a name outside nix/store and nix/var/nix/db       dropped
//	  (etc/passwd, /etc/passwd, root/.nix-profile)
//	nix, nix/store, nix/var, nix/var/nix or
//	  nix/var/nix/db as anything but a directory      fails
//	an entry below a symlink or a file                fails
//	  (below a symlinked store path or subdir)
//	a store path name that is not <hash>-<name>       fails
//	a name starting with "." in nix/store (.links)    dropped
//	the same store path in two layers                 fails
//	the same name twice in a store path (not dirs)    fails
//	a hardlink leaving its store path or DIR          fails
//	a hardlink to a missing entry or a non-file       fails
//	character or block devices, fifos, other types    fails
//	setuid or setgid bits                             fails
//	the sticky bit                                    dropped (the bit)
//	foreign owners (uid or gid other than 0)          dropped (normalised to root)
//	whiteouts inside nix/store                        fails
//	symlinks, hardlinks, devices, subdirs in the db   fails
//	absolute symlinks (/nix/store/…, /etc/…)          kept as they are, never followed
//	a store path no image db row declares             fails before it is written
//	a store path past its declared narSize            fails before the entry is written
//	db files of more than 256 MiB                     fails before they are written
//
// Confinement does not rest on these checks alone. The staging dir is
// opened as an os.Root, and its nix/store handle is taken through it;
// below that, every directory handle is opened from its parent's handle
// with O_NOFOLLOW, and every entry is created by a single-name *at call
// (mkdirat, openat with O_CREAT|O_EXCL|O_NOFOLLOW, symlinkat, linkat), so
// no name can climb out of the staging dir or pass through a symlink. The
// extractor also tracks what each store path already holds, so an entry
// below a symlink or a file is refused before any call is made.
//
// Layers may list parents after their children and hardlinks before their
// targets: missing parents are created as directories (and a later header
// for them only confirms them), hardlinks are made when the layer ends.
//
// # The db first
//
// The layers are read from the top down until one holds the db (the top
// layer, for nixos/nix); its rows are checked as a merge checks them
// (store.ReadImagePaths) before any store layer is written, so each store
// path's NAR hash and size are known up front. The filesystem must have
// room for the declared sizes of the paths to stage plus a margin. Bytes of
// paths no row declares are never written, and a path's extraction stops
// as soon as its NAR (added up entry by entry, in any order) would pass its
// declared size: the disk a stage can use is bounded by what the db says.
//
// # Metadata
//
// Store paths get the canonical metadata of a Nix store: files 0444 or
// 0555 (executable when the owner's x bit is set), directories 0555, mtime
// 1, owner root (when running as root). The db keeps its permission bits.
//
// # NAR hashes
//
// A store path's NAR hash is computed while it is extracted when its
// layer lists its entries in NAR order (each directory before its
// contents, names in ascending byte order, as a sorted depth-first walk
// or `tar --sort=name` writes them): file contents are hashed as they
// are written, so nothing is read back. Any other order, a parent without
// its own entry or a hardlink makes the extractor read the finished store
// path back and hash that instead. Either way the hash is checked against
// the image's db before Stage returns.
package image
