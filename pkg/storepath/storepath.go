// Package storepath knows the shape of Nix store paths: the store
// directory, which paths are top-level store paths, and the package name
// a path stands for. Every other package asks it rather than parsing
// paths itself.
package storepath

import (
	"sort"
	"strings"
)

// Dir is the Nix store directory every image holds its paths under.
const Dir = "/nix/store/"

// Valid reports whether p names a top-level store path,
// /nix/store/<hash>-<name> with no further slashes, in Nix's store path
// characters.
func Valid(p string) bool {
	base, ok := strings.CutPrefix(p, Dir)
	if !ok || base == "" || strings.ContainsRune(base, '/') || base == "." || base == ".." {
		return false
	}
	for _, r := range base {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("+-._?=", r)) {
			return false
		}
	}
	return true
}

// nixBase32 are the characters of Nix's base-32 hashes: digits and
// lower-case letters without e, o, u and t.
const nixBase32 = "0123456789abcdfghijklmnpqrsvwxyz"

// maxNameLen is the longest name Nix allows after the hash and dash.
const maxNameLen = 211

// ValidBase reports whether base is a store path's base name exactly as
// Nix makes them: 32 nix-base32 characters, a dash, and a name of at most
// 211 store path characters that does not start with a dot. Text from
// outside (a binary cache's narinfo References) is checked with it before
// it is used as a path.
func ValidBase(base string) bool {
	hash, name, ok := strings.Cut(base, "-")
	if !ok || len(hash) != 32 || name == "" || len(name) > maxNameLen || name[0] == '.' {
		return false
	}
	for _, r := range hash {
		if !strings.ContainsRune(nixBase32, r) {
			return false
		}
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("+-._?=", r)) {
			return false
		}
	}
	return true
}

// Exact reports whether p is a top-level store path exactly as Nix makes
// them: Valid, with a base that is ValidBase.
func Exact(p string) bool {
	return Valid(p) && ValidBase(strings.TrimPrefix(p, Dir))
}

// Full puts the store directory in front of a path given as its base name
// only (hash-name), as narinfo References list them.
func Full(p string) string {
	if p != "" && !strings.ContainsRune(p, '/') {
		return Dir + p
	}
	return p
}

// Name is the name a store path stands for: its base name without the
// hash, so "/nix/store/<hash>-openssl-3.0.13" becomes "openssl-3.0.13".
// A base name alone gives the same; a name without a hash part is
// returned whole.
func Name(p string) string {
	base := strings.TrimRight(p, "/")
	base = base[strings.LastIndexByte(base, '/')+1:]
	if i := strings.IndexByte(base, '-'); i > 0 {
		return base[i+1:]
	}
	return base
}

// PackageNames are the sorted, distinct names of store paths.
func PackageNames(paths []string) []string {
	seen := map[string]bool{}
	var names []string
	for _, p := range paths {
		if n := Name(p); !seen[n] {
			seen[n] = true
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}
