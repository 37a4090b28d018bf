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
	ranked := popconRank(g, budget-1)
	if rest := len(g.Paths) - len(ranked); rest > 0 {
		// The last layer: every path not ranked in the first budget-1.
		in := make([]bool, len(g.Paths))
		for _, i := range ranked {
			in[i] = true
		}
		for i := range in {
			if !in[i] {
				ranked = append(ranked, i)
			}
		}
	}
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

// popconRank returns the first k paths of g in the order of nixpkgs'
// popularity contest, most popular first.
//
// A path's score is the sum of the walks reaching it and reaching each
// path above it. Scoring every path that way is quadratic, but only the
// first k are needed, and a dependency always scores more than the paths
// that use it. So the ranking is built from the bottom: a path can be next
// only once all of its references are ranked, and only those candidates
// are scored, by a walk up through their users.
func popconRank(g *Graph, k int) []int {
	n := len(g.Paths)
	k = min(k, n)
	// walks[i]: walks from the roots to i. float64, since they grow
	// exponentially with depth.
	walks := make([]float64, n)
	reached := make([]bool, n)
	for _, r := range g.Roots {
		walks[r] = 1
	}
	order := g.TopoOrder() // dependencies first
	for j := n - 1; j >= 0; j-- {
		i := order[j]
		if walks[i] == 0 {
			continue
		}
		reached[i] = true
		for _, r := range g.Refs[i] {
			walks[r] += walks[i]
		}
	}
	users := g.users()
	key := func(i int) string { return nameThenHash(g.Paths[i].Name) }
	mark := make([]int, n)
	for i := range mark {
		mark[i] = -1
	}
	var stack, above []int
	score := func(d int) float64 {
		// The walks of every path above d, added in index order as the
		// whole ranking adds them, so that the sums are the same.
		above = above[:0]
		stack = append(stack[:0], users[d]...)
		for len(stack) > 0 {
			v := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if mark[v] == d {
				continue
			}
			mark[v] = d
			above = append(above, v)
			stack = append(stack, users[v]...)
		}
		sort.Ints(above)
		s := walks[d]
		for _, v := range above {
			if reached[v] {
				s += walks[v]
			}
		}
		return s
	}
	h := &popconHeap{key: key}
	waiting := make([]int, n) // references not yet ranked
	for i := range g.Paths {
		waiting[i] = len(g.Refs[i])
		if waiting[i] == 0 && reached[i] {
			h.push(popconEntry{i, score(i)})
		}
	}
	ranked := make([]int, 0, k)
	for len(ranked) < k && len(h.s) > 0 {
		e := h.pop()
		ranked = append(ranked, e.i)
		for _, u := range users[e.i] {
			if waiting[u]--; waiting[u] == 0 && reached[u] {
				h.push(popconEntry{u, score(u)})
			}
		}
	}
	if len(ranked) < k {
		// Paths the roots do not reach come last, by name then hash.
		var rest []int
		for i := range g.Paths {
			if !reached[i] {
				rest = append(rest, i)
			}
		}
		sort.Slice(rest, func(a, b int) bool { return key(rest[a]) < key(rest[b]) })
		ranked = append(ranked, rest[:k-len(ranked)]...)
	}
	return ranked
}

type popconEntry struct {
	i     int
	score float64
}

// popconHeap yields the highest score first, ties by name then hash.
type popconHeap struct {
	s   []popconEntry
	key func(int) string
}

func (h *popconHeap) before(a, b popconEntry) bool {
	if a.score != b.score {
		return a.score > b.score
	}
	return h.key(a.i) < h.key(b.i)
}

func (h *popconHeap) push(e popconEntry) {
	h.s = append(h.s, e)
	for i := len(h.s) - 1; i > 0; {
		p := (i - 1) / 2
		if !h.before(h.s[i], h.s[p]) {
			break
		}
		h.s[i], h.s[p] = h.s[p], h.s[i]
		i = p
	}
}

func (h *popconHeap) pop() popconEntry {
	top := h.s[0]
	last := len(h.s) - 1
	h.s[0] = h.s[last]
	h.s = h.s[:last]
	for i := 0; ; {
		l, best := 2*i+1, i
		if l < len(h.s) && h.before(h.s[l], h.s[best]) {
			best = l
		}
		if r := l + 1; r < len(h.s) && h.before(h.s[r], h.s[best]) {
			best = r
		}
		if best == i {
			break
		}
		h.s[i], h.s[best] = h.s[best], h.s[i]
		i = best
	}
	return top
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
