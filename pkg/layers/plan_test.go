package layers

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"math"
	"strings"
	"testing"

	"gotest.tools/v3/assert"

	"github.com/nixery-action/nixery-action/pkg/popularity"
	"github.com/nixery-action/nixery-action/pkg/storepath"
)

func TestKeyOf(t *testing.T) {
	a, b := storePath("a"), storePath("b")
	sum := sha256.Sum256([]byte(a + "\n" + b + "\n"))
	assert.Equal(t, KeyOf([]string{a, b}), "sha256:"+hex.EncodeToString(sum[:]))
	assert.Assert(t, KeyOf([]string{a, b}) != KeyOf([]string{a}))
	// Paths are separated, so moving characters between them changes the key.
	assert.Assert(t, KeyOf([]string{"/nix/store/ab", "c"}) != KeyOf([]string{"/nix/store/a", "bc"}))

	g := graphOf(t, randomClosure(5, 100))
	plan, err := Plan(g, Options{Strategy: "nixery", Budget: 7})
	assert.NilError(t, err)
	keys := map[string]bool{}
	for _, l := range plan.Layers {
		assert.Assert(t, strings.HasPrefix(l.Key, "sha256:") && len(l.Key) == len("sha256:")+64, l.Key)
		assert.Assert(t, !keys[l.Key], "two layers with key %s", l.Key)
		keys[l.Key] = true
	}
}

func TestBuildOptions(t *testing.T) {
	g := graphOf(t, randomClosure(3, 300))
	zero, err := Plan(g, Options{})
	assert.NilError(t, err)
	explicit, err := Plan(g, Options{Strategy: DefaultStrategy, Budget: DefaultBudget})
	assert.NilError(t, err)
	assert.DeepEqual(t, zero, explicit)
	assert.Assert(t, DefaultBudget < MaxBudget)

	for _, b := range []int{1, MaxBudget} {
		plan, err := Plan(g, Options{Budget: b})
		assert.NilError(t, err)
		checkPlan(t, g, plan, b)
	}
	for _, b := range []int{-1, MaxBudget + 1, 1000, math.MinInt} {
		_, err := Plan(g, Options{Budget: b})
		assert.ErrorContains(t, err, "out of range: use 1 to 124")
	}
	// 125 layers of store paths and the customisation layer would be
	// 126: Docker's layer store refuses more than 125.
	_, err = Plan(g, Options{Budget: 125})
	assert.Error(t, err, "layer budget 125 is out of range: use 1 to 124 (Docker refuses images of more than 125 layers, and the customisation layer on top is one of them)")
	assert.Error(t, Options{Budget: 125}.Validate(), err.Error())
	_, err = Plan(g, Options{Budget: 0})
	assert.NilError(t, err)
	_, err = Plan(g, Options{Budget: -1})
	assert.Error(t, err, "layer budget -1 is out of range: use 1 to 124")
	_, err = Plan(g, Options{Strategy: "nope"})
	assert.Error(t, err, `unknown layering strategy "nope": use one of `+strings.Join(Strategies(), ", "))
	assert.Error(t, Options{Strategy: "nope"}.Validate(), err.Error())
	_, err = Plan(nil, Options{})
	assert.ErrorContains(t, err, "no closure graph")
	_, err = Plan(&Graph{}, Options{})
	assert.ErrorContains(t, err, "no closure graph")
}

func TestStrategies(t *testing.T) {
	names := Strategies()
	assert.Assert(t, hasString(names, "nixery"), names)
	assert.Assert(t, hasString(names, DefaultStrategy), "default %q is not registered", DefaultStrategy)
	for i := 1; i < len(names); i++ {
		assert.Assert(t, names[i-1] < names[i], "not sorted: %v", names)
	}
}

func hasString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// A strategy that breaks the rules is an error, not a wrong image.
func TestBuildChecksStrategies(t *testing.T) {
	a, b, c := storePath("a"), storePath("b"), storePath("c")
	g := graphOf(t, []info{
		{Path: a, NarSize: 1, References: []string{b}},
		{Path: b, NarSize: 1},
		{Path: c, NarSize: 1},
	})
	ia, _ := g.Index(a)
	ib, _ := g.Index(b)
	ic, _ := g.Index(c)
	for _, tc := range []struct {
		name   string
		groups [][]int
		want   string
	}{
		{"too many", [][]int{{ia}, {ib}, {ic}}, "made 3 layers for a budget of 2"},
		{"twice", [][]int{{ia, ib}, {ib, ic}}, "put " + b + " in two layers"},
		{"missing", [][]int{{ia, ib}}, "left " + c + " out of every layer"},
		{"empty", [][]int{{ia, ib, ic}, {}}, "made an empty layer"},
		{"out of range", [][]int{{ia, ib, ic, 3}}, "made a layer with path index 3 out of range"},
		{"negative", [][]int{{ia, ib, ic, -1}}, "made a layer with path index -1 out of range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			strategies["broken-for-test"] = func(*Graph, popularity.Data, int) [][]int { return tc.groups }
			defer delete(strategies, "broken-for-test")
			_, err := Plan(g, Options{Strategy: "broken-for-test", Budget: 2})
			assert.ErrorContains(t, err, `strategy "broken-for-test": `+tc.want)
		})
	}
}

// Layers come after the layers they reference; groups that reference each
// other both ways stay apart, ordered by key.
func TestNewPlan(t *testing.T) {
	// app -> lib -> libc, tool -> libc, and data alone.
	app, lib, libc, tool, data := storePath("app"), storePath("lib"), storePath("libc"), storePath("tool"), storePath("data")
	g := graphOf(t, []info{
		{Path: app, NarSize: 1, References: []string{lib}},
		{Path: lib, NarSize: 10, References: []string{libc}},
		{Path: libc, NarSize: 100},
		{Path: tool, NarSize: 1000, References: []string{libc}},
		{Path: data, NarSize: 10000},
	})
	idx := func(p string) int { i, _ := g.Index(p); return i }
	layerNames := func(plan *LayerPlan) []string {
		var out []string
		for _, l := range plan.Layers {
			var ns []string
			for _, p := range l.Paths {
				ns = append(ns, storepath.Name(p))
			}
			out = append(out, strings.Join(ns, "+"))
		}
		return out
	}

	plan := newPlan(g, [][]int{{idx(app)}, {idx(lib)}, {idx(libc)}, {idx(tool)}, {idx(data)}}, nil)
	checkPlan(t, g, plan, 5)
	pos := map[string]int{}
	for i, n := range layerNames(plan) {
		pos[n] = i
	}
	assert.Assert(t, pos["libc"] < pos["lib"] && pos["lib"] < pos["app"] && pos["libc"] < pos["tool"], "%v", layerNames(plan))

	// {app, libc} needs lib, which needs {app, libc}: a cycle. The groups
	// stay as they are; the cycle goes after what it needs (nothing) and
	// before tool, which needs libc; within it, by key.
	groups := [][]int{{idx(tool)}, {idx(app), idx(libc)}, {idx(lib)}, {idx(data)}}
	plan = newPlan(g, groups, nil)
	checkPlan(t, g, plan, 4)
	checkGroupsKept(t, g, groups, plan)
	pos = map[string]int{}
	for i, n := range layerNames(plan) {
		pos[n] = i
	}
	assert.Assert(t, pos["app+libc"] < pos["tool"] && pos["lib"] < pos["tool"], "%v", layerNames(plan))
	first, second := plan.Layers[pos["app+libc"]].Key, plan.Layers[pos["lib"]].Key
	assert.Equal(t, pos["app+libc"] < pos["lib"], first < second, "%v", layerNames(plan))

	// Layers free to go in any order go by key, whatever order the
	// strategy gave them in.
	one := newPlan(g, [][]int{{idx(data)}, {idx(app), idx(lib), idx(libc), idx(tool)}}, nil)
	two := newPlan(g, [][]int{{idx(app), idx(lib), idx(libc), idx(tool)}, {idx(data)}}, nil)
	assert.DeepEqual(t, one, two)
	assert.Assert(t, one.Layers[0].Key < one.Layers[1].Key)

	// With popularity data, the most popular of the layers free to go
	// next goes first, references still first: data (used by many) before
	// libc, tool before lib, app last.
	pop := popularity.Data{"data": 900, "tool": 50, "lib": 5, "libc": 1}
	plan = newPlan(g, [][]int{{idx(app)}, {idx(lib)}, {idx(libc)}, {idx(tool)}, {idx(data)}}, pop)
	checkPlan(t, g, plan, 5)
	assert.DeepEqual(t, layerNames(plan), []string{"data", "libc", "tool", "lib", "app"})
	// A layer takes the popularity of its most popular path.
	plan = newPlan(g, [][]int{{idx(app), idx(data)}, {idx(lib)}, {idx(libc)}, {idx(tool)}}, popularity.Data{"data": 900, "tool": 50})
	assert.DeepEqual(t, layerNames(plan), []string{"libc", "tool", "lib", "app+data"})

	// The JSON form scripts read.
	out, err := json.Marshal(&LayerPlan{Layers: []Group{{Key: "sha256:00", Paths: []string{app}, Size: 1}}})
	assert.NilError(t, err)
	assert.Equal(t, string(out), `{"layers":[{"key":"sha256:00","paths":["`+app+`"],"size":1}]}`)
}
