package layers

// The "shared" strategy, the default, cuts a closure into layers that
// other images, and the next build of the same image, are likely to have
// too. A layer is reused only when its exact set of store paths is, so
// every decision is made from properties of the paths themselves (their
// sizes, their closures, how widely they are used, their names), which
// are the same in every image that holds them, rather than from what else
// happens to be in this one.
//
// # Algorithm
//
// Every path starts as a layer of its own. That is the ideal: nothing is
// ever pulled twice and an update pulls exactly what changed. While there
// are more layers than the budget, the two layers whose merging costs
// least are merged:
//
//  1. Protected paths are never merged. They are the heaviest paths by
//     size × √(1 + use), where use is the path's popularity when
//     popularity data is given and otherwise how many paths of the
//     closure reference it: big, widely used paths are the bytes other
//     images most likely share, so they keep a layer of their own in every
//     image. Half the budget goes to them.
//
//  2. The cost of merging layers A and B is what the merge adds to the
//     bytes updates pull. A layer changes when one of its paths, or
//     anything they depend on, is updated; call those paths D(A). Once
//     merged, an update in D(B) but not in D(A) pulls A as well, and the
//     other way round, so the cost is size(A)·|D(B)∖D(A)| +
//     size(B)·|D(A)∖D(B)|, counted over the paths of the closure as the
//     ones that may be updated (above 512 paths, over a sample of them
//     chosen by a hash of their names), plus a small charge on the bytes
//     merged so that light layers merge first. The candidates are a layer
//     and a layer it references, and two layers with a common user (the
//     image is the user of the paths nothing references). The cheapest
//     merges therefore gather paths that change together: a library and
//     its private dependencies, packages built from the same inputs.
//
//  3. A merge that would make the layers reference each other in a cycle
//     (one of the two reaches the other through a third layer) is
//     skipped, so the plan never has to merge layers to break a cycle.
//
// The cost depends only on the paths in the two layers, so images make
// the same cheap merges among the paths they have in common; only how far
// the merging goes depends on the image, through the budget. Ties go by
// store path names, so the plan is deterministic. Each merge costs a few
// operations on 512-bit sets and a heap, so 10,000 paths take a fraction
// of a second.

import (
	"hash/fnv"
	"math"
	"math/bits"
	"sort"

	"github.com/nixery-action/nixery-action/pkg/popularity"
	"github.com/nixery-action/nixery-action/pkg/storepath"
)

func init() { register("shared", sharedStrategy) }

const (
	// sharedProtected is the share of the budget that goes to protected
	// paths.
	sharedProtected = 0.5
	// sharedSizeCharge is what merging costs per byte merged, in the
	// cost's unit (bytes pulled per possible update).
	sharedSizeCharge = 0.01
	// sharedProbes is the most paths whose updates the cost counts.
	sharedProbes = 512
	// sharedFanout is the most layers one layer is paired with as
	// siblings at a time, so that a path with thousands of references
	// does not cost millions of pairs.
	sharedFanout = 256
	// sharedEager is the most neighbours a layer made by a merge may have
	// for its merges to be offered at once; a busier layer's merges are
	// offered again as their stale offers come up, which bounds the work
	// of a merge into a big layer.
	sharedEager = 16
	// sharedDirect is the most paths the merges proper start from; a
	// bigger closure is coarsened to this many layers first.
	sharedDirect = 1024
	// sharedLowBudget is the budget below which shared plans as
	// auto-layer does, filling the budget auto-layer leaves unused from
	// the image's own paths: with so few layers, half of them protected
	// leaves too few for the rest, and auto-layer's groups (the biggest
	// paths each with what only they use) share more on the corpus at
	// budgets 4 to 9; from 10 on, shared's own merges share more and pull
	// less on updates (docs/layering.md).
	sharedLowBudget = 10
)

func sharedStrategy(g *Graph, pop popularity.Data, budget int) [][]int {
	if budget < sharedLowBudget {
		return autolayer(g, budget, true)
	}
	if len(g.Paths) <= budget {
		groups := make([][]int, len(g.Paths))
		for i := range groups {
			groups[i] = []int{i}
		}
		return groups
	}
	m := newMerger(g, pop, budget)
	m.run(budget)
	return m.groups()
}

// merger holds the layers being merged. A layer is known by the index of
// the path it started from; a dead layer has been merged into another.
type merger struct {
	dn      [][]uint64 // per layer: D, as a set of probes
	probes  float64    // how many paths D counts
	size    []float64  // per layer: bytes
	first   []int      // per layer: its smallest path index, for ties
	mem     [][]int    // per layer: its paths
	alive   []bool
	prot    []bool
	ver     []int32         // per layer: bumped by every merge, to spot stale candidates
	out     []map[int]int32 // per layer: the layers it references, with edge counts
	in      []map[int]int32 // per layer: the layers that reference it, with edge counts
	count   int             // live layers
	heap    candidates
	purgeAt int               // heap length at which stale candidates are dropped
	tops    []int             // layers nothing references (some may be stale)
	orphans []int             // layers whose neighbours are all protected (some may be stale)
	rep     []int32           // per layer: the layer it was merged into, or itself
	pushed  map[uint64]uint64 // per pair of layers: their versions when last offered
}

func newMerger(g *Graph, pop popularity.Data, budget int) *merger {
	n := len(g.Paths)
	m := &merger{
		size: make([]float64, n), first: make([]int, n), mem: make([][]int, n),
		alive: make([]bool, n), prot: make([]bool, n), ver: make([]int32, n),
		out: make([]map[int]int32, n), in: make([]map[int]int32, n),
		count: n, heap: make(candidates, 0, 16*n), purgeAt: 16 * n,
		rep: make([]int32, n), pushed: map[uint64]uint64{},
	}
	for i := range m.rep {
		m.rep[i] = int32(i)
	}
	fanin := make([]int, n)
	for i := range g.Paths {
		m.out[i] = make(map[int]int32, len(g.Refs[i]))
		m.in[i] = map[int]int32{}
	}
	for i, refs := range g.Refs {
		for _, r := range refs {
			m.out[i][r] = 1
			m.in[r][i] = 1
			fanin[r]++
		}
	}
	for i, p := range g.Paths {
		m.size[i] = float64(p.NarSize)
		m.first[i] = i
		m.mem[i] = []int{i}
		m.alive[i] = true
	}
	m.closures(g)
	m.protect(g, pop, fanin, int(sharedProtected*float64(budget)))

	if n > sharedDirect {
		m.coarsen(sharedDirect)
	}

	// The first candidates: references, and the references of a common
	// user, the image using the paths nothing references.
	for i := range m.alive {
		if !m.alive[i] {
			continue
		}
		if len(m.in[i]) == 0 {
			m.tops = append(m.tops, i)
		}
		if m.orphan(i) {
			m.orphans = append(m.orphans, i)
		}
	}
	// Coarsened layers have many neighbours: fewer of their siblings are
	// offered.
	fanout := sharedFanout
	if n > sharedDirect {
		fanout = sharedEager
	}
	m.pairAll(m.tops, fanout)
	m.pairAll(m.orphans, fanout)
	for i := range m.alive {
		if !m.alive[i] {
			continue
		}
		refs := sortedKeys32(m.out[i])
		for _, r := range refs {
			m.push(i, r)
		}
		m.pairAll(refs, fanout)
	}
	return m
}

// closures fills D for every path, over the probes: all paths, or those
// whose names hash lowest, so that images of a big closure count the
// same packages.
func (m *merger) closures(g *Graph) {
	n := len(g.Paths)
	bit := make([]int, n)
	if n <= sharedProbes {
		for i := range bit {
			bit[i] = i
		}
		m.probes = float64(n)
	} else {
		type hashed struct {
			h uint64
			i int
		}
		hs := make([]hashed, n)
		for i, p := range g.Paths {
			f := fnv.New64a()
			f.Write([]byte(storepath.Name(p.Name)))
			hs[i] = hashed{f.Sum64(), i}
			bit[i] = -1
		}
		sort.Slice(hs, func(a, b int) bool {
			if hs[a].h != hs[b].h {
				return hs[a].h < hs[b].h
			}
			return hs[a].i < hs[b].i
		})
		for k, h := range hs[:sharedProbes] {
			bit[h.i] = k
		}
		m.probes = sharedProbes
	}
	words := (int(m.probes) + 63) / 64
	backing := make([]uint64, n*words)
	m.dn = make([][]uint64, n)
	for _, i := range g.TopoOrder() { // references first
		d := backing[i*words : (i+1)*words : (i+1)*words]
		if b := bit[i]; b >= 0 {
			d[b/64] |= 1 << (b % 64)
		}
		for _, r := range g.Refs[i] {
			for w, v := range m.dn[r] {
				d[w] |= v
			}
		}
		m.dn[i] = d
	}
}

// protect marks the k heaviest paths by size × √(1 + use).
func (m *merger) protect(g *Graph, pop popularity.Data, fanin []int, k int) {
	weight := make([]float64, len(g.Paths))
	rank := make([]int, len(g.Paths))
	for i, p := range g.Paths {
		use := float64(fanin[i])
		if pop != nil {
			use = float64(pop[storepath.Name(p.Name)])
		}
		weight[i] = float64(p.NarSize) * math.Sqrt(1+use)
		rank[i] = i
	}
	sort.Slice(rank, func(a, b int) bool {
		x, y := rank[a], rank[b]
		if weight[x] != weight[y] {
			return weight[x] > weight[y]
		}
		return x < y
	})
	for _, i := range rank[:min(k, len(rank))] {
		m.prot[i] = true
	}
}

// cost is what merging layers a and b adds to the bytes an update pulls,
// on average over the probes, plus the charge on the bytes merged.
func (m *merger) cost(a, b int) float64 {
	var onlyA, onlyB int
	da, db := m.dn[a], m.dn[b]
	for w := range da {
		onlyA += bits.OnesCount64(da[w] &^ db[w])
		onlyB += bits.OnesCount64(db[w] &^ da[w])
	}
	return (m.size[a]*float64(onlyB)+m.size[b]*float64(onlyA))/m.probes + sharedSizeCharge*(m.size[a]+m.size[b])
}

// find returns the live layer that layer a is now part of.
func (m *merger) find(a int) int {
	r := a
	for int(m.rep[r]) != r {
		r = int(m.rep[r])
	}
	for int(m.rep[a]) != r {
		next := int(m.rep[a])
		m.rep[a] = int32(r)
		a = next
	}
	return r
}

// push offers the merge of layers a and b, unless it is on offer already.
func (m *merger) push(a, b int) {
	if a == b || !m.alive[a] || !m.alive[b] || m.prot[a] || m.prot[b] {
		return
	}
	if m.first[a] > m.first[b] {
		a, b = b, a
	}
	key := uint64(a)<<32 | uint64(b)
	vers := uint64(m.ver[a])<<32 | uint64(m.ver[b])
	if v, ok := m.pushed[key]; ok && v == vers {
		return
	}
	m.pushed[key] = vers
	m.heap.push(m.candidate(a, b))
}

// candidate is the offer of merging layers a and b as they are now.
func (m *merger) candidate(a, b int) candidate {
	return candidate{cost: m.cost(a, b), a: int32(a), b: int32(b),
		fa: int32(m.first[a]), fb: int32(m.first[b]), va: m.ver[a], vb: m.ver[b]}
}

// pairAll offers the merges of the first fanout layers of ls with each
// other.
func (m *merger) pairAll(ls []int, fanout int) {
	ls = ls[:min(len(ls), fanout)]
	for x := range ls {
		for y := x + 1; y < len(ls); y++ {
			m.push(ls[x], ls[y])
		}
	}
}

// pairWith adds layer a to the list *ls, drops the entries keep rejects,
// and offers the merges of a with the last sharedFanout of them.
func (m *merger) pairWith(ls *[]int, a int, keep func(int) bool) {
	live := (*ls)[:0]
	for _, x := range *ls {
		if x != a && keep(x) {
			live = append(live, x)
		}
	}
	*ls = append(live, a)
	for _, x := range live[max(0, len(live)-sharedFanout):] {
		m.push(a, x)
	}
}

// run merges until the layers fit the budget.
func (m *merger) run(budget int) {
	for m.count > budget {
		if len(m.heap) == 0 {
			m.fallback()
			continue
		}
		if len(m.heap) >= m.purgeAt {
			m.purge()
		}
		c := m.heap.pop()
		a, b := int(c.a), int(c.b)
		if !m.alive[a] || !m.alive[b] || m.ver[a] != c.va || m.ver[b] != c.vb {
			// Stale: one of them has changed since. Offer the merge of
			// what they are now part of, at its current cost.
			m.push(m.find(a), m.find(b))
			continue
		}
		m.merge(a, b)
	}
}

// purge renews the stale candidates in place, drops the ones on offer
// already, and rebuilds the heap.
func (m *merger) purge() {
	old := m.heap
	m.heap = make(candidates, 0, len(old))
	for _, c := range old {
		a, b := int(c.a), int(c.b)
		if m.alive[a] && m.alive[b] && m.ver[a] == c.va && m.ver[b] == c.vb {
			m.heap = append(m.heap, c)
		}
	}
	for _, c := range old {
		a, b := m.find(int(c.a)), m.find(int(c.b))
		if a == b || m.prot[a] || m.prot[b] {
			continue
		}
		if m.first[a] > m.first[b] {
			a, b = b, a
		}
		key := uint64(a)<<32 | uint64(b)
		vers := uint64(m.ver[a])<<32 | uint64(m.ver[b])
		if v, ok := m.pushed[key]; ok && v == vers {
			continue // the current offer is in the heap, kept above
		}
		m.pushed[key] = vers
		m.heap = append(m.heap, m.candidate(a, b))
	}
	for i := len(m.heap)/2 - 1; i >= 0; i-- {
		m.heap.down(i)
	}
	m.purgeAt = max(2*len(m.heap), m.purgeAt)
}

// fallback makes merging possible again when no candidate is left and
// the layers still exceed the budget, which only tiny budgets come to:
// first by lifting the protection, then by offering the layers that
// follow each other in a topological order, which can always merge
// without a cycle.
func (m *merger) fallback() {
	lifted := false
	for i, p := range m.prot {
		if p && m.alive[i] {
			m.prot[i] = false
			lifted = true
		}
	}
	order := m.topoOrder()
	if lifted {
		for _, i := range order {
			for _, o := range sortedKeys32(m.out[i]) {
				m.push(i, o)
			}
		}
		if len(m.heap) > 0 {
			return
		}
	}
	for k := 1; k < len(order); k++ {
		m.push(order[k-1], order[k])
	}
}

// topoOrder lists the live layers, referenced layers first.
func (m *merger) topoOrder() []int {
	var order []int
	done := make([]bool, len(m.alive))
	var visit func(int)
	visit = func(i int) {
		if done[i] {
			return
		}
		done[i] = true
		for _, o := range sortedKeys32(m.out[i]) {
			visit(o)
		}
		order = append(order, i)
	}
	for i, ok := range m.alive {
		if ok {
			visit(i)
		}
	}
	return order
}

func sortedKeys32(s map[int]int32) []int {
	keys := make([]int, 0, len(s))
	for k := range s {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	return keys
}

// join merges layer b into layer a, or a into b, whichever has fewer
// paths, and returns the layer that lives on.
func (m *merger) join(a, b int) int {
	if len(m.mem[a]) < len(m.mem[b]) {
		a, b = b, a
	}
	m.mem[a] = append(m.mem[a], m.mem[b]...)
	m.mem[b] = nil
	for w, v := range m.dn[b] {
		m.dn[a][w] |= v
	}
	m.size[a] += m.size[b]
	m.first[a] = min(m.first[a], m.first[b])
	m.alive[b] = false
	m.rep[b] = int32(a)
	m.count--
	m.ver[a]++
	m.ver[b]++
	for o, k := range m.out[b] {
		delete(m.in[o], b)
		if o != a {
			m.out[a][o] += k
			m.in[o][a] += k
		}
	}
	for i, k := range m.in[b] {
		delete(m.out[i], b)
		if i != a {
			m.in[a][i] += k
			m.out[i][a] += k
		}
	}
	delete(m.out[a], b)
	delete(m.in[a], b)
	m.out[b], m.in[b] = nil, nil

	return a
}

// merge merges layers a and b, and offers the merges the new layer makes
// possible. The layer with fewer paths is the one that dies.
func (m *merger) merge(a, b int) {
	a = m.join(a, b)

	// Offer the new layer's merges with its neighbours and siblings now,
	// unless it has many: then its older offers, made stale by the merge,
	// are renewed one by one as they come up. The heap orders candidates
	// completely, so the order of pushing does not matter.
	if len(m.out[a])+len(m.in[a]) <= sharedEager {
		for o := range m.out[a] {
			m.push(a, o)
		}
		for i := range m.in[a] {
			m.push(i, a)
			if len(m.out[i]) <= sharedEager {
				for s := range m.out[i] {
					m.push(a, s)
				}
			}
		}
	}
	if len(m.in[a]) == 0 {
		m.pairWith(&m.tops, a, func(t int) bool { return m.alive[t] && len(m.in[t]) == 0 })
	}
	if m.orphan(a) {
		// Nothing else to merge with: other such layers are.
		m.pairWith(&m.orphans, a, func(o int) bool { return m.alive[o] })
	}
}

// orphan reports whether every neighbour of layer a is protected.
func (m *merger) orphan(a int) bool {
	if m.prot[a] {
		return false
	}
	for o := range m.out[a] {
		if !m.prot[o] {
			return false
		}
	}
	for i := range m.in[a] {
		if !m.prot[i] {
			return false
		}
	}
	return true
}

// groups returns the live layers' paths.
func (m *merger) groups() [][]int {
	var out [][]int
	for i, ok := range m.alive {
		if ok {
			sort.Ints(m.mem[i])
			out = append(out, m.mem[i])
		}
	}
	return out
}

// candidate is a merge on offer, with the versions of the two layers its
// cost was computed for.
type candidate struct {
	cost   float64
	a, b   int32
	fa, fb int32 // the layers' smallest path indexes, for ties
	va, vb int32
}

func (c *candidate) less(d *candidate) bool {
	if c.cost != d.cost {
		return c.cost < d.cost
	}
	if c.fa != d.fa {
		return c.fa < d.fa
	}
	if c.fb != d.fb {
		return c.fb < d.fb
	}
	// Offers for layers since merged away may tie with current ones:
	// order them too, so the heap order never depends on push order.
	if c.a != d.a {
		return c.a < d.a
	}
	if c.b != d.b {
		return c.b < d.b
	}
	if c.va != d.va {
		return c.va < d.va
	}
	return c.vb < d.vb
}

// candidates is a binary min-heap.
type candidates []candidate

func (h *candidates) push(c candidate) {
	s := append(*h, c)
	i := len(s) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !c.less(&s[p]) {
			break
		}
		s[i] = s[p]
		i = p
	}
	s[i] = c
	*h = s
}

func (h *candidates) pop() candidate {
	s := *h
	top := s[0]
	s[0] = s[len(s)-1]
	*h = s[:len(s)-1]
	h.down(0)
	return top
}

// down moves the candidate at i down to its place.
func (h candidates) down(i int) {
	if i >= len(h) {
		return
	}
	c := h[i]
	for {
		l := 2*i + 1
		if l >= len(h) {
			break
		}
		if r := l + 1; r < len(h) && h[r].less(&h[l]) {
			l = r
		}
		if !h[l].less(&c) {
			break
		}
		h[i] = h[l]
		i = l
	}
	h[i] = c
}

// coarsen brings a big closure down to about target layers before the
// merges proper, in rounds that each pair most layers once, so that the
// merges proper, whose offers grow faster than the layers, start from few
// layers. In a round, every layer not yet paired, lightest first, is
// paired with the neighbour (a layer it references or one that
// references it) whose merge costs least, as the merges proper would
// price it; then the layers left unpaired that share a user (the image,
// for the layers nothing references) are paired with each other, in
// order of size. Protected paths stay alone. Closures of up to
// sharedDirect paths, every image of the comparison corpus, never come
// here.
func (m *merger) coarsen(target int) {
	n := len(m.alive)
	paired := make([]bool, n)
	for m.count > target {
		before := m.count
		clear(paired)
		var order []int
		for i, ok := range m.alive {
			if ok && !m.prot[i] {
				order = append(order, i)
			}
		}
		lighter := func(a, b int) bool {
			if m.size[a] != m.size[b] {
				return m.size[a] < m.size[b]
			}
			return m.first[a] < m.first[b]
		}
		sort.Slice(order, func(x, y int) bool { return lighter(order[x], order[y]) })
		free := func(b int) bool { return m.alive[b] && !m.prot[b] && !paired[b] }
		for _, a := range order {
			if m.count <= target {
				return
			}
			if !free(a) {
				continue
			}
			best, bestCost := -1, 0.0
			consider := func(b int) {
				if b == a || !free(b) {
					return
				}
				c := m.cost(a, b)
				if best < 0 || c < bestCost || c == bestCost && m.first[b] < m.first[best] {
					best, bestCost = b, c
				}
			}
			for o := range m.out[a] {
				consider(o)
			}
			for i := range m.in[a] {
				consider(i)
			}
			if best >= 0 {
				paired[m.join(a, best)] = true
			}
		}
		// Siblings: the unpaired layers each user references, and the
		// unpaired layers nothing references, lightest first, in pairs.
		pairUp := func(ls []int) {
			var free2 []int
			for _, x := range ls {
				if free(x) {
					free2 = append(free2, x)
				}
			}
			sort.Slice(free2, func(x, y int) bool { return lighter(free2[x], free2[y]) })
			for k := 0; k+1 < len(free2) && m.count > target; k += 2 {
				paired[m.join(free2[k], free2[k+1])] = true
			}
		}
		var tops []int
		for i, ok := range m.alive {
			if ok && len(m.in[i]) == 0 {
				tops = append(tops, i)
			}
		}
		pairUp(tops)
		for u := range m.alive {
			if m.count <= target {
				return
			}
			if m.alive[u] {
				pairUp(sortedKeys32(m.out[u]))
			}
		}
		if m.count > before-before/100 {
			return // no longer worth it: the merges proper take over
		}
	}
}
