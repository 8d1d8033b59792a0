package gitlabemu

import (
	"encoding/base64"
	"fmt"
	"maps"
)

// action is one file change of a commit.
type action struct {
	Action       string
	FilePath     string
	PreviousPath string
	Content      *string
	Encoding     string
	LastCommitID string
}

func parseActions(v any) ([]action, error) {
	list, ok := v.([]any)
	if !ok || len(list) == 0 {
		return nil, fmt.Errorf("actions is missing")
	}
	out := make([]action, 0, len(list))
	for i, item := range list {
		m, ok := item.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("actions[%d] is invalid", i)
		}
		get := func(k string) string { s, _ := m[k].(string); return s }
		a := action{Action: get("action"), FilePath: get("file_path"), PreviousPath: get("previous_path"),
			Encoding: get("encoding"), LastCommitID: get("last_commit_id")}
		if s, ok := m["content"].(string); ok {
			a.Content = &s
		}
		switch a.Action {
		case "create", "update", "delete", "move", "chmod":
		default:
			return nil, fmt.Errorf("actions[%d][action] does not have a valid value", i)
		}
		if a.FilePath == "" {
			return nil, fmt.Errorf("actions[%d][file_path] is missing", i)
		}
		out = append(out, a)
	}
	return out, nil
}

// apply returns parent's tree with actions applied, or GitLab's message for
// the first action that cannot apply.
func (p *project) apply(parent *commit, actions []action) (map[string][]byte, error) {
	tree := maps.Clone(parent.Tree)
	for _, a := range actions {
		content := []byte(nil)
		if a.Content != nil {
			content = []byte(*a.Content)
			if a.Encoding == "base64" {
				b, err := base64.StdEncoding.DecodeString(*a.Content)
				if err != nil {
					return nil, fmt.Errorf("content of %s is not valid base64", a.FilePath)
				}
				content = b
			}
		}
		_, exists := tree[a.FilePath]
		if a.LastCommitID != "" && exists && p.lastChange(parent, a.FilePath).ID != a.LastCommitID {
			return nil, fmt.Errorf("The file has changed since you started editing it: %s", a.FilePath)
		}
		switch a.Action {
		case "create":
			if exists {
				return nil, fmt.Errorf("A file with this name already exists")
			}
			tree[a.FilePath] = content
		case "update":
			if !exists {
				return nil, fmt.Errorf("A file with this name doesn't exist")
			}
			tree[a.FilePath] = content
		case "delete":
			if !exists {
				return nil, fmt.Errorf("A file with this name doesn't exist")
			}
			delete(tree, a.FilePath)
		case "move":
			old, ok := tree[a.PreviousPath]
			if !ok {
				return nil, fmt.Errorf("A file with this name doesn't exist")
			}
			if exists {
				return nil, fmt.Errorf("A file with this name already exists")
			}
			delete(tree, a.PreviousPath)
			if a.Content == nil {
				content = old
			}
			tree[a.FilePath] = content
		case "chmod":
			if !exists {
				return nil, fmt.Errorf("A file with this name doesn't exist")
			}
		}
	}
	return tree, nil
}
