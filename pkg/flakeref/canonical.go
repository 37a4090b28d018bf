package flakeref

import (
	"net/url"
	"regexp"
	"strings"
)

// Canonical spells a locked reference the same way whatever Nix printed
// it, since the image's annotations, provenance, SBOM, --json result and
// a server's key record it: the same sources must give the same image on
// every Nix. Nix 2.8 writes narHash=...%2f...= and ref=master where Nix
// 2.26 writes narHash=.../...%3D and ref=refs/heads/master. The query's
// parameters are sorted by name and each value percent-encoded once, the
// way current Nix does (a slash left as it is); every Nix reads that
// spelling back. A reference whose query cannot be decoded is kept as Nix
// wrote it.
func Canonical(ref string) string {
	base, query, ok := strings.Cut(ref, "?")
	if !ok || query == "" {
		return ref
	}
	values, ok := parseQuery(query)
	if !ok {
		return ref
	}
	if refs, ok := values["ref"]; ok {
		for i, r := range refs {
			refs[i] = shortRef(r)
		}
	}
	return base + "?" + encodeQuery(values)
}

// parseQuery reads a flake reference's query as Nix does: not as
// url.ParseQuery, since Nix reads a + as itself, not a space.
func parseQuery(query string) (url.Values, bool) {
	values := url.Values{}
	for _, kv := range strings.Split(query, "&") {
		if kv == "" {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		key, err1 := url.PathUnescape(k)
		value, err2 := url.PathUnescape(v)
		if err1 != nil || err2 != nil {
			return nil, false
		}
		values.Add(key, value)
	}
	return values, true
}

// encodeQuery is values sorted by name, spelt as Canonical has it.
func encodeQuery(values url.Values) string {
	return queryEscaper.Replace(values.Encode())
}

// queryEscaper turns url.Values.Encode's spelling into one Nix reads as
// it was meant: a space as %20 (Nix takes + as itself; Encode writes a
// literal + as %2B), a slash as itself, as current Nix writes it.
var queryEscaper = strings.NewReplacer("+", "%20", "%2F", "/")

// shortRef is a branch's ref by its short name: Nix 2.8 prints
// ref=master, Nix 2.26 refs/heads/master for the same branch. The short
// name is what users write, and the full name can be made short without
// asking git, while a short name cannot be made full (a branch or a
// tag?). Other full names (refs/tags/...) are kept; the rev locks the
// source either way.
func shortRef(ref string) string {
	return strings.TrimPrefix(ref, "refs/heads/")
}

// revisionParams are the query parameters that pick a revision (a
// branch, a tag, a commit) or lock its tree.
var revisionParams = []string{"ref", "rev", "narHash", "lastModified", "revCount"}

// deleteRevision deletes revisionParams from values: what picks another
// revision, or what locks it, replaces them.
func deleteRevision(values url.Values) {
	for _, k := range revisionParams {
		values.Del(k)
	}
}

// WithRevision is a flake reference's query q with its revision
// parameters replaced by pick (ref=TAG, rev=REV; nil drops them), spelt
// as Canonical spells queries (url.ParseQuery would read a + as a
// space, which Nix does not); ok is false for a q that is no query.
func WithRevision(q string, pick url.Values) (string, bool) {
	values, ok := parseQuery(q)
	if !ok {
		return "", false
	}
	deleteRevision(values)
	for k, v := range pick {
		values[k] = v
	}
	return encodeQuery(values), true
}

// IsCommit tells whether s is a full git commit hash, as Nix writes it
// (and takes a rev).
func IsCommit(s string) bool {
	return len(s) == 40 && strings.Trim(s, "0123456789abcdef") == ""
}

// Forge is a flake reference of a git forge: TYPE:OWNER/REPO[/REF][?QUERY].
type Forge struct {
	Type  string // github, gitlab or sourcehut
	Repo  string // OWNER/REPO
	Ref   string // a branch, a tag or a commit; "" for the default branch
	Query string // without its '?'
}

var forgeRef = regexp.MustCompile(`^(github|gitlab|sourcehut):([^/?#]+/[^/?#]+)(?:/([^?#]*))?(?:\?([^#]*))?$`)

// ParseForge reads ref as a forge's flake reference; ok is false for any
// other reference.
func ParseForge(ref string) (f Forge, ok bool) {
	m := forgeRef.FindStringSubmatch(ref)
	if m == nil {
		return Forge{}, false
	}
	return Forge{Type: m[1], Repo: m[2], Ref: m[3], Query: m[4]}, true
}
