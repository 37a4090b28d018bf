package layers

// The "popcon" strategy is nixpkgs' popularity contest
// (referencesByPopularity), how dockerTools' layered images were cut until
// 2024. It ranks the paths, gives each of the first budget-1 a layer of
// its own and puts all the others in one last layer.
//
// The rank follows nixpkgs' closure-graph.py. The graph is unrolled into
// a tree from the requested roots, a path appearing once per walk that
// reaches it. A path scores the number of walks reaching it plus, for
// every path above it, the walks reaching that one. Since a dependency
// always scores more than the paths that use it, the single-path layers
// are closed under references and the last layer only depends on them.
// Paths with equal scores are ordered by name, then hash: the store path
// with its hash moved after the name. Paths the roots do not reach come
// last, in the same name order.

import (
	"sort"
	"strings"

	"github.com/nixery-action/nixery-action/pkg/popularity"
)

func init() { register("popcon", popconStrategy) }

func popconStrategy(g *Graph, _ popularity.Data, budget int) [][]int {
	ranked := popconRank(g)
	var groups [][]int
	for len(ranked) > 0 && len(groups) < budget-1 {
		groups = append(groups, ranked[:1])
		ranked = ranked[1:]
	}
	if len(ranked) > 0 {
		groups = append(groups, ranked)
	}
	return groups
}

// popconRank orders the paths of g as nixpkgs' popularity contest does,
// most popular first.
func popconRank(g *Graph) []int {
	n := len(g.Paths)
	// walks[i]: walks from the roots to i. float64, since they grow
	// exponentially with depth.
	walks := make([]float64, n)
	reached := make([]bool, n)
	for _, r := range g.Roots {
		walks[r] = 1
	}
	order := g.TopoOrder() // dependencies first
	for k := n - 1; k >= 0; k-- {
		i := order[k]
		if walks[i] == 0 {
			continue
		}
		reached[i] = true
		for _, r := range g.Refs[i] {
			walks[r] += walks[i]
		}
	}
	// Each reached path adds its walks to every path below it.
	score := append([]float64(nil), walks...)
	mark := make([]int, n)
	for i := range mark {
		mark[i] = -1
	}
	var stack []int
	for v := 0; v < n; v++ {
		if !reached[v] {
			continue
		}
		stack = append(stack[:0], g.Refs[v]...)
		for len(stack) > 0 {
			d := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if mark[d] == v {
				continue
			}
			mark[d] = v
			score[d] += walks[v]
			stack = append(stack, g.Refs[d]...)
		}
	}
	key := make([]string, n)
	for i, p := range g.Paths {
		key[i] = nameThenHash(p.Name)
	}
	ranked := make([]int, n)
	for i := range ranked {
		ranked[i] = i
	}
	sort.Slice(ranked, func(a, b int) bool {
		x, y := ranked[a], ranked[b]
		if reached[x] != reached[y] {
			return reached[x]
		}
		if score[x] != score[y] {
			return score[x] > score[y]
		}
		return key[x] < key[y]
	})
	return ranked
}

// nameThenHash is nixpkgs' sort key for equally popular paths:
// "/nix/store/<hash>-<name>" becomes "<name>-/nix/store/<hash>".
func nameThenHash(path string) string {
	head, name, ok := strings.Cut(path, "-")
	if !ok {
		return path
	}
	return name + "-" + head
}
