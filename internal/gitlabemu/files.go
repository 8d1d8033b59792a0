package gitlabemu

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"path"
	"strconv"
)

func init() {
	handle(http.MethodGet, "projects/:id/repository/files/:file", (*Server).getFile)
	handle(http.MethodGet, "projects/:id/repository/files/:file/raw", (*Server).getRawFile)
}

// fileJSON is GitLab's repository file entity.
type fileJSON struct {
	FileName        string `json:"file_name"`
	FilePath        string `json:"file_path"`
	Size            int    `json:"size"`
	Encoding        string `json:"encoding"`
	Content         string `json:"content"`
	ContentSHA256   string `json:"content_sha256"`
	Ref             string `json:"ref"`
	BlobID          string `json:"blob_id"`
	CommitID        string `json:"commit_id"`
	LastCommitID    string `json:"last_commit_id"`
	ExecuteFilemode bool   `json:"execute_filemode"`
}

// file resolves :id, ref and :file, answering 400/404 itself.
func (s *Server) file(c *call, ref string) (*project, *commit, []byte, bool) {
	p := s.project(c)
	if p == nil {
		return nil, nil, nil, false
	}
	if ref == "" {
		c.json(http.StatusBadRequest, map[string]string{"error": "ref is missing"})
		return nil, nil, nil, false
	}
	cm := p.resolve(ref)
	if cm == nil {
		c.error(http.StatusNotFound, "404 Commit Not Found")
		return nil, nil, nil, false
	}
	content, ok := cm.Tree[c.params["file"]]
	if !ok {
		c.error(http.StatusNotFound, "404 File Not Found")
		return nil, nil, nil, false
	}
	return p, cm, content, true
}

func (s *Server) getFile(c *call) {
	ref := c.r.URL.Query().Get("ref")
	p, cm, content, ok := s.file(c, ref)
	if !ok {
		return
	}
	name := c.params["file"]
	sum := sha256.Sum256(content)
	f := fileJSON{
		FileName: path.Base(name), FilePath: name, Size: len(content), Encoding: "base64",
		Content: base64.StdEncoding.EncodeToString(content), ContentSHA256: hex.EncodeToString(sum[:]),
		Ref: ref, BlobID: blobID(content), CommitID: cm.ID, LastCommitID: p.lastChange(cm, name).ID,
	}
	h := c.w.Header()
	h.Set("X-Gitlab-Blob-Id", f.BlobID)
	h.Set("X-Gitlab-Commit-Id", f.CommitID)
	h.Set("X-Gitlab-Content-Sha256", f.ContentSHA256)
	h.Set("X-Gitlab-Encoding", f.Encoding)
	h.Set("X-Gitlab-File-Name", f.FileName)
	h.Set("X-Gitlab-File-Path", f.FilePath)
	h.Set("X-Gitlab-Last-Commit-Id", f.LastCommitID)
	h.Set("X-Gitlab-Ref", f.Ref)
	h.Set("X-Gitlab-Size", strconv.Itoa(f.Size))
	h.Set("X-Gitlab-Execute-Filemode", "false")
	c.json(http.StatusOK, f)
}

func (s *Server) getRawFile(c *call) {
	ref := c.r.URL.Query().Get("ref")
	if ref == "" {
		if p := s.project(c); p != nil {
			ref = p.DefaultBranch
		} else {
			return
		}
	}
	_, _, content, ok := s.file(c, ref)
	if !ok {
		return
	}
	c.status = http.StatusOK
	c.w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	c.w.Header().Set("Content-Length", strconv.Itoa(len(content)))
	c.w.WriteHeader(http.StatusOK)
	if c.r.Method != http.MethodHead {
		_, _ = c.w.Write(content)
	}
}
