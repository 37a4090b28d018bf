package layereval

import (
	"sort"
	"strings"
	"testing"

	"gonum.org/v1/gonum/graph/flow"
	"gonum.org/v1/gonum/graph/simple"
	"gotest.tools/v3/assert"

	"github.com/nixery-action/nixery-action/pkg/layers"
	"github.com/nixery-action/nixery-action/pkg/popularity"
	"github.com/nixery-action/nixery-action/pkg/storepath"
)

// seedGroups restates the seed's layering (Nixery's groupLayers) step by
// step, on the same library the seed used, to check the nixery strategy
// against: a fake root pointing at the requested paths and at every path
// whose closureSize (as the input gives it) exceeds 100 MB or whose
// popularity is at least 100; the dominator tree; a layer per subtree
// below the root, rated the popularity of its top × the sum of its
// members' closureSize; the layers sorted by rating, and the first two
// merged into the second place until they fit the budget.
//
// The seed sorts with sort.Slice, which leaves equal ratings in no
// particular order. Here ties are broken in a fixed order: by the layer's
// smallest store path, ascending (reverse: descending), so that the
// comparison is defined.
func seedGroups(g *layers.Graph, pop popularity.Data, budget int, reverse bool) []string {
	dg := simple.NewDirectedGraph()
	root := simple.Node(0)
	dg.AddNode(root)
	popOf := make([]uint64, len(g.Paths))
	for i, p := range g.Paths {
		dg.AddNode(simple.Node(i + 1))
		name := storepath.Name(p.Name)
		switch c, ok := pop[name]; {
		case strings.HasPrefix(name, "nss-cacert") || strings.HasPrefix(name, "iana-etc"):
			popOf[i] = 500000
		case ok:
			popOf[i] = uint64(c)
		default:
			popOf[i] = 1
		}
	}
	for _, r := range g.Roots {
		dg.SetEdge(dg.NewEdge(root, simple.Node(r+1)))
	}
	for i, p := range g.Paths {
		if (p.ClosureSize > 100*1000000 || popOf[i] >= 100) && !dg.HasEdgeFromTo(0, int64(i+1)) {
			dg.SetEdge(dg.NewEdge(root, simple.Node(i+1)))
		}
		for _, r := range g.Refs[i] {
			dg.SetEdge(dg.NewEdge(simple.Node(i+1), simple.Node(r+1)))
		}
	}
	dt := flow.Dominators(root, dg)
	type layer struct {
		paths  []string
		rating uint64
	}
	var ls []layer
	for _, top := range dt.DominatedBy(0) {
		ti := int(top.ID() - 1)
		size := g.Paths[ti].ClosureSize
		paths := []string{g.Paths[ti].Name}
		children := dt.DominatedBy(top.ID())
		for k := 0; k < len(children); k++ {
			ci := int(children[k].ID() - 1)
			size += g.Paths[ci].ClosureSize
			paths = append(paths, g.Paths[ci].Name)
			children = append(children, dt.DominatedBy(children[k].ID())...)
		}
		sort.Strings(paths)
		ls = append(ls, layer{paths, popOf[ti] * size})
	}
	sort.Slice(ls, func(a, b int) bool {
		if ls[a].rating != ls[b].rating {
			return ls[a].rating < ls[b].rating
		}
		return (ls[a].paths[0] < ls[b].paths[0]) != reverse
	})
	for len(ls) > budget {
		ls[1] = layer{append(append([]string(nil), ls[0].paths...), ls[1].paths...), ls[0].rating + ls[1].rating}
		ls = ls[1:]
	}
	var out []string
	for _, l := range ls {
		sort.Strings(l.paths)
		out = append(out, strings.Join(l.paths, " "))
	}
	sort.Strings(out)
	return out
}

func planGroups(p *layers.LayerPlan) []string {
	var out []string
	for _, l := range p.Layers {
		out = append(out, strings.Join(l.Paths, " "))
	}
	sort.Strings(out)
	return out
}

// TestNixeryIsTheSeeds: on every closure of the corpus (each image and
// each update variant), with and without popularity data, at budgets 20,
// 40 and 94, `nixery` plans the seed's layers, ties broken by smallest
// store path. The issue asks for at least 95%; the strategy is the same
// algorithm, so anything short of all of them is a bug. The test also
// counts the closures whose seed plan depends on the tie order at all.
func TestNixeryIsTheSeeds(t *testing.T) {
	c, err := Load("testdata/corpus.json.gz")
	assert.NilError(t, err)
	b, err := NewBench(c)
	assert.NilError(t, err)
	var graphs []*layers.Graph
	for _, img := range b.images {
		graphs = append(graphs, img.graph)
		graphs = append(graphs, img.variants...)
	}
	for _, pop := range []popularity.Data{nil, c.Popularity()} {
		for _, budget := range []int{20, 40, 94} {
			same, tied := 0, 0
			for _, g := range graphs {
				plan, err := layers.Plan(g, layers.Options{Strategy: "nixery", Budget: budget, Popularity: pop})
				assert.NilError(t, err)
				want := seedGroups(g, pop, budget, false)
				if strings.Join(planGroups(plan), "\n") == strings.Join(want, "\n") {
					same++
				}
				if strings.Join(seedGroups(g, pop, budget, true), "\n") != strings.Join(want, "\n") {
					tied++
				}
			}
			t.Logf("budget %d, popularity %v: the seed's layers on %d of %d closures; %d depend on how ties are broken",
				budget, pop != nil, same, len(graphs), tied)
			assert.Assert(t, float64(same) >= 0.95*float64(len(graphs)), "budget %d, popularity %v: %d of %d", budget, pop != nil, same, len(graphs))
			assert.Equal(t, same, len(graphs), "budget %d, popularity %v", budget, pop != nil)
		}
	}
}
