package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gitlab.com/hydrafy/hydrafy/reconciler"
)

// Following the daemon through GET /status, and printing what it does.

// demoStatus is the part of GET /status the demo follows.
type demoStatus struct {
	Tracked string `json:"tracked_digest"`
	Watch   struct {
		Error string `json:"error"`
	} `json:"watch"`
	Queued  bool       `json:"queued"`
	Current *demoPass  `json:"current"`
	Last    *demoPass  `json:"last"`
	Recent  []demoPass `json:"recent"`
}

type demoPass struct {
	ID              string            `json:"id"`
	Result          string            `json:"result"`
	Error           string            `json:"error"`
	Seeded          []string          `json:"seeded"`
	Image           string            `json:"image"`
	Mode            string            `json:"mode"`
	DowntimeSeconds float64           `json:"downtime_seconds"`
	DrainSeconds    float64           `json:"drain_seconds"`
	StallSeconds    float64           `json:"stall_seconds"`
	Steps           []reconciler.Step `json:"steps"`
}

func fetchStatus(ctx context.Context, url string) (demoStatus, error) {
	var st demoStatus
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/status", nil)
	if err != nil {
		return st, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return st, fmt.Errorf("reading /status: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("reading /status: %s", resp.Status)
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// follow prints the steps of the reconcile after the one with id after as
// they finish, and returns it once it has finished.
func (p *demoPrinter) follow(ctx context.Context, url, after string) (*demoPass, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	printed := map[string]bool{}
	show := func(r *demoPass) {
		for _, s := range r.Steps {
			key := r.ID + "/" + s.Name + "/" + s.Digest
			if printed[key] {
				continue
			}
			printed[key] = true
			line := fmt.Sprintf("  %-10s %6.2fs", s.Name, s.Seconds)
			if s.Digest != "" {
				line += "  " + short(s.Digest)
			}
			if s.Error != "" {
				line += "  error: " + s.Error
			}
			p.line("%s", line)
		}
	}
	target := ""
	for {
		st, err := fetchStatus(ctx, url)
		if err != nil {
			return nil, err
		}
		if st.Current != nil && st.Current.ID != after && target == "" {
			target = st.Current.ID
		}
		if st.Current != nil && st.Current.ID == target {
			show(st.Current)
		}
		if r := nextRun(st.Recent, after, target); r != nil {
			show(r)
			return r, nil
		}
		select {
		case <-ctx.Done():
			return nil, errors.New("waiting for the reconcile: " + ctx.Err().Error())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// waitIdle returns /status once no pass runs or is queued.
func waitIdle(ctx context.Context, url string) (demoStatus, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		st, err := fetchStatus(ctx, url)
		if err != nil || (st.Current == nil && !st.Queued) {
			return st, err
		}
		select {
		case <-ctx.Done():
			return st, errors.New("waiting for the daemon to be idle: " + ctx.Err().Error())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// nextRun finds, among the finished runs (oldest first), target or, when
// no run was seen in progress, the first run after the one with id after.
func nextRun(recent []demoPass, after, target string) *demoPass {
	for i := range recent {
		if target != "" && recent[i].ID == target {
			return &recent[i]
		}
	}
	if target != "" {
		return nil
	}
	if after == "" && len(recent) > 0 {
		return &recent[0]
	}
	for i := range recent {
		if recent[i].ID == after && i+1 < len(recent) {
			return &recent[i+1]
		}
	}
	return nil
}

// demoPrinter prints the demo's steps with the time since its start.
type demoPrinter struct {
	w     io.Writer
	start time.Time
}

func (p *demoPrinter) step(format string, args ...any) {
	fmt.Fprintf(p.w, "[%5.1fs] %s\n", time.Since(p.start).Seconds(), fmt.Sprintf(format, args...))
}

func (p *demoPrinter) done(format string, args ...any) {
	fmt.Fprintf(p.w, "         ✓ %s\n", fmt.Sprintf(format, args...))
}

func (p *demoPrinter) line(format string, args ...any) {
	fmt.Fprintf(p.w, "         %s\n", fmt.Sprintf(format, args...))
}

// digestOf returns the digest of a reference (repo@sha256:…).
func digestOf(ref string) string {
	if i := strings.LastIndexByte(ref, '@'); i >= 0 {
		return ref[i+1:]
	}
	return ref
}

func short(digest string) string {
	if i := strings.IndexByte(digest, ':'); i >= 0 && len(digest) > i+12 {
		return digest[:i+13]
	}
	return digest
}

func shortAll(ds []string) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = short(d)
	}
	return out
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func countPaths(storeDir string) int {
	entries, err := os.ReadDir(filepath.Join(storeDir, "nix/store"))
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), ".") {
			n++
		}
	}
	return n
}
