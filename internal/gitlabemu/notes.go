package gitlabemu

import (
	"net/http"
	"time"
)

func init() {
	handle(http.MethodGet, "projects/:id/merge_requests/:iid/notes", (*Server).listNotes)
	handle(http.MethodPost, "projects/:id/merge_requests/:iid/notes", (*Server).createNote)
}

type note struct {
	ID      int64
	Body    string
	Author  *user
	Created time.Time
}

// noteJSON is GitLab's note entity.
type noteJSON struct {
	ID           int64     `json:"id"`
	Type         *string   `json:"type"`
	Body         string    `json:"body"`
	Author       userJSON  `json:"author"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
	System       bool      `json:"system"`
	NoteableID   int64     `json:"noteable_id"`
	NoteableType string    `json:"noteable_type"`
	NoteableIID  int64     `json:"noteable_iid"`
	ProjectID    int64     `json:"project_id"`
	Resolvable   bool      `json:"resolvable"`
	Internal     bool      `json:"internal"`
	Confidential bool      `json:"confidential"`
}

func (s *Server) noteJSON(p *project, mr *mergeRequest, n *note) noteJSON {
	return noteJSON{
		ID: n.ID, Body: n.Body, Author: s.userJSON(n.Author), CreatedAt: n.Created, UpdatedAt: n.Created,
		NoteableID: mr.ID, NoteableType: "MergeRequest", NoteableIID: mr.IID, ProjectID: p.ID,
	}
}

func (s *Server) listNotes(c *call) {
	p, mr := s.mergeRequest(c)
	if mr == nil {
		return
	}
	out := []noteJSON{}
	for i := len(mr.Notes) - 1; i >= 0; i-- {
		out = append(out, s.noteJSON(p, mr, mr.Notes[i]))
	}
	c.json(http.StatusOK, paginate(c, out))
}

func (s *Server) createNote(c *call) {
	p, mr := s.mergeRequest(c)
	if mr == nil {
		return
	}
	body, _ := c.str("body")
	if body == "" {
		c.json(http.StatusBadRequest, map[string]string{"error": "body is missing"})
		return
	}
	n := &note{ID: s.id("note"), Body: body, Author: c.user, Created: s.now().UTC()}
	mr.Notes = append(mr.Notes, n)
	c.json(http.StatusCreated, s.noteJSON(p, mr, n))
}
