// Package layereval measures layering strategies on a corpus of real
// dependency graphs: how much of what one host pulls for many images is
// shared, and how much an update of one library costs to pull.
// docs/layering.md has the definitions and the figures.
package layereval

import (
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/nixery-action/nixery-action/pkg/layers"
	"github.com/nixery-action/nixery-action/pkg/popularity"
	"github.com/nixery-action/nixery-action/pkg/storepath"
)

// Corpus is the evaluation data: packages standing in for store paths,
// images as lists of requested packages, and libraries to update.
type Corpus struct {
	Source   string     `json:"source"`
	Packages []Package  `json:"packages"`
	Images   [][]string `json:"images"`  // each image's requested packages
	Updates  []string   `json:"updates"` // libraries to update, one at a time
}

// Package is one store path of the corpus.
type Package struct {
	Name    string   `json:"name"`
	Version string   `json:"version"`
	Size    uint64   `json:"size"`           // bytes, as narSize
	Deps    []string `json:"deps,omitempty"` // references; the corpus is acyclic
}

// Load reads a gzip'd JSON corpus and checks that it is complete and
// acyclic.
func Load(file string) (*Corpus, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("loading the corpus: %w", err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("loading the corpus %s: %w", file, err)
	}
	var c Corpus
	if err := json.NewDecoder(zr).Decode(&c); err != nil {
		return nil, fmt.Errorf("loading the corpus %s: %w", file, err)
	}
	if err := c.check(); err != nil {
		return nil, fmt.Errorf("corpus %s: %w", file, err)
	}
	return &c, nil
}

func (c *Corpus) check() error {
	known := map[string]*Package{}
	for i := range c.Packages {
		p := &c.Packages[i]
		if known[p.Name] != nil {
			return fmt.Errorf("package %s appears twice", p.Name)
		}
		known[p.Name] = p
	}
	for _, p := range c.Packages {
		for _, d := range p.Deps {
			if known[d] == nil {
				return fmt.Errorf("package %s depends on %s, which is not in the corpus", p.Name, d)
			}
		}
	}
	for _, img := range c.Images {
		for _, r := range img {
			if known[r] == nil {
				return fmt.Errorf("image %v: package %s is not in the corpus", img, r)
			}
		}
	}
	for _, u := range c.Updates {
		if known[u] == nil {
			return fmt.Errorf("update of %s, which is not in the corpus", u)
		}
	}
	state := map[string]int{}
	var cyclic func(string) bool
	cyclic = func(n string) bool {
		switch state[n] {
		case 1:
			return true
		case 2:
			return false
		}
		state[n] = 1
		for _, d := range known[n].Deps {
			if cyclic(d) {
				return true
			}
		}
		state[n] = 2
		return false
	}
	for _, p := range c.Packages {
		if cyclic(p.Name) {
			return fmt.Errorf("dependency cycle through %s", p.Name)
		}
	}
	return nil
}

// world is the corpus indexed by package name.
type world map[string]*Package

func newWorld(c *Corpus) world {
	w := world{}
	for i := range c.Packages {
		w[c.Packages[i].Name] = &c.Packages[i]
	}
	return w
}

// closure returns the packages an image holds, sorted.
func (w world) closure(roots []string) []string {
	seen := map[string]bool{}
	var visit func(string)
	visit = func(n string) {
		if seen[n] {
			return
		}
		seen[n] = true
		for _, d := range w[n].Deps {
			visit(d)
		}
	}
	for _, r := range roots {
		visit(r)
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// storePaths names packages as store paths, /nix/store/<hash>-<name>-<version>.
// The fake hash covers the name, the version and the hashes of the
// references, as Nix's does, so it is stable, and when updated (a package
// name, or "") changes, so does every path that depends on it.
func (w world) storePaths(names []string, updated string) map[string]string {
	hashes := map[string]string{}
	var hash func(string) string
	hash = func(n string) string {
		if h, ok := hashes[n]; ok {
			return h
		}
		p := w[n]
		s := sha256.New()
		fmt.Fprintf(s, "%s\x00%s\x00", p.Name, p.Version)
		if n == updated {
			s.Write([]byte("updated\x00"))
		}
		for _, d := range p.Deps {
			fmt.Fprintf(s, "%s\x00", hash(d))
		}
		h := hex.EncodeToString(s.Sum(nil))[:32]
		hashes[n] = h
		return h
	}
	out := make(map[string]string, len(names))
	for _, n := range names {
		out[n] = storepath.Dir + hash(n) + "-" + n + "-" + storeName(w[n].Version)
	}
	return out
}

// storeName keeps a version to the characters a store path name allows.
func storeName(v string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("+-._?=", r) {
			return r
		}
		return '_'
	}, v)
}

// graph is one image's closure as a layers graph, and its store paths'
// sizes.
func (w world) graph(roots []string, updated string) (*layers.Graph, map[string]uint64, error) {
	names := w.closure(roots)
	paths := w.storePaths(names, updated)
	type info struct {
		Path       string   `json:"path"`
		NarSize    uint64   `json:"narSize"`
		References []string `json:"references"`
	}
	infos := make([]info, 0, len(names))
	sizes := make(map[string]uint64, len(names))
	for _, n := range names {
		p := w[n]
		refs := make([]string, 0, len(p.Deps))
		for _, d := range p.Deps {
			refs = append(refs, paths[d])
		}
		infos = append(infos, info{Path: paths[n], NarSize: p.Size, References: refs})
		sizes[paths[n]] = p.Size
	}
	data, err := json.Marshal(infos)
	if err != nil {
		return nil, nil, err
	}
	g, err := layers.ParseGraph(data)
	if err != nil {
		return nil, nil, fmt.Errorf("image %v: %w", roots, err)
	}
	var rootPaths []string
	for _, r := range roots {
		rootPaths = append(rootPaths, paths[r])
	}
	if err := g.SetRoots(rootPaths); err != nil {
		return nil, nil, fmt.Errorf("image %v: %w", roots, err)
	}
	return g, sizes, nil
}

// Popularity is Nixery's popcount over the whole corpus: for each
// package, how many packages reference it.
func (c *Corpus) Popularity() popularity.Data {
	w := newWorld(c)
	var names []string
	for _, p := range c.Packages {
		names = append(names, p.Name)
	}
	paths := w.storePaths(names, "")
	refs := map[string][]string{}
	for _, p := range c.Packages {
		refs[paths[p.Name]] = nil
		for _, d := range p.Deps {
			refs[paths[p.Name]] = append(refs[paths[p.Name]], paths[d])
		}
	}
	return popularity.Compute(refs)
}
