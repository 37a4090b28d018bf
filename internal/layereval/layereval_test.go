package layereval

import (
	"testing"

	"gotest.tools/v3/assert"

	"github.com/nixery-action/nixery-action/pkg/layers"
	"github.com/nixery-action/nixery-action/pkg/popularity"
)

// TestDefaultBeatsTheOthers: on the corpus, the default strategy shares
// better than Nixery's, the popularity contest and auto-layer at every
// budget, without costing more on updates than the best of them, with
// and without popularity data.
func TestDefaultBeatsTheOthers(t *testing.T) {
	c, err := Load("testdata/corpus.json.gz")
	assert.NilError(t, err)
	baselines := []string{"nixery", "popcon", "autolayer"}
	for _, budget := range []int{16, 48, 94} {
		var bestSharing, bestUpdate float64 = 0, 1e9
		for _, b := range baselines {
			for _, pop := range []popularity.Data{nil, c.Popularity()} {
				s, err := Evaluate(c, b, budget, pop)
				assert.NilError(t, err)
				bestSharing = max(bestSharing, s.Sharing)
				bestUpdate = min(bestUpdate, s.UpdateOverhead)
			}
		}
		for _, pop := range []popularity.Data{nil, c.Popularity()} {
			s, err := Evaluate(c, layers.DefaultStrategy, budget, pop)
			assert.NilError(t, err)
			t.Logf("budget %d, popularity %v: sharing %.3f (best other %.3f), update overhead %.3f (best other %.3f)",
				budget, pop != nil, s.Sharing, bestSharing, s.UpdateOverhead, bestUpdate)
			assert.Assert(t, s.Sharing > bestSharing, "budget %d: sharing %.3f, another strategy has %.3f", budget, s.Sharing, bestSharing)
			assert.Assert(t, s.UpdateOverhead <= bestUpdate, "budget %d: update overhead %.3f, another strategy has %.3f", budget, s.UpdateOverhead, bestUpdate)
		}
	}
}

// The metrics on a hand-made corpus: two images share a library; one
// strategy puts everything in one layer, the other each path alone.
func TestMetrics(t *testing.T) {
	c := &Corpus{
		Packages: []Package{
			{Name: "app1", Version: "1", Size: 100, Deps: []string{"lib"}},
			{Name: "app2", Version: "1", Size: 300, Deps: []string{"lib"}},
			{Name: "lib", Version: "1", Size: 600},
		},
		Images:  [][]string{{"app1"}, {"app2"}},
		Updates: []string{"lib"},
	}
	// One layer each: the host pulls lib twice (1000 bytes of paths,
	// 700 + 900 of layers); an update of lib pulls each whole image again
	// while lib and the app above it changed anyway.
	s, err := Evaluate(c, "nixery", 1, nil)
	assert.NilError(t, err)
	assert.Equal(t, s.Sharing, 1000.0/1600.0)
	assert.Equal(t, s.UpdateOverhead, 1.0)
	// Every path alone: nothing is pulled twice.
	s, err = Evaluate(c, "popcon", 94, nil)
	assert.NilError(t, err)
	assert.Equal(t, s.Sharing, 1.0)
	assert.Equal(t, s.UpdateOverhead, 1.0)

	// An update of lib below an unchanged sibling shows as overhead.
	c.Packages = append(c.Packages, Package{Name: "data", Version: "1", Size: 1000})
	c.Packages[0].Deps = []string{"lib", "data"}
	c.Images = [][]string{{"app1"}}
	s, err = Evaluate(c, "nixery", 1, nil)
	assert.NilError(t, err)
	assert.Equal(t, s.UpdateOverhead, 1700.0/700.0)
}
