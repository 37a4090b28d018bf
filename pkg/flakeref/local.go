package flakeref

import (
	"fmt"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// localSchemes are the flake input types whose source is on this
// machine's file system.
var localSchemes = []string{"path", "git+file", "file", "file+file", "tarball+file", "hg+file"}

// local is a flake reference to files of this machine, in parts:
// scheme ("" for a bare path), location (a directory or file) and query.
type local struct {
	scheme, location, query string
}

// parseLocal splits ref (no #fragment) when it names files of this
// machine: a path (., ./x, /x) or a URL of a local input type.
func parseLocal(ref string) (local, bool) {
	rest, query, _ := strings.Cut(ref, "?")
	if strings.HasPrefix(rest, "/") || strings.HasPrefix(rest, ".") {
		return local{location: rest, query: query}, true
	}
	scheme, loc, ok := strings.Cut(rest, ":")
	if !ok || !isLocalScheme(scheme) {
		return local{}, false
	}
	if after, ok := strings.CutPrefix(loc, "//"); ok {
		// file://[localhost]/dir: the authority is the machine itself.
		host, p, _ := strings.Cut(after, "/")
		if host != "" && host != "localhost" {
			return local{}, false
		}
		loc = "/" + p
	}
	return local{scheme: scheme, location: loc, query: query}, true
}

// IsLocal tells whether ref (no #fragment) names files of this machine:
// a path or a URL of a local input type, which no forge's outage stops.
func IsLocal(ref string) bool {
	_, ok := parseLocal(ref)
	return ok
}

func isLocalScheme(s string) bool {
	for _, l := range localSchemes {
		if s == l {
			return true
		}
	}
	return false
}

// hideDirectory is location with an absolute directory replaced by
// ".../" and its last element (/home/runner/work/app/app: .../app): where
// a checkout is differs from machine to machine, and is nobody's
// business. A relative location is kept.
func hideDirectory(location string) string {
	if !strings.HasPrefix(location, "/") {
		return location
	}
	base := path.Base(path.Clean(location))
	if base == "/" {
		return "..."
	}
	return ".../" + base
}

// WithoutDirectory is the installable or flake reference ref as given,
// with the absolute directory of a local one hidden
// (path:/tmp/x/app#pkg: path:.../app#pkg; git+file:///src/app:
// git+file:.../app) and credentials redacted; relative ones (.#app,
// ./sub#pkg) and remote ones are kept.
func WithoutDirectory(ref string) string {
	flake, attr, hasAttr := strings.Cut(ref, "#")
	if l, ok := parseLocal(flake); ok {
		flake = l.String(hideDirectory(l.location), l.query)
	}
	if hasAttr {
		flake += "#" + attr
	}
	return Redacted(flake)
}

func (l local) String(location, query string) string {
	s := location
	if l.scheme != "" {
		s = l.scheme + ":" + location
	}
	if query != "" {
		s += "?" + query
	}
	return s
}

// Recorded is what an image records of a flake: given is the reference as
// the user wrote it (no #fragment), locked the one Nix locked it to, with
// its rev (git) or narHash (path, file, tarball). A local flake's locked
// reference names the directory it was read from and the branch checked
// out, which change nothing in what was built: it is recorded as the
// locked input type, the location as given (its directory hidden when
// absolute) and what locks it, e.g. git+file:.?rev=<rev> for ".",
// path:.../app?narHash=<hash> for "path:/src/app". Any other reference
// is the locked one, credentials redacted.
func Recorded(given, locked, rev, narHash string) string {
	l, ok := parseLocal(locked)
	if !ok || l.scheme == "" {
		return Redacted(locked)
	}
	location, query := hideDirectory(l.location), ""
	if g, ok := parseLocal(given); ok {
		location, query = hideDirectory(g.location), g.query
	}
	// What locks the source replaces what picked it (a branch, a tag).
	var pick url.Values
	switch {
	case rev != "":
		pick = url.Values{"rev": {rev}}
	case narHash != "":
		pick = url.Values{"narHash": {narHash}}
	}
	q, ok := WithRevision(query, pick)
	if !ok {
		q = encodeQuery(pick)
	}
	return Redacted(l.String(location, q))
}

// RegistryNameAdvice is what to write instead of dir, read as a flake
// registry name, with rest (a #fragment, or "") after it.
func RegistryNameAdvice(dir, rest string) string {
	return fmt.Sprintf("%q is read as a flake registry name; for the directory write ./%s%s or path:%s%s", dir, dir, rest, dir, rest)
}

// ReadAsRegistryName tells whether ref, a relative directory holding a
// flake.nix (testdata/nixpkgs), is one Nix reads as a flake registry name
// instead: a reference with no scheme, no '#' and no leading '.' or '/'
// is looked up in the flake registry (online), whatever is on disk. Such
// a directory is written ./DIR or path:DIR.
func ReadAsRegistryName(ref string) bool {
	if strings.ContainsAny(ref, ":#") || !strings.Contains(ref, "/") || strings.HasPrefix(ref, ".") || strings.HasPrefix(ref, "/") {
		return false
	}
	return isFile(filepath.Join(ref, "flake.nix"))
}

// GitFlakeOnDisk tells whether Nix reads the flake ref from a git work
// tree, which it copies with only the files git tracks: ref is a bare
// path (., ./app) or a git+file: URL inside a git work tree, and a
// flake.nix is on disk where Nix looks for one (the directory, or one
// above it within the work tree). A flake.nix missing from Nix's copy is
// then one git does not track.
func GitFlakeOnDisk(ref string) bool {
	flake, _, _ := strings.Cut(ref, "#")
	l, ok := parseLocal(flake)
	if !ok || (l.scheme != "" && l.scheme != "git+file") {
		return false
	}
	dir := l.location
	if sub := queryValue(l.query, "dir"); sub != "" {
		dir = filepath.Join(dir, sub)
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return false
	}
	found := false
	for {
		if isFile(filepath.Join(dir, "flake.nix")) {
			found = true
		}
		if _, err := os.Lstat(filepath.Join(dir, ".git")); err == nil {
			return found
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return false
		}
		dir = parent
	}
}

func isFile(path string) bool {
	info, err := os.Stat(path)
	return err == nil && info.Mode().IsRegular()
}

// queryValue is the value of key in a URL query, or "", read as Nix
// reads it (parseQuery).
func queryValue(query, key string) string {
	v, ok := parseQuery(query)
	if !ok {
		return ""
	}
	return v.Get(key)
}
