package server

import (
	"crypto/sha256"
	"crypto/subtle"
	"strings"

	"gitlab.com/hydrafy/hydrafy/config"
)

// tokenMatches compares got with the configured secret in constant time.
// Both sides are hashed first so that the comparison does not reveal the
// secret's length either. An empty secret matches nothing.
func tokenMatches(got string, want config.Secret) bool {
	if want == "" || got == "" {
		return false
	}
	a := sha256.Sum256([]byte(got))
	b := sha256.Sum256([]byte(want.Reveal()))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// bearer returns the token of an "Authorization: Bearer TOKEN" header.
func bearer(header string) string {
	scheme, tok, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(tok)
}
