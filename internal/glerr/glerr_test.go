package glerr

import (
	"net"
	"strings"
	"testing"

	gitlab "gitlab.com/gitlab-org/api/client-go"
)

// TestUnreachable: a GitLab that cannot be reached is named as such.
func TestUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	gl, err := gitlab.NewClient("glpat-x", gitlab.WithBaseURL("http://"+addr), gitlab.WithCustomRetryMax(0))
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = gl.Projects.GetProject("group/app", nil)
	got := Explain("reading group/app", err, Need{}).Error()
	if !strings.HasPrefix(got, "reading group/app: cannot reach GitLab: ") || !strings.Contains(got, "connection refused") {
		t.Errorf("Explain = %q", got)
	}
}
