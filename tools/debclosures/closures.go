package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/nixery-action/nixery-action/pkg/popularity"
	"github.com/nixery-action/nixery-action/pkg/storepath"
)

// closures are the pkg/layers test closures: file, requested packages,
// and whether to print Nix 2.19's form (an object keyed by store path).
var closures = []struct {
	file   string
	roots  []string
	object bool
}{
	{"debian-podman.json", []string{"podman"}, false},
	{"debian-python3-git-curl.json", []string{"python3", "git", "curl"}, true},
	{"debian-gimp.json", []string{"gimp"}, false},
}

// pathInfo is one entry of `nix path-info --json --recursive --closure-size`.
type pathInfo struct {
	Path        string   `json:"path,omitempty"`
	NarSize     uint64   `json:"narSize"`
	ClosureSize uint64   `json:"closureSize"`
	References  []string `json:"references"`
}

// writeClosures writes the test closures into dir, with the popularity
// of their packages (debian-popularity.json), counted over the whole
// index.
func writeClosures(idx *index, dir string) error {
	deps, err := idx.graph(nil)
	if err != nil {
		return err
	}
	paths := map[string]string{}
	for n := range deps {
		paths[n] = storePath(n, idx.pkgs[n].version)
	}
	refs := map[string][]string{}
	for n, ds := range deps {
		for _, d := range ds {
			refs[paths[n]] = append(refs[paths[n]], paths[d])
		}
	}
	counts := popularity.Compute(refs)
	used := popularity.Data{}
	for _, c := range closures {
		data, members, err := closure(idx, deps, paths, c.roots, c.object)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, c.file), data, 0o644); err != nil {
			return err
		}
		for _, n := range members {
			if k, ok := counts[storepath.Name(paths[n])]; ok {
				used[storepath.Name(paths[n])] = k
			}
		}
	}
	var buf bytes.Buffer
	if err := popularity.Write(&buf, used); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "debian-popularity.json"), buf.Bytes(), 0o644)
}

// storePath makes a store path for a package: a hash made from its name
// and version in Nix's base-32 alphabet, then the name and version with
// the characters Nix does not allow in names replaced.
func storePath(name, version string) string {
	const alphabet = "0123456789abcdfghijklmnpqrsvwxyz"
	sum := sha256.Sum256([]byte(name + " " + version))
	var hash [32]byte
	for i := range hash {
		hash[i] = alphabet[sum[i]%32]
	}
	clean := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("+-._?=", r) {
			return r
		}
		return '_'
	}, name+"-"+version)
	return "/nix/store/" + string(hash[:]) + "-" + clean
}

// closure prints the closure of roots as nix path-info does, and returns
// the packages in it.
func closure(idx *index, deps map[string][]string, paths map[string]string, roots []string, object bool) ([]byte, []string, error) {
	in := map[string]bool{}
	var walk func(n string)
	walk = func(n string) {
		if in[n] {
			return
		}
		in[n] = true
		for _, d := range deps[n] {
			walk(d)
		}
	}
	for _, r := range roots {
		if _, ok := deps[r]; !ok {
			return nil, nil, fmt.Errorf("package %s is not in the index", r)
		}
		walk(r)
	}
	var names []string
	for n := range in {
		names = append(names, n)
	}
	sort.Slice(names, func(a, b int) bool { return paths[names[a]] < paths[names[b]] })
	infos := make([]pathInfo, 0, len(names))
	for _, n := range names {
		i := pathInfo{Path: paths[n], NarSize: idx.pkgs[n].size, ClosureSize: closureSize(idx, deps, n), References: []string{}}
		for _, d := range deps[n] {
			i.References = append(i.References, paths[d])
		}
		sort.Strings(i.References)
		infos = append(infos, i)
	}
	var data []byte
	var err error
	if object {
		obj := map[string]pathInfo{}
		for _, i := range infos {
			p := i.Path
			i.Path = ""
			obj[p] = i
		}
		data, err = json.MarshalIndent(obj, "", "  ")
	} else {
		data, err = json.MarshalIndent(infos, "", "  ")
	}
	if err != nil {
		return nil, nil, err
	}
	return append(data, '\n'), names, nil
}

// closureSize is the sum of the sizes of root's closure.
func closureSize(idx *index, deps map[string][]string, root string) uint64 {
	seen := map[string]bool{}
	var total uint64
	var walk func(n string)
	walk = func(n string) {
		if seen[n] {
			return
		}
		seen[n] = true
		total += idx.pkgs[n].size
		for _, d := range deps[n] {
			walk(d)
		}
	}
	walk(root)
	return total
}
