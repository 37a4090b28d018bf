// Package layereval measures layering strategies on a corpus of real
// dependency graphs: how well the layers of many images share on one host,
// and how much an update of one library costs to pull. docs/layering.md
// has the definitions and the figures.
package layereval

import (
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"sort"

	"github.com/nixery-action/nixery-action/pkg/layers"
	"github.com/nixery-action/nixery-action/pkg/popularity"
)

// Corpus is the evaluation data: packages standing in for store paths,
// images as lists of root packages, and libraries to update.
type Corpus struct {
	Source   string     `json:"source"`
	Packages []Package  `json:"packages"`
	Images   [][]string `json:"images"`
	Updates  []string   `json:"updates"`
}

// Package is one store path of the corpus.
type Package struct {
	Name    string   `json:"name"`
	Version string   `json:"version"`
	Size    uint64   `json:"size"` // bytes, as narSize
	Deps    []string `json:"deps"` // references, acyclic
}

// Load reads a gzip'd corpus.
func Load(file string) (*Corpus, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, err
	}
	var c Corpus
	if err := json.NewDecoder(zr).Decode(&c); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return &c, nil
}

// world is the corpus indexed, with store paths for a given updated
// library: a path's hash covers its name, version and its references'
// hashes, so an update changes the library and everything above it.
type world struct {
	pkgs map[string]*Package
}

func newWorld(c *Corpus) *world {
	w := &world{pkgs: map[string]*Package{}}
	for i := range c.Packages {
		w.pkgs[c.Packages[i].Name] = &c.Packages[i]
	}
	return w
}

// closure returns the packages an image holds, sorted.
func (w *world) closure(roots []string) []string {
	seen := map[string]bool{}
	var visit func(string)
	visit = func(n string) {
		if seen[n] {
			return
		}
		seen[n] = true
		for _, d := range w.pkgs[n].Deps {
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

// storePaths names every package of names, with updated's version bumped.
func (w *world) storePaths(names []string, updated string) map[string]string {
	hashes := map[string]string{}
	var hash func(string) string
	hash = func(n string) string {
		if h, ok := hashes[n]; ok {
			return h
		}
		p := w.pkgs[n]
		s := sha256.New()
		fmt.Fprintf(s, "%s\x00%s\x00", p.Name, p.Version)
		if n == updated {
			s.Write([]byte("updated\x00"))
		}
		for _, d := range p.Deps {
			s.Write([]byte(hash(d)))
		}
		h := hex.EncodeToString(s.Sum(nil))[:32]
		hashes[n] = h
		return h
	}
	out := map[string]string{}
	for _, n := range names {
		out[n] = "/nix/store/" + hash(n) + "-" + n + "-" + sanitize(w.pkgs[n].Version)
	}
	return out
}

// sanitize keeps a version to store path name characters.
func sanitize(v string) string {
	b := []byte(v)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_' || c == '+') {
			b[i] = '_'
		}
	}
	return string(b)
}

// image is one image's closure as a layers graph, with its paths' sizes.
type image struct {
	graph *layers.Graph
	sizes map[string]uint64 // store path → bytes
}

func (w *world) image(roots []string, updated string) (*image, error) {
	names := w.closure(roots)
	paths := w.storePaths(names, updated)
	type info struct {
		Path       string   `json:"path"`
		NarSize    uint64   `json:"narSize"`
		References []string `json:"references"`
	}
	infos := make([]info, 0, len(names))
	sizes := map[string]uint64{}
	for _, n := range names {
		p := w.pkgs[n]
		refs := []string{}
		for _, d := range p.Deps {
			refs = append(refs, paths[d])
		}
		infos = append(infos, info{Path: paths[n], NarSize: p.Size, References: refs})
		sizes[paths[n]] = p.Size
	}
	data, err := json.Marshal(infos)
	if err != nil {
		return nil, err
	}
	g, err := layers.ParseGraph(data)
	if err != nil {
		return nil, err
	}
	var rootPaths []string
	for _, r := range roots {
		rootPaths = append(rootPaths, paths[r])
	}
	if err := g.SetRoots(rootPaths); err != nil {
		return nil, err
	}
	return &image{graph: g, sizes: sizes}, nil
}

// Popularity is Nixery's popcount over the whole corpus: for each package,
// how many packages reference it.
func (c *Corpus) Popularity() popularity.Data {
	w := newWorld(c)
	var names []string
	for _, p := range c.Packages {
		names = append(names, p.Name)
	}
	paths := w.storePaths(names, "")
	refs := map[string][]string{}
	for _, p := range c.Packages {
		for _, d := range p.Deps {
			refs[paths[p.Name]] = append(refs[paths[p.Name]], paths[d])
		}
	}
	return popularity.Compute(refs)
}

// Score is how a strategy did at one budget.
type Score struct {
	Strategy   string
	Budget     int
	Popularity bool
	// Sharing is the bytes of distinct store paths over the bytes of
	// distinct layers one host pulls for all the images (1 is perfect).
	Sharing float64
	// UpdateOverhead is the bytes pulled to go from each image to its
	// variant with one library updated, over the bytes of the store paths
	// that changed, summed over all (image, library) pairs where the
	// image holds the library (1 is perfect).
	UpdateOverhead float64
	Layers         float64 // mean layers per image
}

// Evaluate plans every image and update variant with a strategy.
func Evaluate(c *Corpus, strategy string, budget int, pop popularity.Data) (Score, error) {
	w := newWorld(c)
	opts := layers.Options{Strategy: strategy, Budget: budget, Popularity: pop}
	s := Score{Strategy: strategy, Budget: budget, Popularity: pop != nil}

	pathBytes := map[string]uint64{}
	layerBytes := map[string]uint64{}
	var pulled, changed uint64
	var layerCount int
	for _, roots := range c.Images {
		base, err := w.image(roots, "")
		if err != nil {
			return s, err
		}
		plan, err := layers.Build(base.graph, opts)
		if err != nil {
			return s, err
		}
		layerCount += len(plan.Layers)
		have := map[string]bool{}
		for _, l := range plan.Layers {
			layerBytes[l.Key] = l.Size
			have[l.Key] = true
		}
		for p, size := range base.sizes {
			pathBytes[p] = size
		}
		for _, lib := range c.Updates {
			if _, ok := base.graph.Index(w.storePaths([]string{lib}, "")[lib]); !ok {
				continue // the image does not hold it
			}
			variant, err := w.image(roots, lib)
			if err != nil {
				return s, err
			}
			vplan, err := layers.Build(variant.graph, opts)
			if err != nil {
				return s, err
			}
			for _, l := range vplan.Layers {
				if !have[l.Key] {
					pulled += l.Size
				}
			}
			for p, size := range variant.sizes {
				if _, old := base.sizes[p]; !old {
					changed += size
				}
			}
		}
	}
	s.Sharing = float64(sum(pathBytes)) / float64(sum(layerBytes))
	s.UpdateOverhead = float64(pulled) / float64(changed)
	s.Layers = float64(layerCount) / float64(len(c.Images))
	return s, nil
}

func sum(m map[string]uint64) uint64 {
	var t uint64
	for _, v := range m {
		t += v
	}
	return t
}
