package server

import (
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"golang.org/x/net/netutil"
)

// The bounds of the HTTP face. A GitLab delivery carries a few headers of
// a few hundred bytes; Prometheus scrapes once every few seconds.
const (
	// maxHeaderBytes bounds a request's header block.
	maxHeaderBytes = 32 << 10
	// DefaultMaxConnections bounds the open connections of each listener
	// (idle keep-alive ones included).
	DefaultMaxConnections = 512
	// scrapeInFlight bounds the /metrics and the /status requests served
	// at once (each); more are answered 503 at once.
	scrapeInFlight = 4
	// scrapeTimeout bounds the time to answer a /metrics or /status
	// request, writing included, so a slow reader cannot hold a slot.
	scrapeTimeout = 10 * time.Second
	// gatherTimeout bounds gathering the metrics (then 503), well within
	// scrapeTimeout so the 503 can still be written.
	gatherTimeout = 5 * time.Second
	// idleTimeout closes keep-alive connections that send nothing.
	idleTimeout = 60 * time.Second
	// headerTimeout and bodyTimeout cut clients that send a request's
	// headers, or its whole body, too slowly.
	headerTimeout = 10 * time.Second
	bodyTimeout   = 30 * time.Second
)

// httpServer returns an http.Server with the bounds above around h.
func (s *Server) httpServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: s.headerTimeout,
		ReadTimeout:       s.bodyTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          s.errorLog,
	}
}

// limitListener bounds the connections open on ln at once: past the bound,
// new connections wait in the kernel's backlog until one closes.
func (s *Server) limitListener(ln net.Listener) net.Listener {
	n := s.opts.MaxConnections
	if n <= 0 {
		n = DefaultMaxConnections
	}
	return netutil.LimitListener(ln, n)
}

// scrapeGuard guards the read-only endpoints (/metrics, /status): the
// bearer token when one is configured, a bound on requests in flight and a
// deadline for writing the answer.
func (s *Server) scrapeGuard() echo.MiddlewareFunc {
	slots := make(chan struct{}, scrapeInFlight)
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if s.opts.MetricsToken != "" && !tokenMatches(bearer(c.Request().Header.Get("Authorization")), s.opts.MetricsToken) {
				return echo.NewHTTPError(http.StatusUnauthorized, "missing or wrong bearer token")
			}
			select {
			case slots <- struct{}{}:
				defer func() { <-slots }()
			default:
				s.metrics.scrapesRefused.WithLabelValues(c.Path()).Inc()
				c.Response().Header().Set("Retry-After", strconv.Itoa(1))
				return echo.NewHTTPError(http.StatusServiceUnavailable, "too many requests in flight, try again later")
			}
			// A write deadline cuts a client that reads the answer slowly.
			_ = http.NewResponseController(c.Response()).SetWriteDeadline(time.Now().Add(scrapeTimeout))
			return next(c)
		}
	}
}
