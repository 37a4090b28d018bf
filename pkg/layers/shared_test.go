package layers

import (
	"fmt"
	"math"
	"sort"
	"testing"

	"gotest.tools/v3/assert"

	"github.com/nixery-action/nixery-action/pkg/popularity"
)

func TestSharedFits(t *testing.T) {
	g := graphOf(t, randomClosure(1, 30))
	groups := sharedStrategy(g, nil, 30)
	assert.Equal(t, len(groups), 30)
	for _, grp := range groups {
		assert.Equal(t, len(grp), 1)
	}
}

// TestSharedAcyclic: the plan has exactly the layers the strategy made,
// all of the budget from sharedLowBudget up; below, auto-layer's, with
// one of them (the remainder no primary holds) split within the budget.
func TestSharedAcyclic(t *testing.T) {
	for seed := int64(1); seed <= 6; seed++ {
		infos := randomClosure(seed, 100+int(seed)*90)
		for _, pop := range []popularity.Data{nil, popularityOf(infos)} {
			for _, budget := range []int{1, 2, 3, 5, 16, 48, 94} {
				t.Run(fmt.Sprintf("seed %d pop %v budget %d", seed, pop != nil, budget), func(t *testing.T) {
					g := graphOf(t, infos)
					groups := sharedStrategy(g, pop, budget)
					if budget < sharedLowBudget {
						splitsOne(t, groups, autolayerStrategy(g, pop, budget), budget)
					} else {
						assert.Equal(t, len(groups), budget)
					}
					plan, err := Plan(g, Options{Strategy: "shared", Budget: budget, Popularity: pop})
					assert.NilError(t, err)
					assert.Equal(t, len(plan.Layers), len(groups), "layers were merged to break a cycle")
				})
			}
		}
	}
}

// splitsOne checks that groups are base's, but for one of base's that
// groups split into several, at most budget in all.
func splitsOne(t *testing.T, groups, base [][]int, budget int) {
	t.Helper()
	assert.Assert(t, len(groups) >= len(base) && len(groups) <= budget, "%d groups from %d, budget %d", len(groups), len(base), budget)
	key := func(g []int) string { return fmt.Sprint(g) }
	kept := map[string]bool{}
	for _, g := range base {
		kept[key(g)] = true
	}
	var split []int
	matched := 0
	for _, g := range groups {
		if kept[key(g)] {
			matched++
			continue
		}
		split = append(split, g...)
	}
	if matched == len(base) {
		assert.Equal(t, len(split), 0)
		return
	}
	assert.Equal(t, matched, len(base)-1, "more than one of auto-layer's groups changed")
	sort.Ints(split)
	found := false
	for _, g := range base {
		found = found || key(g) == key(split)
	}
	assert.Assert(t, found, "the groups that changed are not one of auto-layer's split")
}

// TestSharedProtects: the half of the budget with the heaviest paths by
// size × √(1 + use) keeps a layer each.
func TestSharedProtects(t *testing.T) {
	infos := randomClosure(5, 600)
	g := graphOf(t, infos)
	const budget = 48
	fanin := make([]int, len(g.Paths))
	for _, refs := range g.Refs {
		for _, r := range refs {
			fanin[r]++
		}
	}
	heaviest := make([]int, len(g.Paths))
	for i := range heaviest {
		heaviest[i] = i
	}
	weight := func(i int) float64 { return float64(g.Paths[i].NarSize) * math.Sqrt(1+float64(fanin[i])) }
	sort.Slice(heaviest, func(a, b int) bool { return weight(heaviest[a]) > weight(heaviest[b]) })
	alone := map[int]bool{}
	for _, grp := range sharedStrategy(g, nil, budget) {
		if len(grp) == 1 {
			alone[grp[0]] = true
		}
	}
	for _, i := range heaviest[:budget/2] {
		assert.Assert(t, alone[i], "%s is not alone", g.Paths[i].Name)
	}
}

// TestSharedUsesPopularity: a small path that popularity data says is
// used everywhere keeps its own layer; without the data it is merged.
func TestSharedUsesPopularity(t *testing.T) {
	var infos []info
	var refs []string
	for i := 0; i < 16; i++ {
		name := fmt.Sprintf("big%02d", i)
		infos = append(infos, info{Path: storePath(name), NarSize: 1 << 20, References: []string{storePath("zpopular")}})
		refs = append(refs, storePath(name))
	}
	infos = append(infos,
		info{Path: storePath("app"), NarSize: 1000, References: refs},
		info{Path: storePath("zpopular"), NarSize: 100 << 10})
	for _, tc := range []struct {
		pop   popularity.Data
		alone bool
	}{
		{nil, false},
		{popularity.Data{"zpopular": 100000}, true},
	} {
		g := graphOf(t, infos)
		i, _ := g.Index(storePath("zpopular"))
		alone := false
		for _, grp := range sharedStrategy(g, tc.pop, sharedLowBudget) {
			alone = alone || (len(grp) == 1 && grp[0] == i)
		}
		assert.Equal(t, alone, tc.alone, "popularity %v", tc.pop)
	}
}

// TestSharedCost: the cost of merging two layers is what updates would
// pull in addition, per path of the closure that may be updated.
func TestSharedCost(t *testing.T) {
	// app → lib → base; app → data.
	g := graphOf(t, []info{
		{Path: storePath("app"), NarSize: 10, References: []string{storePath("lib"), storePath("data")}},
		{Path: storePath("lib"), NarSize: 20, References: []string{storePath("base")}},
		{Path: storePath("base"), NarSize: 40},
		{Path: storePath("data"), NarSize: 80},
	})
	m := newMerger(g, nil, 1)
	idx := func(name string) int {
		i, ok := g.Index(storePath(name))
		assert.Assert(t, ok)
		return i
	}
	charge := func(a, b float64) float64 { return sharedSizeCharge * (a + b) }
	for _, tc := range []struct {
		a, b string
		want float64
	}{
		// lib changes with base, not base with lib: base is pulled when
		// lib alone is updated.
		{"lib", "base", (40*1.0)/4 + charge(20, 40)},
		// data never changes with lib and the other way round: each is
		// pulled when the other changes (lib: lib or base updated).
		{"lib", "data", (20*1.0+80*2.0)/4 + charge(20, 80)},
		// app changes whenever anything does.
		{"app", "data", (80*3.0)/4 + charge(10, 80)},
	} {
		assert.Equal(t, m.cost(idx(tc.a), idx(tc.b)), tc.want, "%s + %s", tc.a, tc.b)
	}
}

// BenchmarkShared plans a 10,000-path closure, parsed once, at a tight
// and the default budget.
func BenchmarkShared(b *testing.B) {
	infos := randomClosure(7, 10000)
	g := graphOf(b, infos)
	pop := popularityOf(infos)
	for _, budget := range []int{16, 94} {
		b.Run(fmt.Sprint(budget), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				sharedStrategy(g, pop, budget)
			}
		})
	}
}

// TestSharedPurge: renewing the stale offers in bulk, as a long run does
// when the heap grows, keeps the rules.
func TestSharedPurge(t *testing.T) {
	infos := randomClosure(3, 400)
	g := graphOf(t, infos)
	for _, budget := range []int{2, 16, 48} {
		m := newMerger(g, nil, budget)
		m.purgeAt = 50
		m.run(budget)
		groups := m.groups()
		assert.Equal(t, len(groups), budget)
		seen := map[int]bool{}
		for _, grp := range groups {
			for _, i := range grp {
				assert.Assert(t, !seen[i], "path %d twice", i)
				seen[i] = true
			}
		}
		assert.Equal(t, len(seen), len(g.Paths))
		plan := newPlan(g, groups, nil)
		assert.Equal(t, len(plan.Layers), budget, "layers were merged to break a cycle")
	}
}

// TestSharedCoarsens: closures above sharedDirect paths are coarsened
// before the merges proper; the plans keep the rules and use the budget.
func TestSharedCoarsens(t *testing.T) {
	for name, infos := range map[string][]info{
		"dense": denseClosure(5, 3*sharedDirect),
		"flat":  flatClosure(5, 3*sharedDirect),
	} {
		g := graphOf(t, infos)
		for _, budget := range []int{1, 16, 94} {
			plan, err := Plan(g, Options{Budget: budget, Popularity: popularityOf(infos)})
			assert.NilError(t, err, name)
			checkPlan(t, g, plan, budget)
			assert.Equal(t, len(plan.Layers), budget, "%s at %d", name, budget)
		}
	}
}
