package propose

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"gitlab.com/hydrafy/hydrafy/bot/pin"
)

// trailerKey marks the proposer's commits and carries the pinned digest.
const trailerKey = "Hydrafy-Digest"

// markerRE finds the digest a merge request description proposes.
var markerRE = regexp.MustCompile(`<!-- hydrafy digest=(sha256:[0-9a-f]{64}) -->`)

// trailerRE finds the digest trailer of a commit message.
var trailerRE = regexp.MustCompile(`(?m)^` + trailerKey + `: (sha256:[0-9a-f]{64})\s*$`)

var unsafeBranchRE = regexp.MustCompile(`[^a-z0-9._-]+`)

// BranchName is the proposal branch for image, named as Renovate names its
// digest updates: prefix + the image with every run of characters git
// refuses or that would nest turned into "-", + "-digest"
// ("hydrafy/" + "nixos/nix" → "hydrafy/nixos-nix-digest").
func BranchName(prefix, image string) string {
	s := unsafeBranchRE.ReplaceAllString(strings.ToLower(image), "-")
	s = strings.ReplaceAll(s, "..", ".")
	s = strings.Trim(s, ".-")
	return prefix + s + "-digest"
}

// legacyBranchName is the proposal branch as hydrafy named it before it
// followed Renovate's naming: without the "-digest" suffix.
func legacyBranchName(prefix, image string) string {
	return strings.TrimSuffix(BranchName(prefix, image), "-digest")
}

// supersededNote is the comment on a proposal of the old branch name when
// the new branch's merge request takes over.
func supersededNote(branch string, iid int64) string {
	return fmt.Sprintf("Superseded by !%d: hydrafy now proposes from the branch `%s`, named as Renovate names its digest updates. "+
		"This merge request is closed; its branch can be deleted.\n", iid, branch)
}

// shortDigest is the digest's first 7 hex digits, as Renovate shows it.
func shortDigest(d string) string {
	d = strings.TrimPrefix(d, "sha256:")
	if len(d) > 7 {
		return d[:7]
	}
	return d
}

// Title is the merge request title for t, in the words of Renovate's
// digest updates: "Update nixos/nix Docker digest to 23ba483", with the
// digest's release when known ("Update nixos/nix:2.25.0 Docker digest to
// 23ba483").
func Title(t Target) string {
	name := t.Image
	if t.VersionTag != "" {
		name += ":" + t.VersionTag
	}
	return fmt.Sprintf("Update %s Docker digest to %s", name, shortDigest(t.Digest))
}

func commitMessage(t Target, files []string) string {
	return fmt.Sprintf("%s\n\nPins every reference of %s in %s to\n%s.\n\n%s: %s\n",
		Title(t), t.Image, strings.Join(files, ", "), t.Digest, trailerKey, t.Digest)
}

// fileChange is one file of a proposal: its path and references before.
type fileChange struct {
	Path    string
	Content string
	Refs    int
	Changed int
	Old     []string // the references' digests before ("" = unpinned)
	Before  string   // the file on the default branch
	// KeptVersions counts references whose version tag stays next to the
	// new digest, because no release tag is known to point at it.
	KeptVersions int
}

// unpinnable is a reference that cannot be pinned, in one file.
type unpinnable struct {
	File string
	pin.Skipped
}

// description is the merge request description: a marker that records the
// digest, a table of what changes, the references left alone, and what
// merging does on the runner hosts.
func description(t Target, files []fileChange, skipped []unpinnable) string {
	var b strings.Builder
	fmt.Fprintf(&b, "<!-- hydrafy digest=%s -->\n", t.Digest)
	fmt.Fprintf(&b, "Pins every reference of `%s` in this project's CI files to the digest that %s points to now.\n\n", t.Image, tagOr(t.Tag, "the tracked tag"))
	b.WriteString("| | |\n|---|---|\n")
	fmt.Fprintf(&b, "| Image | `%s` |\n", t.Image)
	if t.Tag != "" {
		fmt.Fprintf(&b, "| Tag | `%s` |\n", t.Tag)
	}
	if t.VersionTag != "" {
		fmt.Fprintf(&b, "| Version | `%s` |\n", t.VersionTag)
	}
	fmt.Fprintf(&b, "| Digest | %s → `%s` |\n", oldDigests(files), t.Digest)
	if len(t.Platforms) > 0 {
		fmt.Fprintf(&b, "| Platforms | %s |\n", strings.Join(t.Platforms, ", "))
	}
	if !t.Created.IsZero() {
		fmt.Fprintf(&b, "| Image created | %s |\n", t.Created.UTC().Format("2006-01-02 15:04 UTC"))
	}
	if t.NixVersion != "" {
		fmt.Fprintf(&b, "| Nix | %s |\n", t.NixVersion)
	}
	b.WriteString("\n**Files**\n\n")
	kept := 0
	for _, f := range files {
		if f.Changed == f.Refs {
			fmt.Fprintf(&b, "- `%s`: %d %s rewritten\n", f.Path, f.Refs, plural(f.Refs, "reference", "references"))
		} else {
			fmt.Fprintf(&b, "- `%s`: %d of %d references rewritten, the others pin it already\n", f.Path, f.Changed, f.Refs)
		}
		kept += f.KeptVersions
	}
	if t.VersionTag != "" {
		fmt.Fprintf(&b, "\nReferences that carry a version tag now name `%s`, the release tag that points at this digest; `latest` and untagged references keep their form.\n", t.VersionTag)
	} else if kept > 0 {
		fmt.Fprintf(&b, "\nNo release tag of `%s` points at this digest yet, so %d %s %s version tag next to the new digest; the digest is what is pulled.\n",
			t.Image, kept, plural(kept, "reference", "references"), plural(kept, "keeps its", "keep their"))
	}
	if len(skipped) > 0 {
		b.WriteString("\n**Not pinned**\n\n")
		for _, s := range skipped {
			fmt.Fprintf(&b, "- `%s` line %d: `%s`: %s\n", s.File, s.Line, s.Raw, s.Reason)
		}
	}
	b.WriteString("\n**What merging does**\n\n")
	if t.Seeded {
		b.WriteString("Nothing on the runner hosts waits for this merge: before opening this merge request, hydrafy merged this image's " +
			"store paths into the shared `/nix` store (draining the runner first where it had to, so no job was aborted; paths and build results already there stay), " +
			"so this merge request's pipeline already runs with it. After the merge, hydrafy only pins the runners' `config.toml` " +
			"to the new digest where it manages it. Projects that still pin an older digest keep working.\n\n")
	} else {
		b.WriteString("The shared `/nix` store does not hold this image's store yet: this merge request's pipeline may fail until it does. " +
			"After the merge, hydrafy on each runner host stages the image's store, waits until the runner has finished its running jobs (none is aborted), " +
			"merges the new store paths into the shared store — paths and build results already there stay — and restarts the runner. " +
			"Projects that still pin an older digest keep working.\n\n")
	}
	b.WriteString("If this digest is not wanted, close this merge request: hydrafy will not propose it again for this project, " +
		"only a newer one. Commits pushed to this branch by anyone else stop hydrafy from updating it.\n")
	return b.String()
}

func tagOr(tag, fallback string) string {
	if tag == "" {
		return fallback
	}
	return "`" + tag + "`"
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// oldDigests renders the distinct digests the files pin now.
func oldDigests(files []fileChange) string {
	var old []string
	for _, f := range files {
		for _, d := range f.Old {
			if !slices.Contains(old, d) {
				old = append(old, d)
			}
		}
	}
	slices.Sort(old)
	parts := make([]string, 0, len(old))
	for _, d := range old {
		if d == "" {
			parts = append(parts, "unpinned")
		} else {
			parts = append(parts, "`"+d+"`")
		}
	}
	if len(parts) == 0 {
		return "unpinned"
	}
	return strings.Join(parts, ", ")
}

// humanNote is the comment left when a human pushed to the branch.
func humanNote(t Target, branch string) string {
	return fmt.Sprintf("<!-- hydrafy skipped=%s -->\n"+
		"A newer digest of `%s` is available: `%s` (%s).\n\n"+
		"Someone else pushed to `%s`, so hydrafy did not force-push over those commits. "+
		"To get the new digest, either pin it here by hand (`hydrafy pin --image %s --digest %s --write FILE…`) "+
		"or delete the branch: the next pass then recreates it from the default branch and updates this merge request.\n",
		t.Digest, t.Image, t.Digest, Title(t), branch, t.Image, t.Digest)
}

func humanNoteMarker(digest string) string { return "<!-- hydrafy skipped=" + digest + " -->" }

// proposedDigest is the digest a merge request description records.
func proposedDigest(description string) string {
	if m := markerRE.FindStringSubmatch(description); m != nil {
		return m[1]
	}
	return ""
}

// commitDigest is the digest trailer of a commit message.
func commitDigest(message string) string {
	if m := trailerRE.FindStringSubmatch(message); m != nil {
		return m[1]
	}
	return ""
}
