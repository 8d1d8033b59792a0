package gitlabemu

import (
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// newCommit records a commit with a sha derived from its content; callers
// hold s.mu.
func (s *Server) newCommit(p *project, parents []string, tree map[string][]byte, author, committer *user, msg string) *commit {
	c := &commit{
		Parents: parents, Tree: tree, Message: msg, Time: s.now().UTC(),
		AuthorName: author.Name, AuthorEmail: author.Email,
		CommitterName: committer.Name, CommitterEmail: committer.Email,
	}
	h := sha1.New()
	fmt.Fprintf(h, "%d\x00%s\x00%v\x00%s\x00%s\x00%d\x00", p.ID, msg, parents, c.AuthorEmail, c.Time, s.id("commit"))
	for _, name := range sortedKeys(tree) {
		fmt.Fprintf(h, "%s\x00%s\x00", name, blobID(tree[name]))
	}
	c.ID = hex.EncodeToString(h.Sum(nil))
	p.commits[c.ID] = c
	return c
}

// blobID is git's blob object id of content.
func blobID(content []byte) string {
	h := sha1.New()
	fmt.Fprintf(h, "blob %d\x00", len(content))
	h.Write(content)
	return hex.EncodeToString(h.Sum(nil))
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}

func sortedIDs[V any](m map[int64]V) []int64 {
	return slices.Sorted(maps.Keys(m))
}

// resolve turns a branch name or a commit sha into a commit; callers hold s.mu.
func (p *project) resolve(ref string) *commit {
	if sha, ok := p.branches[ref]; ok {
		return p.commits[sha]
	}
	if c, ok := p.commits[ref]; ok {
		return c
	}
	if len(ref) >= 7 {
		for id, c := range p.commits {
			if strings.HasPrefix(id, ref) {
				return c
			}
		}
	}
	return nil
}

// lastChange is the newest commit reachable from c (first parents) that
// changed file name.
func (p *project) lastChange(c *commit, name string) *commit {
	for {
		if len(c.Parents) == 0 {
			return c
		}
		parent := p.commits[c.Parents[0]]
		old, had := parent.Tree[name]
		cur, has := c.Tree[name]
		if had != has || string(old) != string(cur) {
			return c
		}
		c = parent
	}
}
