package layereval

import (
	"fmt"
	"math"
	"sort"
	"testing"

	"gotest.tools/v3/assert"

	"github.com/nixery-action/nixery-action/pkg/layers"
	"github.com/nixery-action/nixery-action/pkg/popularity"
	"github.com/nixery-action/nixery-action/pkg/storepath"
)

// baselines are the strategies the default must beat.
var baselines = []string{"nixery", "popcon", "autolayer"}

// budgets are the layer budgets the comparison covers, from very tight
// to the most a build accepts (layers.MaxBudget), and each budget around sharedLowBudget
// (10), below which the default plans as auto-layer does (filling the
// budget auto-layer leaves unused).
var budgets = []int{4, 8, 9, 10, 11, 12, 16, 32, 48, 94, layers.MaxBudget}

// TestDefaultBeatsTheBaselines computes the metrics on the committed
// corpus: at every budget, with and without popularity data, the default
// strategy shares at least as much as Nixery's, the popularity contest and
// auto-layer (each with and without popularity data), and its update
// overhead, for the libraries' updates and for the images' own packages',
// is no worse than auto-layer's.
func TestDefaultBeatsTheBaselines(t *testing.T) {
	c, err := Load("testdata/corpus.json.gz")
	assert.NilError(t, err)
	b, err := NewBench(c)
	assert.NilError(t, err)
	pops := []popularity.Data{nil, c.Popularity()}
	for _, budget := range budgets {
		var bestSharing, autoUpdate, autoOwn float64 = 0, 1e9, 1e9
		var sharer string
		for _, name := range baselines {
			for _, pop := range pops {
				s, err := b.Score(name, budget, pop)
				assert.NilError(t, err)
				if s.Sharing > bestSharing {
					bestSharing, sharer = s.Sharing, name
				}
				if name == "autolayer" {
					autoUpdate = min(autoUpdate, s.UpdateOverhead)
					autoOwn = min(autoOwn, s.OwnUpdateBytes)
				}
			}
		}
		for _, pop := range pops {
			s, err := b.Score(layers.DefaultStrategy, budget, pop)
			assert.NilError(t, err)
			t.Logf("budget %d, popularity %v: sharing %.3f (best baseline %.3f, %s), update overhead %.3f (auto-layer %.3f)",
				budget, pop != nil, s.Sharing, bestSharing, sharer, s.UpdateOverhead, autoUpdate)
			assert.Check(t, s.Sharing >= bestSharing, "budget %d, popularity %v: sharing %.3f, %s has %.3f",
				budget, pop != nil, s.Sharing, sharer, bestSharing)
			assert.Check(t, s.UpdateOverhead <= autoUpdate, "budget %d, popularity %v: update overhead %.3f, auto-layer has %.3f",
				budget, pop != nil, s.UpdateOverhead, autoUpdate)
			// The libraries' updates are what the figure above counts;
			// the images' own packages are updated too, and a plan fitted
			// to the first alone can make the second worse.
			assert.Check(t, s.OwnUpdateBytes <= autoOwn, "budget %d, popularity %v: own packages' update overhead %.3f, auto-layer has %.3f",
				budget, pop != nil, s.OwnUpdateBytes, autoOwn)
			// What a plan of one image cannot know bounds it: the oracle,
			// which knows every image, shares at least as much.
			assert.Check(t, b.OracleSharing(budget) >= s.Sharing, "budget %d, popularity %v: sharing %.3f, the oracle has %.3f",
				budget, pop != nil, s.Sharing, b.OracleSharing(budget))
		}
	}
	// No image of the corpus holds more co-occurrence classes than a
	// runtime's most layers.
	assert.Equal(t, b.OracleSharing(layers.MaxBudget), 1.0)
}

// smallPackages are the packages of the hand-made corpora: two apps on a
// library, one of them also on a data package.
func smallPackages() []Package {
	return []Package{
		{Name: "app1", Version: "1", Size: 100, Deps: []string{"lib"}},
		{Name: "app2", Version: "1", Size: 300, Deps: []string{"data", "lib"}},
		{Name: "lib", Version: "1", Size: 600},
		{Name: "data", Version: "1", Size: 1000},
	}
}

// TestJointOracle: paths held by the same images and changed by the same
// updates share a layer; past the budget, the classes are regrouped by
// the updates that change them, and the rest joins one layer.
func TestJointOracle(t *testing.T) {
	c := &Corpus{
		Packages: smallPackages(),
		Images:   [][]string{{"app1"}, {"app2"}},
		Updates:  []string{"lib", "data"},
	}
	assert.NilError(t, c.check())
	b, err := NewBench(c)
	assert.NilError(t, err)

	// Every class a layer: app1, lib, app2, data. Nothing pulled twice,
	// each update pulls what it changes.
	sharing, update := b.JointOracle(3)
	assert.Equal(t, sharing, 1.0)
	assert.Equal(t, update, 1.0)

	// app2's image has three classes for two layers: regrouped by update
	// they are still three (data, lib, app2), so the lightest two join
	// (lib and app2). Updating data pulls that layer too.
	sharing, update = b.JointOracle(2)
	assert.Equal(t, sharing, 2000.0/2600)
	assert.Assert(t, math.Abs(update-(1+1+1900.0/1300)/3) < 1e-12, update)
}

// TestOracleSharing: classes held by several images keep a layer each,
// the heaviest first; the rest of an image is one layer.
func TestOracleSharing(t *testing.T) {
	c := &Corpus{
		Packages: smallPackages(),
		Images:   [][]string{{"app1"}, {"app2"}, {"data"}},
	}
	assert.NilError(t, c.check())
	b, err := NewBench(c)
	assert.NilError(t, err)

	// lib is held by images 1 and 2, data by 2 and 3: with three layers
	// each class has its own, and nothing is pulled twice.
	assert.Equal(t, b.OracleSharing(3), 1.0)
	// With two, app2's image keeps data (the heavier) and puts lib with
	// app2: {lib} 600, {app1} 100, {data} 1000, {app2, lib} 900.
	assert.Equal(t, b.OracleSharing(2), 2000.0/2600)
	// With one, every image is one layer: 700, 1900 and 1000.
	assert.Equal(t, b.OracleSharing(1), 2000.0/3600)
}

// TestCorpus: the committed corpus is what docs/layering.md describes.
func TestCorpus(t *testing.T) {
	c, err := Load("testdata/corpus.json.gz")
	assert.NilError(t, err)
	assert.Assert(t, len(c.Images) >= 40 && len(c.Images) <= 60, "%d images", len(c.Images))
	assert.Assert(t, len(c.Updates) >= 6, "%d updated libraries", len(c.Updates))
	w := newWorld(c)
	for _, img := range c.Images {
		// Every image holds the always-added leaves.
		assert.DeepEqual(t, img[:2], []string{"nss-cacert", "iana-etc"})
	}
	for _, name := range []string{"nss-cacert", "iana-etc"} {
		assert.Assert(t, w[name] != nil && len(w[name].Deps) == 0, "%s is not a leaf", name)
	}
	for _, u := range c.Updates {
		held := 0
		for _, img := range c.Images {
			if contains(w.closure(img), u) {
				held++
			}
		}
		assert.Assert(t, held > 0, "no image holds %s", u)
	}
}

func contains(sorted []string, s string) bool {
	i := sort.SearchStrings(sorted, s)
	return i < len(sorted) && sorted[i] == s
}

// plan makes a plan of the given layers of store paths, as Build would.
func plan(layersOfPaths ...[]string) *layers.LayerPlan {
	p := &layers.LayerPlan{}
	for _, paths := range layersOfPaths {
		sorted := append([]string(nil), paths...)
		sort.Strings(sorted)
		var size uint64
		for _, s := range sorted {
			size += sizes[s]
		}
		p.Layers = append(p.Layers, layers.Group{Key: layers.KeyOf(sorted), Paths: sorted, Size: size})
	}
	return p
}

var sizes = map[string]uint64{"a": 100, "b": 300, "lib": 600, "lib2": 600, "data": 1000}

func size(p string) uint64 { return sizes[p] }

func TestSharing(t *testing.T) {
	for _, tc := range []struct {
		name  string
		plans []*layers.LayerPlan
		want  float64
	}{
		{"one image", []*layers.LayerPlan{plan([]string{"a", "lib"})}, 1},
		{"same layer twice", []*layers.LayerPlan{plan([]string{"lib"}, []string{"a"}), plan([]string{"lib"}, []string{"b"})}, 1},
		// lib is in two different layers: 1000 bytes of paths, 700 + 900 of layers.
		{"lib in two layers", []*layers.LayerPlan{plan([]string{"a", "lib"}), plan([]string{"b", "lib"})}, 1000.0 / 1600},
		// The same paths in a different grouping are different layers.
		{"regrouped", []*layers.LayerPlan{plan([]string{"a", "lib"}, []string{"b"}), plan([]string{"a"}, []string{"b", "lib"})}, 1000.0 / 2000},
		{"nothing", nil, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, Sharing(tc.plans, size), tc.want)
		})
	}
}

// A host's layer store shares a layer only under the same layers below
// it: the same layers in another order are stored again.
func TestChainSharing(t *testing.T) {
	for _, tc := range []struct {
		name  string
		plans []*layers.LayerPlan
		want  float64
	}{
		{"common prefix", []*layers.LayerPlan{plan([]string{"lib"}, []string{"a"}), plan([]string{"lib"}, []string{"b"})}, 1},
		// lib after a in one image, first in the other: stored twice.
		{"same layer, other prefix", []*layers.LayerPlan{plan([]string{"a"}, []string{"lib"}), plan([]string{"lib"}, []string{"b"})}, 1000.0 / 1600},
		// One image's layers all below the other's: all shared.
		{"one a prefix of the other", []*layers.LayerPlan{plan([]string{"lib"}), plan([]string{"lib"}, []string{"data"})}, 1},
		{"nothing", nil, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, ChainSharing(tc.plans, size), tc.want)
			assert.Check(t, ChainSharing(tc.plans, size) <= Sharing(tc.plans, size))
		})
	}
}

func TestUpdateCost(t *testing.T) {
	for _, tc := range []struct {
		name            string
		from, to        *layers.LayerPlan
		pulled, changed uint64
	}{
		{"nothing changed", plan([]string{"a"}, []string{"lib"}), plan([]string{"lib"}, []string{"a"}), 0, 0},
		// lib changed to lib2 (and a with it, same name here for brevity
		// of the table: b stands for the new a): each alone, exact.
		{"alone", plan([]string{"a"}, []string{"lib"}), plan([]string{"b"}, []string{"lib2"}), 900, 900},
		// data did not change but shares a layer with lib: pulled again.
		{"unchanged neighbour", plan([]string{"lib", "data"}, []string{"a"}), plan([]string{"lib2", "data"}, []string{"a"}), 1600, 600},
		// A regrouping alone pulls bytes although nothing changed.
		{"regrouped", plan([]string{"a", "lib"}, []string{"data"}), plan([]string{"a"}, []string{"lib", "data"}), 1700, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pulled, changed := UpdateCost(tc.from, tc.to, size)
			assert.Equal(t, pulled, tc.pulled)
			assert.Equal(t, changed, tc.changed)
		})
	}
}

// TestScore runs the whole measurement on a hand-made corpus with two
// strategies whose figures are known: everything in one layer, and each
// path alone (any strategy with a budget of at least the closure size).
func TestScore(t *testing.T) {
	c := &Corpus{
		Packages: smallPackages(),
		Images:   [][]string{{"app1"}, {"app2"}},
		Updates:  []string{"lib", "data"},
	}
	assert.NilError(t, c.check())
	b, err := NewBench(c)
	assert.NilError(t, err)

	// Budget 1: each image is one layer. The host pulls lib twice: 2000
	// bytes of paths in 700 + 1900 of layers. Updating lib pulls app1's
	// whole image (700 for 700 changed) and app2's (1900 for 900
	// changed); updating data pulls app2's (1900 for 1300 changed).
	s, err := b.Score("popcon", 1, nil)
	assert.NilError(t, err)
	assert.Equal(t, s.Sharing, 2000.0/2600)
	assert.Equal(t, s.Pairs, 3)
	assert.Equal(t, s.UpdateOverhead, (700.0/700+1900.0/900+1900.0/1300)/3)
	assert.Equal(t, s.UpdateBytes, (700.0+1900+1900)/(700+900+1300))
	// Updating app1 (100 bytes) pulls its image's one layer, 700;
	// updating app2 (300), 1900.
	assert.Equal(t, s.OwnPairs, 2)
	assert.Equal(t, s.OwnUpdateBytes, (700.0+1900)/(100+300))
	assert.Equal(t, s.Layers, 1.0)

	// Each path alone: perfect.
	s, err = b.Score("popcon", 3, nil)
	assert.NilError(t, err)
	assert.Equal(t, s.Sharing, 1.0)
	assert.Equal(t, s.UpdateOverhead, 1.0)
	assert.Equal(t, s.UpdateBytes, 1.0)
	assert.Equal(t, s.OwnUpdateBytes, 1.0)
	assert.Equal(t, s.Layers, 2.5)
}

// TestStorePaths: a path's fake hash is stable, and an update changes the
// library and everything that depends on it, nothing else.
func TestStorePaths(t *testing.T) {
	c := &Corpus{Packages: []Package{
		{Name: "app", Version: "1:2.0-1", Size: 1, Deps: []string{"lib"}},
		{Name: "lib", Version: "1", Size: 1, Deps: []string{"base"}},
		{Name: "base", Version: "1", Size: 1},
		{Name: "other", Version: "1", Size: 1, Deps: []string{"base"}},
	}}
	w := newWorld(c)
	names := []string{"app", "base", "lib", "other"}
	before := w.storePaths(names, "")
	assert.DeepEqual(t, w.storePaths(names, ""), before)
	for _, p := range before {
		assert.Assert(t, storepath.Valid(p), p)
	}
	assert.Assert(t, before["app"][len(storepath.Dir)+33:] == "app-1_2.0-1", before["app"])
	after := w.storePaths(names, "lib")
	for _, n := range names {
		changed := before[n] != after[n]
		assert.Equal(t, changed, n == "app" || n == "lib", fmt.Sprintf("%s changed: %v", n, changed))
	}
}

func TestLoadErrors(t *testing.T) {
	_, err := Load("testdata/missing.json.gz")
	assert.ErrorContains(t, err, "loading the corpus")
	for _, tc := range []struct {
		c    Corpus
		want string
	}{
		{Corpus{Packages: []Package{{Name: "a", Deps: []string{"b"}}}}, "depends on b, which is not in the corpus"},
		{Corpus{Packages: []Package{{Name: "a", Deps: []string{"b"}}, {Name: "b", Deps: []string{"a"}}}}, "dependency cycle"},
		{Corpus{Packages: []Package{{Name: "a"}, {Name: "a"}}}, "appears twice"},
		{Corpus{Packages: []Package{{Name: "a"}}, Images: [][]string{{"b"}}}, "package b is not in the corpus"},
		{Corpus{Packages: []Package{{Name: "a"}}, Updates: []string{"b"}}, "update of b"},
	} {
		assert.ErrorContains(t, tc.c.check(), tc.want)
	}
}
