package layers

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"gotest.tools/v3/assert"
	"gotest.tools/v3/golden"

	"github.com/nixery-action/nixery-action/pkg/popularity"
)

// checkPlan asserts what every plan of every strategy must hold.
func checkPlan(t *testing.T, g *Graph, plan *Plan, budget int) {
	t.Helper()
	assert.Assert(t, len(plan.Layers) >= 1 && len(plan.Layers) <= budget, "%d layers for budget %d", len(plan.Layers), budget)
	layerOf := map[string]int{}
	for li, l := range plan.Layers {
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
			assert.Assert(t, ok)
			size += g.Paths[i].NarSize
		}
		assert.Equal(t, l.Size, size)
	}
	assert.Equal(t, len(layerOf), len(g.Paths), "not every path is in a layer")
	// A layer comes after the layers it references.
	for i, p := range g.Paths {
		for _, r := range g.Refs[i] {
			assert.Assert(t, layerOf[g.Paths[r].Name] <= layerOf[p.Name],
				"%s (layer %d) references %s in a later layer %d", p.Name, layerOf[p.Name], g.Paths[r].Name, layerOf[g.Paths[r].Name])
		}
	}
}

func popularityOf(infos []info) popularity.Data {
	refs := map[string][]string{}
	for _, i := range infos {
		refs[i.Path] = i.References
	}
	return popularity.Compute(refs)
}

func TestEveryStrategyKeepsTheRules(t *testing.T) {
	for _, name := range Strategies() {
		for seed := int64(1); seed <= 8; seed++ {
			infos := randomClosure(seed, 40+int(seed)*60)
			for _, pop := range []popularity.Data{nil, popularityOf(infos)} {
				for _, budget := range []int{1, 2, 16, 48, 94, 125} {
					g := graphOf(t, infos)
					plan, err := Build(g, Options{Strategy: name, Budget: budget, Popularity: pop})
					assert.NilError(t, err, "%s seed %d budget %d", name, seed, budget)
					checkPlan(t, g, plan, budget)
				}
			}
		}
	}
}

// TestDeterministic: the plan JSON is byte-identical across runs and
// GOMAXPROCS values.
func TestDeterministic(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	infos := randomClosure(42, 600)
	pop := popularityOf(infos)
	for _, name := range Strategies() {
		var first []byte
		for _, procs := range []int{1, 4, 1, 2} {
			runtime.GOMAXPROCS(procs)
			plan, err := Build(graphOf(t, infos), Options{Strategy: name, Budget: 48, Popularity: pop})
			assert.NilError(t, err)
			data, err := json.Marshal(plan)
			assert.NilError(t, err)
			if first == nil {
				first = data
			}
			assert.Equal(t, string(data), string(first), "%s at GOMAXPROCS %d", name, procs)
		}
	}
}

func TestBudgetRange(t *testing.T) {
	g := graphOf(t, randomClosure(3, 10))
	for _, b := range []int{-1, 126, 1000} {
		_, err := Build(g, Options{Budget: b})
		assert.ErrorContains(t, err, "out of range: use 1 to 125")
	}
	_, err := Build(g, Options{Strategy: "nope"})
	assert.ErrorContains(t, err, `unknown layering strategy "nope"`)
}

// TestGoldenPlans pins the plans of a real closure (the stand-in nixpkgs'
// `shell hello busybox` for x86_64-linux, as `nix path-info --json
// --recursive --closure-size` printed it) for every strategy. Update with
// go test ./pkg/layers -update.
func TestGoldenPlans(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "shell-hello-busybox.json"))
	assert.NilError(t, err)
	for _, name := range Strategies() {
		for _, budget := range []int{3, 94} {
			g, err := ParseGraph(data)
			assert.NilError(t, err)
			plan, err := Build(g, Options{Strategy: name, Budget: budget})
			assert.NilError(t, err)
			checkPlan(t, g, plan, budget)
			out, err := json.MarshalIndent(plan, "", "  ")
			assert.NilError(t, err)
			golden.Assert(t, string(out)+"\n", fmt.Sprintf("plan-%s-%d.golden", name, budget))
		}
	}
}

// BenchmarkBuild10k plans a 10,000-path closure with each strategy.
func BenchmarkBuild10k(b *testing.B) {
	infos := randomClosure(7, 10000)
	pop := popularityOf(infos)
	data, err := json.Marshal(infos)
	assert.NilError(b, err)
	for _, name := range Strategies() {
		b.Run(name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				g, err := ParseGraph(data)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := Build(g, Options{Strategy: name, Popularity: pop}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
