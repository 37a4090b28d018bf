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
	"math/bits"
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
// only once all of its references are ranked. Even those candidates are
// many in a big closure (every path using only base libraries is one), so
// each waits with a cheap upper bound on its score and is scored, by a
// walk up through its users, only when that bound comes out on top: a
// path whose score is higher than the others' bounds is ahead of them.
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
	// Sort keys are made once, when first compared: the heap compares
	// often.
	keys := make([]string, n)
	key := func(i int) string {
		if keys[i] == "" {
			keys[i] = nameThenHash(g.Paths[i].Name)
		}
		return keys[i]
	}
	// up[start[i]:start[i+1]]: the reached users of i, in one array so
	// that the walks up stay in few cache lines. The users of a path the
	// roots do not reach are not reached either, so those walks need no
	// other paths.
	start := make([]int32, n+1)
	for i, refs := range g.Refs {
		if reached[i] {
			for _, r := range refs {
				start[r+1]++
			}
		}
	}
	for i := range n {
		start[i+1] += start[i]
	}
	up := make([]int32, start[n])
	next := append([]int32(nil), start[:n]...)
	for i, refs := range g.Refs {
		if reached[i] {
			for _, r := range refs {
				up[next[r]] = int32(i)
				next[r]++
			}
		}
	}
	// seen: the paths above the path being scored, one bit each, so that
	// they are summed in index order without sorting them.
	seen := make([]uint64, (n+63)/64)
	var stack []int32
	score := func(d int) float64 {
		// The walks of every path above d, added in index order as the
		// whole ranking adds them, so that the sums are the same.
		lo, hi := len(seen), 0
		stack = append(stack[:0], int32(d))
		for len(stack) > 0 {
			v := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			for _, u := range up[start[v]:start[v+1]] {
				if w, b := u>>6, uint64(1)<<(u&63); seen[w]&b == 0 {
					seen[w] |= b
					lo, hi = min(lo, int(w)), max(hi, int(w))
					stack = append(stack, u)
				}
			}
		}
		s := walks[d]
		for w := lo; w <= hi; w++ {
			for word := seen[w]; word != 0; word &= word - 1 {
				s += walks[w<<6|bits.TrailingZeros64(word)]
			}
			seen[w] = 0
		}
		return s
	}
	bound := popconBounds(g, order, users, walks, reached)
	h := &popconHeap{key: key}
	waiting := make([]int, n) // references not yet ranked
	for i := range g.Paths {
		waiting[i] = len(g.Refs[i])
		if waiting[i] == 0 && reached[i] {
			h.push(popconEntry{i, bound[i], true})
		}
	}
	ranked := make([]int, 0, k)
	for len(ranked) < k && len(h.s) > 0 {
		e := h.pop()
		if e.bound {
			h.push(popconEntry{e.i, score(e.i), false})
			continue
		}
		ranked = append(ranked, e.i)
		for _, u := range users[e.i] {
			if waiting[u]--; waiting[u] == 0 && reached[u] {
				h.push(popconEntry{u, bound[u], true})
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

// popconEntry is a path waiting to be ranked, with its score or, until it
// reaches the top of the heap, an upper bound on its score.
type popconEntry struct {
	i     int
	score float64
	bound bool
}

// popconBounds returns, for every reached path, an upper bound on its
// score as popconRank's score sums it, cheap enough to have for all
// paths at once. Two bounds are taken, both computed users first:
//
//   - a path's walks plus the bounds of its users: every path above it
//     is above one of its users;
//   - its walks times one plus the number of paths above it: none of
//     those has more walks than it has (a walk to one of them continues
//     to it), and that number is bounded by the users' numbers plus one,
//     added up, and by the number of reached paths.
//
// The bounds are for the sums as real numbers; each one is raised by
// a margin far above the rounding errors of adding n floats, so that
// they also bound the sums as float64 adds them.
func popconBounds(g *Graph, order []int, users [][]int, walks []float64, reached []bool) []float64 {
	n := len(g.Paths)
	nr := 0
	for _, r := range reached {
		if r {
			nr++
		}
	}
	anc := make([]float64, n)
	ub := make([]float64, n)
	margin := 1 + 1e-12*float64(n)
	for j := n - 1; j >= 0; j-- {
		u := order[j]
		if !reached[u] {
			continue
		}
		a, p := 0.0, walks[u]
		for _, w := range users[u] {
			if reached[w] {
				a += 1 + anc[w]
				p += ub[w]
			}
		}
		a = min(a, float64(nr-1))
		anc[u] = a
		ub[u] = min(p, walks[u]*(1+a)) * margin
	}
	return ub
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
