package layers

// rootSets groups paths by the set of "layer roots" whose closures hold
// them. Roots are tried in the order given; a root is kept when the
// grouping still fits the budget. With alone set, each root is a layer of
// its own, and the other paths are grouped by their root sets.
//
// Root sets are kept as 64-bit signatures: the XOR of a pseudo-random
// number per root, so adding a root to a closure costs one pass over it.
type rootSets struct {
	g      *Graph
	alone  bool
	sig    []uint64
	isRoot []bool
	counts map[uint64]int // signature → paths with it (roots excluded when alone)
	roots  int
	mark   []int
	epoch  int

	// With updown set, paths are also told apart by the roots they
	// depend on, so that a group changes as a whole when a root does.
	updown bool
	down   bool    // only the roots depended on count
	users  [][]int // reverse references
}

func newRootSets(g *Graph, alone bool) *rootSets {
	rs := &rootSets{g: g, alone: alone, sig: make([]uint64, len(g.Paths)), isRoot: make([]bool, len(g.Paths)),
		counts: map[uint64]int{0: len(g.Paths)}, mark: make([]int, len(g.Paths))}
	return rs
}

// layers is how many groups the current roots make.
func (rs *rootSets) layers() int {
	if rs.alone {
		return rs.roots + len(rs.counts)
	}
	return len(rs.counts)
}

func (rs *rootSets) move(i int, to uint64) {
	if !rs.alone || !rs.isRoot[i] {
		from := rs.sig[i]
		if rs.counts[from]--; rs.counts[from] == 0 {
			delete(rs.counts, from)
		}
		rs.counts[to]++
	}
	rs.sig[i] = to
}

// closure lists c and every path it references, directly or not.
func (rs *rootSets) closure(c int) []int { return rs.walk(c, rs.g.Refs) }

// walk lists c and every path reachable from it through edges.
func (rs *rootSets) walk(c int, edges [][]int) []int {
	rs.epoch++
	var out []int
	stack := []int{c}
	for len(stack) > 0 {
		i := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if rs.mark[i] == rs.epoch {
			continue
		}
		rs.mark[i] = rs.epoch
		out = append(out, i)
		stack = append(stack, edges[i]...)
	}
	return out
}

// dependents lists the paths that reference c, directly or not.
func (rs *rootSets) dependents(c int) []int {
	if rs.users == nil {
		rs.users = make([][]int, len(rs.g.Paths))
		for i, refs := range rs.g.Refs {
			for _, r := range refs {
				rs.users[r] = append(rs.users[r], i)
			}
		}
	}
	return rs.walk(c, rs.users)[1:]
}

// try makes c a root if the groups still fit in budget, and reports
// whether it did.
func (rs *rootSets) try(c, budget int) bool {
	if rs.isRoot[c] {
		return true
	}
	bit := splitmix(uint64(c) + 1)
	var members []int
	if !rs.down {
		members = rs.closure(c)
	}
	for _, i := range members {
		rs.move(i, rs.sig[i]^bit)
	}
	var above []int
	downBit := splitmix(uint64(c) + 1 + 1<<40)
	if rs.updown || rs.down {
		above = rs.dependents(c)
		for _, i := range above {
			rs.move(i, rs.sig[i]^downBit)
		}
	}
	if rs.alone {
		// c leaves its group to be a layer of its own.
		if rs.counts[rs.sig[c]]--; rs.counts[rs.sig[c]] == 0 {
			delete(rs.counts, rs.sig[c])
		}
		rs.isRoot[c] = true
		rs.roots++
	}
	if rs.layers() <= budget {
		rs.isRoot[c] = true
		return true
	}
	if rs.alone {
		rs.isRoot[c] = false
		rs.roots--
		rs.counts[rs.sig[c]]++
	}
	for _, i := range members {
		rs.move(i, rs.sig[i]^bit)
	}
	for _, i := range above {
		rs.move(i, rs.sig[i]^downBit)
	}
	return false
}

// groups returns the layers: roots alone (when alone is set), the other
// paths by signature, in order of their first path.
func (rs *rootSets) groups() [][]int {
	var out [][]int
	index := map[uint64]int{}
	for i := range rs.g.Paths {
		if rs.alone && rs.isRoot[i] {
			out = append(out, []int{i})
			continue
		}
		k, ok := index[rs.sig[i]]
		if !ok {
			k = len(out)
			index[rs.sig[i]] = k
			out = append(out, nil)
		}
		out[k] = append(out[k], i)
	}
	return out
}

// splitmix is SplitMix64's output function: a well-mixed number per input.
func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}
