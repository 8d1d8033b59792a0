package propose

import (
	"context"
	"fmt"
	"testing"

	"gitlab.com/hydrafy/hydrafy/config"
)

// BenchmarkPass measures a pass over 20 projects with nothing new (the
// steady state of every scheduled check) and reports API calls per pass.
func BenchmarkPass(b *testing.B) {
	files := map[string]map[string]string{}
	var projects []config.Project
	for i := range 20 {
		path := fmt.Sprintf("g/p%02d", i)
		files[path] = map[string]string{".gitlab-ci.yml": "image: nixos/nix:latest\n"}
		projects = append(projects, config.Project{Path: path})
	}
	e := newEnv(b, files)
	emu := e.emu
	p := New(e.gl, Options{Projects: projects, Propose: config.Propose{MaxOpen: 100}}, nil)
	ctx := context.Background()
	_, st, err := p.Pass(ctx, target('1'), State{})
	if err != nil {
		b.Fatal(err)
	}
	emu.ResetRequests()
	b.ResetTimer()
	for b.Loop() {
		if _, _, err := p.Pass(ctx, target('1'), st); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	reqs := emu.Requests()
	b.ReportMetric(float64(len(reqs))/float64(b.N), "requests/pass")
	b.ReportMetric(float64(len(emu.Writes()))/float64(b.N), "writes/pass")
}
