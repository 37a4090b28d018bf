package spec

import (
	"fmt"
	"strings"

	"github.com/nixery-action/nixery-action/pkg/flakeref"
)

// Installable is a package of a flake other than nixpkgs, named as `nix
// build` names it: FLAKEREF#ATTR, or a bare FLAKEREF for the flake's
// default package. The team's own software comes in this way: `.#app`
// from the working directory, `path:../x#pkg`, `github:owner/repo#pkg`,
// `git+https://…?ref=v1#pkg`.
type Installable struct {
	// Ref is the installable as given, e.g. ".#app".
	Ref string
	// Flake is the flake reference, e.g. "." or "github:owner/repo".
	Flake string
	// Attr is the attribute path after '#'; "" means the default
	// package. It is resolved as nix build does: packages.<system>.Attr,
	// then legacyPackages.<system>.Attr.
	Attr string
}

// DefaultAttr is the package a bare flake reference names.
const DefaultAttr = "default"

// Name is the attribute the installable names: Attr, or DefaultAttr.
func (i Installable) Name() string {
	if i.Attr == "" {
		return DefaultAttr
	}
	return i.Attr
}

// flakeSchemes are the prefixes of flake references (Nix's input types).
var flakeSchemes = []string{"path:", "git+", "github:", "gitlab:", "sourcehut:", "tarball+", "file+", "http:", "https:", "hg+", "flake:"}

// IsInstallable tells a flake installable from a nixpkgs attribute path:
// attribute paths never hold '#' or ':', nor start with '.' or '/'. (A
// word of slashes alone is Nixery's path form with no names in it.)
func IsInstallable(s string) bool {
	return strings.ContainsAny(s, "#:") || strings.HasPrefix(s, ".") || (strings.HasPrefix(s, "/") && strings.Trim(s, "/") != "")
}

// ParseInstallable reads FLAKEREF[#ATTR], naming what is wrong with it.
func ParseInstallable(s string) (Installable, error) {
	bad := func(why string) (Installable, error) {
		return Installable{}, fmt.Errorf("invalid flake installable %s: %s", quote(flakeref.Redacted(s)), why)
	}
	if strings.IndexFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0 {
		return bad("it holds spaces or control characters")
	}
	flake, attr, hasAttr := strings.Cut(s, "#")
	switch {
	case flake == "":
		return bad("no flake before '#': write FLAKEREF#PACKAGE, e.g. .#app")
	case strings.HasPrefix(flake, "-"):
		return bad("it starts with '-'")
	case hasAttr && attr == "":
		return bad("nothing after '#': name a package, or drop the '#' for the default package")
	case strings.Contains(attr, "#"):
		return bad("more than one '#'")
	case flakeref.ReadAsRegistryName(flake):
		return bad(flakeref.RegistryNameAdvice(flake, strings.TrimPrefix(s, flake)))
	case !isFlakeRef(flake):
		return bad("the flake reference is not a path (., ./dir, /dir) or a URL such as path:, github:, git+https:")
	}
	if hasAttr {
		if err := CheckAttr(attr); err != nil {
			return bad(fmt.Sprintf("the attribute after '#' is not valid (%s)", AttrRule))
		}
	}
	return Installable{Ref: s, Flake: flake, Attr: attr}, nil
}

// isFlakeRef tells whether s is a flake reference Nix reads as one: a
// path, or a URL of one of the flake input types.
func isFlakeRef(s string) bool {
	if s == "." || s == ".." || strings.HasPrefix(s, "./") || strings.HasPrefix(s, "../") || strings.HasPrefix(s, "/") {
		return true
	}
	for _, p := range flakeSchemes {
		if strings.HasPrefix(s, p) && len(s) > len(p) {
			return true
		}
	}
	return false
}

// AllPackages are the nixpkgs attribute paths and the installables'
// references, sorted: everything the image is made of.
func (s *Spec) AllPackages() []string {
	out := append([]string(nil), s.Packages...)
	for _, i := range s.Installables {
		out = append(out, i.Ref)
	}
	return sortedUnique(out)
}
