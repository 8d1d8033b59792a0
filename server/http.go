package server

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
)

func (s *Server) accessLog(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		// Only method, path and status: headers carry the secrets.
		s.log.Debug("http", "method", c.Request().Method, "path", c.Request().URL.Path,
			"status", c.Response().Status, "ms", float64(time.Since(start).Microseconds())/1000)
		return nil
	}
}

func (s *Server) httpError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	code, msg := http.StatusInternalServerError, "internal error"
	var he *echo.HTTPError
	if errors.As(err, &he) {
		code = he.Code
		msg = strings.ToLower(http.StatusText(code))
		if m, ok := he.Message.(string); ok {
			msg = m
		}
	} else {
		s.log.Error("request failed", "path", c.Request().URL.Path, "err", err)
	}
	_ = c.JSON(code, map[string]string{"error": msg})
}
