package layers

// The "shared" strategy, the default, chooses layers that come out the
// same in many images, so that a host pulling several images (or a new
// version of one) fetches little twice. It is measured against Nixery's,
// nixpkgs' popularity contest and auto-layer in docs/layering.md.
//
// A layer is reused only when another image has exactly the same paths,
// so layers must be decided by properties of the paths themselves, which
// are the same in every image that holds them: their size and how widely
// they are used. Both modes below pick "layer roots" in the order of
// size × (1 + use), where use is the path's popularity when popularity
// data is given, else how many paths of this closure reference it.
//
// When the closure is at most four times the budget, every root is a
// layer of its own (the heaviest, most used paths never travel with
// anything), and the other paths are grouped by the set of roots they
// depend on. A path changes exactly when something it depends on does, so
// when a root library is updated each group changes as a whole or not at
// all.
//
// When the closure is larger, giving the budget to single paths would
// leave one huge remainder that every update pulls again. Instead, as in
// nixpkgs' auto-layer, each path is grouped with the paths reached from
// the same set of roots, which splits the closure along its dependency
// structure.
//
// In both modes roots are tried in order and kept while the groups fit the
// budget, so the plan is deterministic and the widest used paths are
// layers of their own in every image.

import (
	"sort"

	"github.com/nixery-action/nixery-action/pkg/popularity"
)

func init() { register("shared", sharedStrategy) }

// sharedSplit is the closure size, in budgets, above which paths are
// grouped by the roots that reach them rather than made single layers.
const sharedSplit = 4

func sharedStrategy(g *Graph, pop popularity.Data, budget int) [][]int {
	singles := len(g.Paths) <= sharedSplit*budget
	use := make([]float64, len(g.Paths))
	if pop != nil {
		for i, p := range g.Paths {
			use[i] = float64(pop[popularity.Name(p.Name)])
		}
	} else {
		for _, refs := range g.Refs {
			for _, r := range refs {
				use[r]++
			}
		}
	}
	weight := make([]float64, len(g.Paths))
	order := make([]int, len(g.Paths))
	for i, p := range g.Paths {
		order[i] = i
		if singles {
			weight[i] = float64(p.NarSize) * (1 + use[i])
		} else {
			weight[i] = float64(p.NarSize)
		}
	}
	sort.Slice(order, func(a, b int) bool {
		x, y := order[a], order[b]
		if weight[x] != weight[y] {
			return weight[x] > weight[y]
		}
		return g.Paths[x].Name < g.Paths[y].Name
	})

	rs := newRootSets(g, singles)
	rs.down = singles
	for _, c := range order {
		// A root that does not fit is skipped; a later, smaller one may.
		// More roots never make fewer groups, so a full budget is final.
		if rs.try(c, budget) && rs.layers() == budget {
			break
		}
	}
	return rs.groups()
}
