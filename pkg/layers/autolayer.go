package layers

// The "autolayer" strategy is nixpkgs' current default for layered
// images: the largest paths in turn become layer roots, and every path is
// grouped with the paths reached from the same set of layer roots. Roots
// are added, largest first, while the groups still fit the budget.

import (
	"sort"

	"github.com/nixery-action/nixery-action/pkg/popularity"
)

func init() { register("autolayer", autolayerStrategy) }

func autolayerStrategy(g *Graph, _ popularity.Data, budget int) [][]int {
	bySize := make([]int, len(g.Paths))
	for i := range bySize {
		bySize[i] = i
	}
	sort.Slice(bySize, func(a, b int) bool {
		x, y := bySize[a], bySize[b]
		if g.Paths[x].NarSize != g.Paths[y].NarSize {
			return g.Paths[x].NarSize > g.Paths[y].NarSize
		}
		return g.Paths[x].Name < g.Paths[y].Name
	})
	return groupByRootSets(g, bySize, budget)
}

// groupByRootSets adds candidates as layer roots in the given order while
// the paths, grouped by the set of roots whose closure holds them, fit in
// budget groups.
func groupByRootSets(g *Graph, candidates []int, budget int) [][]int {
	rs := newRootSets(g, false)
	for _, c := range candidates {
		if !rs.try(c, budget) {
			break
		}
	}
	return rs.groups()
}
