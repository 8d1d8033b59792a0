package store

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
)

// node is one valid path of the live store, with its references.
type node struct {
	id         int64
	path       string
	registered int64 // registrationTime, Unix seconds
	size       int64 // narSize
	refs       []*node
	referrers  []*node
}

// graph is the live db's ValidPaths and Refs, read at once: one row per
// valid path and one per reference, so memory grows with the store (about
// 200 bytes a path).
type graph struct {
	byPath map[string]*node
	byID   map[int64]*node
	sorted []*node // by path
}

// queryer is a *sql.Conn or *sql.Tx.
type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// loadGraph reads the graph from a *sql.Conn or *sql.Tx.
func loadGraph(ctx context.Context, q queryer) (*graph, error) {
	g := &graph{byPath: map[string]*node{}, byID: map[int64]*node{}}
	rows, err := q.QueryContext(ctx, `select id, path, registrationTime, coalesce(narSize, 0) from ValidPaths`)
	if err != nil {
		return nil, fmt.Errorf("reading valid paths: %w", err)
	}
	for rows.Next() {
		n := &node{}
		if err := rows.Scan(&n.id, &n.path, &n.registered, &n.size); err != nil {
			rows.Close()
			return nil, fmt.Errorf("reading valid paths: %w", err)
		}
		g.byPath[n.path] = n
		g.byID[n.id] = n
		g.sorted = append(g.sorted, n)
	}
	if err := rows.Close(); err != nil {
		return nil, fmt.Errorf("reading valid paths: %w", err)
	}
	refs, err := q.QueryContext(ctx, `select referrer, reference from Refs`)
	if err != nil {
		return nil, fmt.Errorf("reading references: %w", err)
	}
	for refs.Next() {
		var from, to int64
		if err := refs.Scan(&from, &to); err != nil {
			refs.Close()
			return nil, fmt.Errorf("reading references: %w", err)
		}
		a, b := g.byID[from], g.byID[to]
		if a == nil || b == nil {
			refs.Close()
			return nil, fmt.Errorf("live db is inconsistent: reference %d → %d names a missing row", from, to)
		}
		if a == b {
			continue // self-references keep nothing else alive
		}
		a.refs = append(a.refs, b)
		b.referrers = append(b.referrers, a)
	}
	if err := refs.Close(); err != nil {
		return nil, fmt.Errorf("reading references: %w", err)
	}
	sort.Slice(g.sorted, func(i, j int) bool { return g.sorted[i].path < g.sorted[j].path })
	return g, nil
}

// closure adds to set every node reachable from roots that set lacks and
// returns the added nodes.
func closure(set map[*node]bool, roots ...*node) []*node {
	var added []*node
	stack := append([]*node(nil), roots...)
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if set[n] {
			continue
		}
		set[n] = true
		added = append(added, n)
		stack = append(stack, n.refs...)
	}
	return added
}

// tops returns the nodes of set that no other node of set references,
// sorted by path: the fewest roots whose closure covers set.
func tops(set map[*node]bool) []*node {
	var out []*node
	for n := range set {
		top := true
		for _, r := range n.referrers {
			if set[r] {
				top = false
				break
			}
		}
		if top {
			out = append(out, n)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].path < out[j].path })
	return out
}
