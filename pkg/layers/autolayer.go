package layers

// The "autolayer" strategy is nixpkgs' auto-layer (dockerTools'
// auto-layer.py, the default layering of 2025), redone here:
//
// Every path carries a label, the set of "primary" paths it is grouped
// under, and paths with equal labels share a layer. At first there are no
// primaries and one layer. The largest path not yet primary becomes one:
// it gets a layer of its own, and each path it depends on drops from its
// label the primaries that depend on the new one (they reach the path
// through it now) and, unless its label still holds a primary the new one
// depends on, takes the new one in. This repeats, largest first, until
// the next primary would make more layers than the budget; that split is
// discarded and the last one kept.
//
// auto-layer.py pops the largest path from a stable sort by size, so of
// equally large paths the one listed last goes first; here, the one whose
// store path sorts last.

import (
	"sort"

	"github.com/nixery-action/nixery-action/pkg/popularity"
)

func init() { register("autolayer", autolayerStrategy) }

func autolayerStrategy(g *Graph, _ popularity.Data, budget int) [][]int {
	return autolayer(g, budget, false)
}

// fillTries bounds the paths autolayer looks at after the first primary
// that overflows, when it fills.
const fillTries = 64

// autolayer is auto-layer; with fill, once a primary overflows the
// budget, it goes on down the sizes for primaries that fit and take only
// paths no primary holds yet (the image's own remainder, which holds its
// roots and so recurs in no other image). The layers that could recur
// stay as they are, and the budget auto-layer leaves unused splits the
// remainder, so an update in one part of it pulls less.
func autolayer(g *Graph, budget int, fill bool) [][]int {
	n := len(g.Paths)
	bySize := make([]int, n)
	for i := range bySize {
		bySize[i] = i
	}
	sort.Slice(bySize, func(a, b int) bool {
		x, y := bySize[a], bySize[b]
		if g.Paths[x].NarSize != g.Paths[y].NarSize {
			return g.Paths[x].NarSize > g.Paths[y].NarSize
		}
		return x > y
	})
	users := g.users()

	labels := newLabels(n)
	inDeps := make([]bool, n)
	isUser := make([]bool, n)
	overflowed, tries := false, 0
	for _, p := range bySize {
		if overflowed {
			if tries++; tries > fillTries {
				break
			}
			if len(labels.of[p]) > 0 {
				continue
			}
		}
		deps := walkFrom(p, g.Refs)
		if overflowed && !unlabelled(labels, deps) {
			continue
		}
		above := walkFrom(p, users)
		for _, d := range deps {
			inDeps[d] = true
		}
		for _, u := range above {
			isUser[u] = true
		}
		labels.begin()
		labels.set(p, []int{p})
		for _, d := range deps {
			var next []int
			shared := false
			for _, q := range labels.of[d] {
				if isUser[q] {
					continue
				}
				next = append(next, q)
				shared = shared || inDeps[q]
			}
			if !shared {
				next = insertSorted(next, p)
			}
			labels.set(d, next)
		}
		for _, d := range deps {
			inDeps[d] = false
		}
		for _, u := range above {
			isUser[u] = false
		}
		if labels.count() > budget {
			labels.undo()
			if !fill {
				break
			}
			overflowed = true
		}
	}
	return labels.groups()
}

// users returns, for every path, the paths that reference it.
func (g *Graph) users() [][]int {
	users := make([][]int, len(g.Paths))
	for i, refs := range g.Refs {
		for _, r := range refs {
			users[r] = append(users[r], i)
		}
	}
	return users
}

// walkFrom lists the paths reachable from p through edges, p excluded.
func walkFrom(p int, edges [][]int) []int {
	seen := map[int]bool{p: true}
	var out []int
	stack := append([]int(nil), edges[p]...)
	for len(stack) > 0 {
		i := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[i] {
			continue
		}
		seen[i] = true
		out = append(out, i)
		stack = append(stack, edges[i]...)
	}
	sort.Ints(out)
	return out
}

// unlabelled tells whether no primary holds any of paths.
func unlabelled(l *labels, paths []int) bool {
	for _, p := range paths {
		if len(l.of[p]) > 0 {
			return false
		}
	}
	return true
}

func insertSorted(s []int, v int) []int {
	k := sort.SearchInts(s, v)
	s = append(s, 0)
	copy(s[k+1:], s[k:])
	s[k] = v
	return s
}

// labels maps every path to a sorted set of path indexes, counts the
// distinct sets, and can undo the changes since begin.
type labels struct {
	of     [][]int
	counts map[string]int
	log    []labelChange
}

type labelChange struct {
	path int
	old  []int
}

func newLabels(n int) *labels {
	return &labels{of: make([][]int, n), counts: map[string]int{"": n}}
}

func labelKey(set []int) string {
	b := make([]byte, 0, 4*len(set))
	for _, v := range set {
		b = append(b, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
	}
	return string(b)
}

func (l *labels) begin() { l.log = l.log[:0] }

func (l *labels) set(path int, set []int) {
	l.log = append(l.log, labelChange{path, l.of[path]})
	l.move(path, set)
}

func (l *labels) move(path int, set []int) {
	old := labelKey(l.of[path])
	if l.counts[old]--; l.counts[old] == 0 {
		delete(l.counts, old)
	}
	l.counts[labelKey(set)]++
	l.of[path] = set
}

func (l *labels) undo() {
	for k := len(l.log) - 1; k >= 0; k-- {
		l.move(l.log[k].path, l.log[k].old)
	}
	l.log = l.log[:0]
}

func (l *labels) count() int { return len(l.counts) }

// groups lists the paths by label, in the order of each label's first path.
func (l *labels) groups() [][]int {
	index := map[string]int{}
	var out [][]int
	for i, set := range l.of {
		k := labelKey(set)
		gi, ok := index[k]
		if !ok {
			gi = len(out)
			index[k] = gi
			out = append(out, nil)
		}
		out[gi] = append(out[gi], i)
	}
	return out
}
