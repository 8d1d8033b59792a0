package server

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"syscall"
	"time"

	"github.com/labstack/echo/v4"
	"golang.org/x/sync/errgroup"
)

// checkTimeout bounds each readiness check.
const checkTimeout = 3 * time.Second

func (s *Server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(c echo.Context) error {
	reasons := make([]string, len(s.opts.Checks))
	var g errgroup.Group
	for i, ch := range s.opts.Checks {
		g.Go(func() error {
			ctx, cancel := context.WithTimeout(c.Request().Context(), checkTimeout)
			defer cancel()
			if err := ch.Check(ctx); err != nil {
				reasons[i] = ch.Name + ": " + err.Error()
			}
			return nil
		})
	}
	_ = g.Wait()
	var failed []string
	for _, r := range reasons {
		if r != "" {
			failed = append(failed, r)
		}
	}
	if len(failed) > 0 {
		return c.JSON(http.StatusServiceUnavailable, map[string]any{"status": "unready", "reasons": failed})
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ready"})
}

// DirCheck reports whether dir exists, is a directory and is writable.
func DirCheck(dir string) Check {
	return Check{Name: "store dir", Check: func(context.Context) error {
		fi, err := os.Stat(dir)
		if err != nil {
			return fmt.Errorf("checking %s: %w", dir, err)
		}
		if !fi.IsDir() {
			return fmt.Errorf("%s is not a directory", dir)
		}
		if err := syscall.Access(dir, 0x2 /* W_OK */); err != nil {
			return fmt.Errorf("%s is not writable: %w", dir, err)
		}
		return nil
	}}
}
