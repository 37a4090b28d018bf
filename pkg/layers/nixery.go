package layers

// The "nixery" strategy is Nixery's layering, kept as it was designed so
// that images can be compared with Nixery's own:
//
//  1. A fake root points at every requested path. Paths that are big (a
//     closure over 100 MB) or popular (a popularity of 100 or more) get an
//     extra edge from the root, so no single package can own them.
//     cacert and iana-etc, added to every image, count as very popular;
//     names missing from the popularity data count as 1.
//  2. The dominator tree of that graph is computed. Every child of the
//     root starts a layer holding its whole dominated subtree: paths that
//     only it leads to.
//  3. Each layer is rated popularity(child) × the sum of its members'
//     closure sizes. The layers are sorted by rating and, while there are
//     more than the budget, the first two are merged into one that takes
//     the second place. As in Nixery the list is not sorted again after a
//     merge, so the lowest-rated layers collapse into one.
//
// Where this differs from Nixery's code, it is on purpose:
//
//   - Nixery sorted with an unstable sort over nodes in map order, so equal
//     ratings came out in any order. Here ties go to the layer whose
//     smallest store path sorts first, which makes the plan deterministic.
//   - Ratings saturate at the largest uint64 instead of wrapping around.
//   - Paths the requested roots do not reach hang off the fake root too
//     (Nixery's closures never had any), so every path is in a layer.
//
// Merged layers can reference each other both ways (a merged layer holding
// an application and a library that a layer in between needs). Plan keeps
// them apart, as the seed did, and orders the layers dependencies first as
// far as that allows. Without merges this never happens: an edge between
// two dominator subtrees always ends at a subtree's top.

import (
	"math"
	"math/bits"
	"sort"
	"strings"

	"gonum.org/v1/gonum/graph"
	"gonum.org/v1/gonum/graph/flow"
	"gonum.org/v1/gonum/graph/simple"

	"github.com/nixery-action/nixery-action/pkg/popularity"
	"github.com/nixery-action/nixery-action/pkg/storepath"
)

func init() { register("nixery", nixeryStrategy) }

const (
	// bigClosure is the closure size above which a path is hoisted.
	bigClosure = 100 * 1000 * 1000
	// popularEnough is the popularity at or above which a path is hoisted.
	popularEnough = 100
	// alwaysPopular is the popularity of cacert and iana-etc: more than
	// glibc's, since every image has them.
	alwaysPopular = 500000
)

// nixeryPopularity is a path's popularity as Nixery counts it.
func nixeryPopularity(storePath string, pop popularity.Data) int {
	name := storepath.Name(storePath)
	if strings.HasPrefix(name, "nss-cacert") || strings.HasPrefix(name, "iana-etc") {
		return alwaysPopular
	}
	if n, ok := pop[name]; ok {
		return max(n, 0) // Load refuses negative counts; hand-made data might not
	}
	return 1
}

func nixeryStrategy(g *Graph, pop popularity.Data, budget int) [][]int {
	// Node IDs: 0 is the fake root, path i is i+1.
	dg := simple.NewDirectedGraph()
	dg.AddNode(simple.Node(0))
	for i := range g.Paths {
		dg.AddNode(simple.Node(i + 1))
	}
	popOf := make([]int, len(g.Paths))
	for i, p := range g.Paths {
		popOf[i] = nixeryPopularity(p.Name, pop)
	}
	link := func(from, to int64) {
		if !dg.HasEdgeFromTo(from, to) {
			dg.SetEdge(dg.NewEdge(dg.Node(from), dg.Node(to)))
		}
	}
	for _, r := range g.Roots {
		link(0, int64(r+1))
	}
	// Paths the requested roots do not reach hang off the root too, so
	// every path of the graph is in a layer.
	for _, r := range g.unreferenced() {
		link(0, int64(r+1))
	}
	for i, p := range g.Paths {
		if p.ClosureSize > bigClosure || popOf[i] >= popularEnough {
			link(0, int64(i+1))
		}
		for _, r := range g.Refs[i] {
			link(int64(i+1), int64(r+1))
		}
	}
	dt := flow.Dominators(dg.Node(0), dg)

	type layer struct {
		members []int
		rating  uint64
		first   string // smallest store path, for ties
	}
	var layers []layer
	for _, top := range sortedNodes(dt.DominatedBy(0)) {
		var members []int
		var size uint64
		queue := []graph.Node{top}
		for head := 0; head < len(queue); head++ {
			n := queue[head]
			i := int(n.ID() - 1)
			members = append(members, i)
			size = addSat(size, g.Paths[i].ClosureSize)
			queue = append(queue, dt.DominatedBy(n.ID())...) // members are sorted below
		}
		sort.Ints(members)
		ti := int(top.ID() - 1)
		layers = append(layers, layer{members: members, rating: mulSat(uint64(popOf[ti]), size), first: g.Paths[members[0]].Name})
	}
	sort.SliceStable(layers, func(a, b int) bool {
		if layers[a].rating != layers[b].rating {
			return layers[a].rating < layers[b].rating
		}
		return layers[a].first < layers[b].first
	})
	for len(layers) > budget {
		// Append the smaller member list to the larger: the front layer
		// keeps growing, and copying it each time would be quadratic.
		small, big := layers[0].members, layers[1].members
		if len(small) > len(big) {
			small, big = big, small
		}
		layers[1].members = append(big, small...)
		layers[1].rating = addSat(layers[1].rating, layers[0].rating)
		layers = layers[1:]
	}
	groups := make([][]int, len(layers))
	for i, l := range layers {
		groups[i] = l.members
	}
	return groups
}

// sortedNodes orders nodes by ID, so map order inside gonum never shows.
func sortedNodes(nodes []graph.Node) []graph.Node {
	out := append([]graph.Node(nil), nodes...)
	sort.Slice(out, func(a, b int) bool { return out[a].ID() < out[b].ID() })
	return out
}

// addSat and mulSat are + and × that stop at the largest uint64.
func addSat(a, b uint64) uint64 {
	s, carry := bits.Add64(a, b, 0)
	if carry != 0 {
		return math.MaxUint64
	}
	return s
}

func mulSat(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	if hi != 0 {
		return math.MaxUint64
	}
	return lo
}
