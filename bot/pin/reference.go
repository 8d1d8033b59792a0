package pin

import (
	"fmt"
	"regexp"
	"strings"
)

// The grammar of an image reference, after the distribution project's
// reference package, plus tags built from CI variables ($VAR, ${VAR}).
const (
	domainComponent = `(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])`
	domainPart      = domainComponent + `(?:\.` + domainComponent + `)*(?::[0-9]+)?`
	pathComponent   = `[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*`
	namePart        = `(?:` + domainPart + `/)?` + pathComponent + `(?:/` + pathComponent + `)*`
	ciVariable      = `\$(?:[A-Za-z_][A-Za-z0-9_]*|\{[A-Za-z_][A-Za-z0-9_]*\})`
	tagPart         = `(?:[\w]|` + ciVariable + `)(?:[\w.-]|` + ciVariable + `)*`
	digestPart      = `[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}`
)

var (
	referenceRE = regexp.MustCompile(`^(` + namePart + `)(?::(` + tagPart + `))?(?:@(` + digestPart + `))?$`)
	pathRE      = regexp.MustCompile(`^` + pathComponent + `(?:/` + pathComponent + `)*$`)
	plainTagRE  = regexp.MustCompile(`^[\w][\w.-]{0,127}$`)
	versionRE   = regexp.MustCompile(`^v?[0-9]+(?:\.[0-9]+){0,2}$`)
	// proxyRE matches GitLab's Dependency Proxy prefixes, which stand for
	// Docker Hub through the group's proxy, with or without braces.
	// The server variable is followed by the group's proxy path.
	proxyRE = regexp.MustCompile(`^(?:\$(?:\{(?:` + proxyVars + `)\}|(?:` + proxyVars + `))/|` +
		`\$(?:\{CI_DEPENDENCY_PROXY_SERVER\}|CI_DEPENDENCY_PROXY_SERVER)/` + pathComponent + `(?:/` + pathComponent + `)*/dependency_proxy/containers/)`)
	// variableRE matches a leading CI variable that hydrafy cannot resolve.
	variableRE = regexp.MustCompile(`^\$(?:\{[A-Za-z_][A-Za-z0-9_]*\}|[A-Za-z_][A-Za-z0-9_]*)`)
)

// proxyVars are the predefined variables that prefix an image with the
// group's Dependency Proxy for Docker Hub.
const proxyVars = `CI_DEPENDENCY_PROXY_GROUP_IMAGE_PREFIX|CI_DEPENDENCY_PROXY_DIRECT_GROUP_IMAGE_PREFIX`

// repo is a repository name in its canonical form: docker.io for Docker
// Hub (whichever of its host names is written), library/ for its official
// images.
type repo struct {
	domain, path string
}

func (r repo) String() string { return r.domain + "/" + r.path }

// ref is one parsed image reference.
type ref struct {
	name   string // as written, with any registry prefix
	repo   repo
	tag    string
	digest string
}

// parseRef parses s as an image reference. ok is false when s is not one.
func parseRef(s string) (r ref, ok bool) {
	if p := proxyRE.FindString(s); p != "" {
		// The Dependency Proxy serves Docker Hub's repositories: the rest
		// names one without a registry.
		r, ok := parseRef(s[len(p):])
		if !ok || r.repo.domain != "docker.io" || r.name != strings.TrimPrefix(r.name, "docker.io/") || r.name != strings.TrimPrefix(r.name, "index.docker.io/") {
			return ref{}, false
		}
		r.name = p + r.name
		return r, true
	}
	m := referenceRE.FindStringSubmatch(s)
	if m == nil {
		return ref{}, false
	}
	rp, ok := splitName(m[1])
	if !ok {
		return ref{}, false
	}
	if len(m[2]) > 128 {
		return ref{}, false
	}
	return ref{name: m[1], repo: rp, tag: m[2], digest: m[3]}, true
}

// splitName splits a repository name into its registry and path the way
// Docker does: the first component is a registry only when it holds a '.'
// or ':', is "localhost", or has upper-case letters.
func splitName(name string) (repo, bool) {
	domain, path, found := strings.Cut(name, "/")
	if !found || !(strings.ContainsAny(domain, ".:") || domain == "localhost" || domain != strings.ToLower(domain)) {
		domain, path = "", name
	}
	if !pathRE.MatchString(path) {
		return repo{}, false
	}
	domain = strings.ToLower(domain)
	switch domain {
	case "", "docker.io", "index.docker.io", "registry-1.docker.io":
		domain = "docker.io"
		if !strings.Contains(path, "/") {
			path = "library/" + path
		}
	}
	return repo{domain: domain, path: path}, true
}

// parseImage parses the repository to pin: a name without tag or digest.
func parseImage(image string) (repo, error) {
	r, ok := parseRef(image)
	if !ok || r.tag != "" || r.digest != "" {
		return repo{}, fmt.Errorf("invalid image %q: want a repository such as nixos/nix, without tag or digest", image)
	}
	return r.repo, nil
}

// hasVariable reports whether a tag is built from CI variables; such tags
// are kept as they are.
func hasVariable(tag string) bool { return strings.Contains(tag, "$") }

// IsVersionTag reports whether tag names a release ("2.24.9", "2.24",
// "v2"), as opposed to a moving tag such as "latest".
func IsVersionTag(tag string) bool { return versionRE.MatchString(tag) }

// pinned returns r rewritten to carry opts' digest (and tag).
func (r ref) pinned(opts Options) string {
	s := r.name
	if r.tag != "" {
		tag := r.tag
		switch {
		case hasVariable(tag):
		case opts.Tag != "":
			tag = opts.Tag
		case opts.VersionTag != "" && IsVersionTag(tag):
			tag = opts.VersionTag
		}
		s += ":" + tag
	}
	return s + "@" + opts.Digest
}

// unresolved says why s, which is no reference of r that can be pinned,
// still names r: through a registry or prefix held in a variable hydrafy
// cannot resolve, or with its digest in a variable. "" when it does not.
func unresolved(s string, r repo) string {
	if proxyRE.MatchString(s) {
		return "" // a Dependency Proxy reference of another repository
	}
	if v := variableRE.FindString(s); v != "" && strings.HasPrefix(s[len(v):], "/") {
		rest := s[len(v)+1:]
		if i := strings.IndexByte(rest, '@'); i >= 0 {
			rest = rest[:i]
		}
		if i := strings.LastIndexByte(rest, ':'); i > strings.LastIndexByte(rest, '/') {
			rest = rest[:i]
		}
		path := strings.TrimPrefix(r.path, "library/")
		if rest == r.path || rest == path || strings.HasSuffix(rest, "/"+path) {
			return fmt.Sprintf("its registry comes from %s, which hydrafy cannot resolve", v)
		}
		return ""
	}
	name, digest, found := strings.Cut(s, "@")
	if !found || !strings.HasPrefix(digest, "$") {
		return ""
	}
	if rf, ok := parseRef(name); ok && rf.repo == r {
		return fmt.Sprintf("its digest comes from %s, which hydrafy cannot resolve", digest)
	}
	return ""
}
