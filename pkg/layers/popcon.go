package layers

// The "popcon" strategy is nixpkgs' popularity contest, the layering of
// dockerTools.buildLayeredImage and streamLayeredImage until 2024: every
// path is scored by the number of distinct walks from the image's roots to
// it, the budget-1 highest scored paths get a layer each, and everything
// else shares the last layer. Ties go to the greater store path name, as
// nixpkgs sorts by (score, name) in reverse.

import (
	"sort"

	"github.com/nixery-action/nixery-action/pkg/popularity"
)

func init() { register("popcon", popconStrategy) }

func popconStrategy(g *Graph, _ popularity.Data, budget int) [][]int {
	order := g.TopoOrder() // dependencies first
	walks := make([]float64, len(g.Paths))
	for _, r := range g.Roots {
		walks[r] = 1
	}
	for _, r := range g.unreferenced() {
		walks[r] = max(walks[r], 1)
	}
	// Dependents before dependencies, so each path's count is final
	// before it is passed on. float64: walk counts grow exponentially.
	for k := len(order) - 1; k >= 0; k-- {
		i := order[k]
		for _, r := range g.Refs[i] {
			walks[r] += walks[i]
		}
	}
	ranked := make([]int, len(g.Paths))
	for i := range ranked {
		ranked[i] = i
	}
	sort.Slice(ranked, func(a, b int) bool {
		x, y := ranked[a], ranked[b]
		if walks[x] != walks[y] {
			return walks[x] > walks[y]
		}
		return g.Paths[x].Name > g.Paths[y].Name
	})
	var groups [][]int
	for len(ranked) > 0 && len(groups) < budget-1 {
		groups = append(groups, []int{ranked[0]})
		ranked = ranked[1:]
	}
	if len(ranked) > 0 {
		groups = append(groups, ranked)
	}
	return groups
}
