package layers

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand"
	"runtime"
	"sort"
	"strings"
	"testing"

	"gotest.tools/v3/assert"

	"github.com/nixery-action/nixery-action/internal/closuregen"
	"github.com/nixery-action/nixery-action/pkg/popularity"
)

// randomClosure is closuregen.Local with closure sizes, as `nix path-info
// --closure-size` prints them.
func randomClosure(seed int64, n int) []info { return withClosureSizes(closuregen.Local(seed, n)) }

func mustJSON(v any) []byte {
	data, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return data
}

func popularityOf(infos []info) popularity.Data {
	refs := map[string][]string{}
	for _, i := range infos {
		refs[i.Path] = i.References
	}
	return popularity.Compute(refs)
}

// checkPlan asserts what every plan of every strategy must hold.
func checkPlan(t testing.TB, g *Graph, plan *LayerPlan, budget int) {
	t.Helper()
	assert.Assert(t, len(plan.Layers) >= 1 && len(plan.Layers) <= budget, "%d layers for budget %d", len(plan.Layers), budget)
	layerOf := map[string]int{}
	for li, l := range plan.Layers {
		assert.Assert(t, len(l.Paths) > 0, "layer %d is empty", li)
		assert.Equal(t, l.Key, KeyOf(l.Paths))
		var size uint64
		for pi, p := range l.Paths {
			_, dup := layerOf[p]
			assert.Assert(t, !dup, "%s in two layers", p)
			layerOf[p] = li
			if pi > 0 {
				assert.Assert(t, l.Paths[pi-1] < p, "layer paths not sorted")
			}
			i, ok := g.Index(p)
			assert.Assert(t, ok, "%s is not in the graph", p)
			size += g.Paths[i].NarSize
		}
		assert.Equal(t, l.Size, size)
	}
	assert.Equal(t, len(layerOf), len(g.Paths), "not every path is in a layer")
	// A layer comes after the layers it references, unless the two
	// reference each other through a cycle of layers.
	deps := make([]map[int]bool, len(plan.Layers))
	for li := range deps {
		deps[li] = map[int]bool{}
	}
	for i, p := range g.Paths {
		for _, r := range g.Refs[i] {
			if a, b := layerOf[p.Name], layerOf[g.Paths[r].Name]; a != b {
				deps[a][b] = true
			}
		}
	}
	reaches := func(from, to int) bool {
		seen := map[int]bool{from: true}
		stack := []int{from}
		for len(stack) > 0 {
			x := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			for y := range deps[x] {
				if y == to {
					return true
				}
				if !seen[y] {
					seen[y] = true
					stack = append(stack, y)
				}
			}
		}
		return false
	}
	for a, ds := range deps {
		for b := range ds {
			if b > a {
				assert.Assert(t, reaches(b, a), "layer %d references a later layer %d, and no cycle leads back", a, b)
			}
		}
	}
}

// checkGroupsKept asserts that Plan made one layer of each group the
// strategy planned, as it was.
func checkGroupsKept(t testing.TB, g *Graph, groups [][]int, plan *LayerPlan) {
	t.Helper()
	var want, got []string
	for _, grp := range groups {
		var ps []string
		for _, i := range grp {
			ps = append(ps, g.Paths[i].Name)
		}
		sort.Strings(ps)
		want = append(want, strings.Join(ps, " "))
	}
	for _, l := range plan.Layers {
		got = append(got, strings.Join(l.Paths, " "))
	}
	sort.Strings(want)
	sort.Strings(got)
	assert.DeepEqual(t, got, want)
}

// randomRoots picks requested roots as a user might: the default roots
// plus some paths deeper in the closure.
func randomRoots(rng *rand.Rand, g *Graph) []string {
	var roots []string
	for _, r := range g.Roots {
		roots = append(roots, g.Paths[r].Name)
	}
	for k := rng.Intn(5); k > 0; k-- {
		roots = append(roots, g.Paths[rng.Intn(len(g.Paths))].Name)
	}
	return roots
}

func TestEveryStrategyKeepsTheRules(t *testing.T) {
	assert.Assert(t, len(Strategies()) >= 1)
	for _, name := range Strategies() {
		t.Run(name, func(t *testing.T) {
			rng := rand.New(rand.NewSource(1))
			for seed := int64(1); seed <= 8; seed++ {
				infos := randomClosure(seed, 40+int(seed)*60)
				for _, pop := range []popularity.Data{nil, popularityOf(infos)} {
					for _, budget := range []int{1, 2, 3, 16, 48, 94, MaxBudget, 1 + rng.Intn(MaxBudget)} {
						g := graphOf(t, infos)
						if budget%2 == 1 {
							assert.NilError(t, g.SetRoots(randomRoots(rng, g)))
						}
						plan, err := Plan(g, Options{Strategy: name, Budget: budget, Popularity: pop})
						assert.NilError(t, err, "seed %d budget %d", seed, budget)
						checkPlan(t, g, plan, budget)
						checkGroupsKept(t, g, strategies[name](g, pop, budget), plan)
					}
				}
			}
		})
	}
}

// Tiny and odd closures: one path, a chain, a wide fan, more budget than
// paths.
func TestEveryStrategySmallGraphs(t *testing.T) {
	chain := []info{}
	fan := []info{{Path: storePath("app"), NarSize: 1}}
	for i := 0; i < 200; i++ {
		p := storePath(fmt.Sprintf("c%03d", i))
		var refs []string
		if i > 0 {
			refs = []string{chain[i-1].Path}
		}
		chain = append(chain, info{Path: p, NarSize: uint64(i + 1), References: refs})
		fan[0].References = append(fan[0].References, storePath(fmt.Sprintf("f%03d", i)))
		fan = append(fan, info{Path: storePath(fmt.Sprintf("f%03d", i)), NarSize: 1e6})
	}
	for gname, infos := range map[string][]info{
		"single": {{Path: storePath("only"), NarSize: 5}},
		"chain":  chain,
		"fan":    fan,
		"two roots sharing nothing": {
			{Path: storePath("x"), NarSize: 1}, {Path: storePath("y"), NarSize: 1},
		},
		"zero sizes": {
			{Path: storePath("x"), References: []string{storePath("y")}}, {Path: storePath("y")},
		},
	} {
		for _, name := range Strategies() {
			for _, budget := range []int{1, 2, 94, MaxBudget} {
				g := graphOf(t, infos)
				plan, err := Plan(g, Options{Strategy: name, Budget: budget})
				assert.NilError(t, err, "%s on %s", name, gname)
				checkPlan(t, g, plan, budget)
			}
		}
	}
}

// TestDeterministic: the plan JSON is byte-identical across runs,
// GOMAXPROCS values and the order of the input.
func TestDeterministic(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	infos := randomClosure(42, 600)
	pop := popularityOf(infos)
	rng := rand.New(rand.NewSource(42))
	for _, name := range Strategies() {
		for _, budget := range []int{5, 48} {
			var first []byte
			for run, procs := range []int{1, 4, 1, 4, 2, 1} {
				runtime.GOMAXPROCS(procs)
				input := infos
				if run >= 4 {
					input = append([]info(nil), infos...)
					rng.Shuffle(len(input), func(a, b int) { input[a], input[b] = input[b], input[a] })
				}
				plan, err := Plan(graphOf(t, input), Options{Strategy: name, Budget: budget, Popularity: pop})
				assert.NilError(t, err)
				data, err := json.Marshal(plan)
				assert.NilError(t, err)
				if first == nil {
					first = data
				}
				assert.Equal(t, string(data), string(first), "%s at budget %d, run %d, GOMAXPROCS %d", name, budget, run, procs)
			}
		}
	}
}

// The realistic closures too, with popularity data, through the parser.
func TestEveryStrategyOnTestdata(t *testing.T) {
	pop, err := popularity.Load(bytes.NewReader(readTestdata(t, "debian-popularity.json")))
	assert.NilError(t, err)
	for _, file := range []string{"shell-hello-busybox.json", "debian-podman.json", "debian-python3-git-curl.json", "debian-gimp.json"} {
		data := readTestdata(t, file)
		for _, name := range Strategies() {
			for _, budget := range []int{1, 4, 94} {
				g, err := ParseGraph(data)
				assert.NilError(t, err)
				plan, err := Plan(g, Options{Strategy: name, Budget: budget, Popularity: pop})
				assert.NilError(t, err, "%s on %s", name, file)
				checkPlan(t, g, plan, budget)
				checkGroupsKept(t, g, strategies[name](g, pop, budget), plan)
				again, err := Plan(g, Options{Strategy: name, Budget: budget, Popularity: pop})
				assert.NilError(t, err)
				assert.DeepEqual(t, again, plan)
			}
		}
	}
}
