// Package layers decides which store paths of a Nix closure go into which
// image layer. A strategy groups the paths; Plan turns the groups into a
// LayerPlan: one layer per group (a Group: its store paths, their size and
// a content key), ordered dependencies first as far as the references
// allow, and never more of them than the budget.
package layers

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/nixery-action/nixery-action/pkg/popularity"
	"github.com/nixery-action/nixery-action/pkg/storepath"
)

// MaxImageLayers is the most layers an image may have: Docker's layer
// store refuses an image of more (maxLayerDepth, ErrMaxDepthExceeded).
const MaxImageLayers = 125

// MaxBudget is the most layers a plan may use: every image has one
// customisation layer on top of the plan's, and the whole must stay
// within MaxImageLayers.
const MaxBudget = MaxImageLayers - 1

// DefaultBudget leaves room under MaxBudget for layers added on top, as
// Nixery does.
const DefaultBudget = 94

// Group is one planned image layer: the store paths that go into it.
type Group struct {
	Key   string   `json:"key"`   // sha256 of the sorted paths, see KeyOf
	Paths []string `json:"paths"` // sorted store paths
	Size  uint64   `json:"size"`  // sum of the paths' NAR sizes
}

// LayerPlan is the ordered list of layers for one closure.
type LayerPlan struct {
	Layers []Group `json:"layers"`
}

// Strategy groups the paths of g into at most budget groups of path
// indexes. Every path must be in exactly one group. Plan checks this, so a
// faulty strategy is an error rather than a wrong image.
type Strategy func(g *Graph, pop popularity.Data, budget int) [][]int

var strategies = map[string]Strategy{}

// DefaultStrategy is the strategy Plan uses when none is named.
var DefaultStrategy = "shared"

func register(name string, s Strategy) { strategies[name] = s }

// Strategies lists the names of the known strategies, sorted.
func Strategies() []string {
	var names []string
	for n := range strategies {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Options tune Plan.
type Options struct {
	Strategy   string          // "" means DefaultStrategy
	Budget     int             // 0 means DefaultBudget
	Popularity popularity.Data // may be nil
}

// Validate checks the strategy name and the budget: a *StrategyError or
// a *BudgetError.
func (o Options) Validate() error {
	if _, ok := strategies[o.Strategy]; o.Strategy != "" && !ok {
		return &StrategyError{Name: o.Strategy}
	}
	if o.Budget != 0 && (o.Budget < 1 || o.Budget > MaxBudget) {
		return &BudgetError{Budget: o.Budget}
	}
	return nil
}

// StrategyError names a strategy that does not exist.
type StrategyError struct{ Name string }

func (e *StrategyError) Error() string {
	return fmt.Sprintf("unknown layering strategy %q: use one of %s", e.Name, strings.Join(Strategies(), ", "))
}

// BudgetError is a layer budget out of range.
type BudgetError struct{ Budget int }

func (e *BudgetError) Error() string {
	return "layer budget " + e.Range()
}

// Range says what is wrong with the budget and, above MaxBudget, why.
func (e *BudgetError) Range() string {
	s := fmt.Sprintf("%d is out of range: use 1 to %d", e.Budget, MaxBudget)
	if e.Budget > MaxBudget {
		s += fmt.Sprintf(" (Docker refuses images of more than %d layers, and the customisation layer on top is one of them)", MaxImageLayers)
	}
	return s
}

// Plan plans the layers of g with the named strategy and checks the
// result: every path in exactly one layer, at most the budget of layers.
// Each of the strategy's groups becomes one layer as it is: Plan orders
// layers, it never merges them.
func Plan(g *Graph, opts Options) (*LayerPlan, error) {
	if g == nil || len(g.Paths) == 0 {
		return nil, fmt.Errorf("no closure graph to plan: read one with ParseGraph")
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	name, budget := opts.Strategy, opts.Budget
	if name == "" {
		name = DefaultStrategy
	}
	if budget == 0 {
		budget = DefaultBudget
	}
	groups := strategies[name](g, opts.Popularity, budget)
	if err := checkGroups(g, groups, budget); err != nil {
		return nil, fmt.Errorf("strategy %q: %w", name, err)
	}
	return newPlan(g, groups, opts.Popularity), nil
}

func checkGroups(g *Graph, groups [][]int, budget int) error {
	if len(groups) > budget {
		return fmt.Errorf("made %d layers for a budget of %d", len(groups), budget)
	}
	seen := make([]bool, len(g.Paths))
	for _, grp := range groups {
		if len(grp) == 0 {
			return fmt.Errorf("made an empty layer")
		}
		for _, i := range grp {
			if i < 0 || i >= len(g.Paths) {
				return fmt.Errorf("made a layer with path index %d out of range", i)
			}
			if seen[i] {
				return fmt.Errorf("put %s in two layers", g.Paths[i].Name)
			}
			seen[i] = true
		}
	}
	for i, ok := range seen {
		if !ok {
			return fmt.Errorf("left %s out of every layer", g.Paths[i].Name)
		}
	}
	return nil
}

// KeyOf is a layer's key: the sha256 of its store paths, each followed by
// a newline, in the order given. Layers pass their paths sorted, so the key
// depends only on which paths a layer holds.
func KeyOf(paths []string) string {
	h := sha256.New()
	for _, p := range paths {
		h.Write([]byte(p))
		h.Write([]byte{'\n'})
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// newPlan makes each group a layer, exactly as the strategy planned it,
// and orders the layers dependencies first as far as the references
// allow. Layer order changes nothing a container sees (store paths never
// overlap), so groups that reference each other in a cycle stay apart:
// they are ordered among themselves, and the cycle as a whole goes where
// a topological order of the groups' condensation puts it.
//
// Among the layers free to go next, the most popular goes first (the
// most popular of its paths, with popularity data; else by key). Order
// matters to a host's layer store (docker, containerd's snapshots,
// podman), which keeps a layer once per chain of layers below it, so two
// images share only the layers of a common prefix: putting what many
// images hold first lengthens those prefixes (docs/layering.md, "In a
// host's layer store").
func newPlan(g *Graph, groups [][]int, pop popularity.Data) *LayerPlan {
	groupOf := make([]int, len(g.Paths))
	for gi, grp := range groups {
		for _, i := range grp {
			groupOf[i] = gi
		}
	}
	// deps[gi]: the groups gi references, without repeats. Groups are at
	// most MaxBudget, so a bitmap per group is small.
	words := (len(groups) + 63) / 64
	bitmap := make([]uint64, len(groups)*words)
	deps := make([][]int, len(groups))
	for gi, grp := range groups {
		row := bitmap[gi*words : (gi+1)*words]
		for _, i := range grp {
			for _, r := range g.Refs[i] {
				if rg := groupOf[r]; rg != gi && row[rg/64]&(1<<(rg%64)) == 0 {
					row[rg/64] |= 1 << (rg % 64)
					deps[gi] = append(deps[gi], rg)
				}
			}
		}
		sort.Ints(deps[gi])
	}
	layers := make([]Group, len(groups))
	for gi, grp := range groups {
		paths := make([]string, len(grp))
		var size uint64
		for k, i := range grp {
			paths[k] = g.Paths[i].Name
			size = addSizes(size, g.Paths[i].NarSize)
		}
		sort.Strings(paths)
		layers[gi] = Group{Key: KeyOf(paths), Paths: paths, Size: size}
	}
	use := make([]int, len(groups))
	if pop != nil {
		for gi, grp := range groups {
			for _, i := range grp {
				use[gi] = max(use[gi], pop[storepath.Name(g.Paths[i].Name)])
			}
		}
	}
	first := func(a, b int) bool {
		if use[a] != use[b] {
			return use[a] > use[b]
		}
		return layers[a].Key < layers[b].Key
	}
	out := make([]Group, 0, len(layers))
	for _, gi := range orderGroups(deps, first) {
		out = append(out, layers[gi])
	}
	return &LayerPlan{Layers: out}
}

// addSizes adds two sizes, stopping at the largest instead of wrapping
// around: NAR sizes come from Nix's output and may be absurd.
func addSizes(a, b uint64) uint64 {
	if a+b < a {
		return math.MaxUint64
	}
	return a + b
}

// orderGroups returns a stable topological order of the condensation of
// the group graph deps: the strongly connected components in an order
// where every component follows those it references; among components
// free to go next, the one whose first group (by less) comes first; within
// a component, the groups by less. The order depends only on the graph and
// less, never on the groups' numbering.
func orderGroups(deps [][]int, less func(a, b int) bool) []int {
	comps := components(deps)
	compOf := make([]int, len(deps))
	for ci, comp := range comps {
		sort.Slice(comp, func(a, b int) bool { return less(comp[a], comp[b]) })
		for _, gi := range comp {
			compOf[gi] = ci
		}
	}
	// Edges between components, counted once each.
	needs := make([]int, len(comps))
	users := make([][]int, len(comps))
	seen := map[[2]int]bool{}
	for gi, ds := range deps {
		for _, d := range ds {
			from, to := compOf[gi], compOf[d]
			if from != to && !seen[[2]int{from, to}] {
				seen[[2]int{from, to}] = true
				needs[from]++
				users[to] = append(users[to], from)
			}
		}
	}
	var ready []int
	for ci := range comps {
		if needs[ci] == 0 {
			ready = append(ready, ci)
		}
	}
	order := make([]int, 0, len(deps))
	for len(ready) > 0 {
		best := 0
		for k := range ready {
			if less(comps[ready[k]][0], comps[ready[best]][0]) {
				best = k
			}
		}
		ci := ready[best]
		ready = append(ready[:best], ready[best+1:]...)
		order = append(order, comps[ci]...)
		for _, u := range users[ci] {
			if needs[u]--; needs[u] == 0 {
				ready = append(ready, u)
			}
		}
	}
	return order
}

// components returns the strongly connected components of the graph deps
// (Tarjan's algorithm; the graph has at most MaxBudget nodes, so
// recursion is shallow).
func components(deps [][]int) [][]int {
	n := len(deps)
	index := make([]int, n)
	low := make([]int, n)
	onStack := make([]bool, n)
	for i := range index {
		index[i] = -1
	}
	var stack []int
	var comps [][]int
	next := 0
	var strong func(v int)
	strong = func(v int) {
		index[v], low[v] = next, next
		next++
		stack = append(stack, v)
		onStack[v] = true
		for _, w := range deps[v] {
			if index[w] < 0 {
				strong(w)
				low[v] = min(low[v], low[w])
			} else if onStack[w] {
				low[v] = min(low[v], index[w])
			}
		}
		if low[v] == index[v] {
			var comp []int
			for {
				w := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				onStack[w] = false
				comp = append(comp, w)
				if w == v {
					break
				}
			}
			comps = append(comps, comp)
		}
	}
	for v := 0; v < n; v++ {
		if index[v] < 0 {
			strong(v)
		}
	}
	return comps
}
