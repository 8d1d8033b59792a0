package gitlabemu

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Request is one API call the emulator answered.
type Request struct {
	Method string
	Path   string // escaped path below /api/v4
	Status int
	// At is when the emulator answered it, by its clock.
	At time.Time
}

// route maps a method and a path pattern (segments; ":x" binds a
// parameter) to a handler.
type route struct {
	method  string
	pattern []string
	handle  func(s *Server, c *call)
}

// call is one request being answered; handlers run with s.mu held.
type call struct {
	w      http.ResponseWriter
	r      *http.Request
	params map[string]string
	user   *user
	body   map[string]any
	status int
}

var routes []route

func handle(method, pattern string, h func(s *Server, c *call)) {
	routes = append(routes, route{method, strings.Split(pattern, "/"), h})
}

// Handler returns the HTTP handler serving /api/v4.
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.EscapedPath(), "/api/v4/")
	c := &call{w: w, r: r, params: map[string]string{}}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.baseURL(r)
	defer func() {
		s.requests = append(s.requests, Request{Method: r.Method, Path: rest, Status: c.status, At: s.now()})
	}()
	if !ok {
		s.unknown(c)
		return
	}
	segs := strings.Split(strings.TrimSuffix(rest, "/"), "/")
	rt, methodOK := match(segs, r.Method, c.params)
	if rt == nil {
		if methodOK {
			c.error(http.StatusMethodNotAllowed, "405 Method Not Allowed")
			return
		}
		s.unknown(c)
		return
	}
	if f := s.fault(r.Method, rest); f != nil {
		if f.status == http.StatusTooManyRequests && f.retryAfter > 0 {
			s.throttled(c, f.retryAfter)
			return
		}
		c.error(f.status, fmt.Sprintf("%d %s", f.status, http.StatusText(f.status)))
		return
	}
	if !s.authenticate(c, rest) {
		return
	}
	if err := c.parseBody(); err != nil {
		c.error(http.StatusBadRequest, "400 Bad request - "+err.Error())
		return
	}
	rt.handle(s, c)
}

func match(segs []string, method string, params map[string]string) (*route, bool) {
	pathOK := false
	for i := range routes {
		rt := &routes[i]
		if len(rt.pattern) != len(segs) {
			continue
		}
		ok := true
		for j, p := range rt.pattern {
			if !strings.HasPrefix(p, ":") && p != segs[j] {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		pathOK = true
		if rt.method != method && !(rt.method == http.MethodGet && method == http.MethodHead) {
			continue
		}
		for j, p := range rt.pattern {
			if strings.HasPrefix(p, ":") {
				v, err := url.PathUnescape(segs[j])
				if err != nil {
					v = segs[j]
				}
				params[p[1:]] = v
			}
		}
		return rt, true
	}
	return nil, pathOK
}

func (s *Server) unknown(c *call) {
	s.log.Warn("gitlab emulator: unknown endpoint", "method", c.r.Method, "path", c.r.URL.Path)
	c.error(http.StatusNotFound, "404 Not Found")
}

// parseBody reads a JSON or form body into c.body.
func (c *call) parseBody() error {
	c.body = map[string]any{}
	if c.r.Method == http.MethodGet || c.r.Method == http.MethodHead || c.r.Body == nil {
		return nil
	}
	if strings.HasPrefix(c.r.Header.Get("Content-Type"), "application/json") {
		dec := json.NewDecoder(c.r.Body)
		dec.UseNumber()
		if err := dec.Decode(&c.body); err != nil && err.Error() != "EOF" {
			return err
		}
		return nil
	}
	if err := c.r.ParseForm(); err != nil {
		return err
	}
	for k, v := range c.r.PostForm {
		if len(v) > 0 {
			c.body[k] = v[0]
		}
	}
	return nil
}

// str returns a string parameter from the body, then the query.
func (c *call) str(name string) (string, bool) {
	if v, ok := c.body[name]; ok && v != nil {
		switch v := v.(type) {
		case string:
			return v, true
		case json.Number:
			return v.String(), true
		case bool:
			if v {
				return "true", true
			}
			return "false", true
		}
	}
	if c.r.URL.Query().Has(name) {
		return c.r.URL.Query().Get(name), true
	}
	return "", false
}

func (c *call) boolean(name string) (bool, bool) {
	v, ok := c.str(name)
	if !ok {
		return false, false
	}
	return v == "true" || v == "1", true
}

func (c *call) json(status int, v any) {
	c.status = status
	c.w.Header().Set("Content-Type", "application/json")
	c.w.WriteHeader(status)
	if c.r.Method == http.MethodHead {
		return
	}
	_ = json.NewEncoder(c.w).Encode(v)
}

func (c *call) error(status int, msg string) {
	c.json(status, map[string]string{"message": msg})
}

func (c *call) noContent() {
	c.status = http.StatusNoContent
	c.w.WriteHeader(http.StatusNoContent)
}
