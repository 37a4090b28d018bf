package layers

import (
	"encoding/json"
	"testing"

	"gotest.tools/v3/assert"
)

func TestParseGraphBothForms(t *testing.T) {
	infos := randomClosure(1, 50)
	list, err := json.Marshal(infos)
	assert.NilError(t, err)
	// Nix 2.19 and later: an object keyed by store path.
	obj := map[string]info{}
	for _, i := range infos {
		p := i.Path
		i.Path = ""
		obj[p] = i
	}
	object, err := json.Marshal(obj)
	assert.NilError(t, err)

	a, err := ParseGraph(list)
	assert.NilError(t, err)
	b, err := ParseGraph(object)
	assert.NilError(t, err)
	assert.DeepEqual(t, a.Paths, b.Paths)
	assert.DeepEqual(t, a.Refs, b.Refs)
	assert.DeepEqual(t, a.Roots, b.Roots)
	assert.Equal(t, len(a.Paths), 50)
}

func TestParseGraphClosureSizes(t *testing.T) {
	a, b, c := storePath("a"), storePath("b"), storePath("c")
	g := graphOf(t, []info{
		{Path: a, NarSize: 1, References: []string{b, c, a}},
		{Path: b, NarSize: 10, References: []string{c}},
		{Path: c, NarSize: 100},
	})
	ia, _ := g.Index(a)
	ib, _ := g.Index(b)
	ic, _ := g.Index(c)
	assert.Equal(t, g.Paths[ia].ClosureSize, uint64(111))
	assert.Equal(t, g.Paths[ib].ClosureSize, uint64(110))
	assert.Equal(t, g.Paths[ic].ClosureSize, uint64(100))
	assert.DeepEqual(t, g.Roots, []int{ia})
	assert.DeepEqual(t, g.Refs[ia], []int{ib, ic}) // self reference dropped

	assert.NilError(t, g.SetRoots([]string{b}))
	assert.DeepEqual(t, g.Roots, []int{ib})
	assert.ErrorContains(t, g.SetRoots([]string{storePath("zzz")}), "not in the closure graph")
}

func TestParseGraphErrors(t *testing.T) {
	a, b := storePath("a"), storePath("b")
	for _, tc := range []struct {
		name, input, want string
	}{
		{"not JSON", `{"`, "invalid JSON"},
		{"not a list or object", `"x"`, "expected the JSON list or object"},
		{"empty", `[]`, "empty"},
		{"dangling reference", `[{"path":"` + a + `","references":["` + b + `"]}]`, a + ` references "` + b + `", which is not in the graph`},
		{"duplicate", `[{"path":"` + a + `"},{"path":"` + a + `"}]`, a + " appears more than once"},
		{"duplicate key", `{"` + a + `":{},"` + a + `":{}}`, a + " appears more than once"},
		{"outside the store", `[{"path":"/usr/bin/hello"}]`, `"/usr/bin/hello" is not a store path`},
		{"below a store path", `[{"path":"` + a + `/bin"}]`, "is not a store path"},
		{"cycle", `[{"path":"` + a + `","references":["` + b + `"]},{"path":"` + b + `","references":["` + a + `"]}]`, "no root"},
		{"key and path differ", `{"` + a + `":{"path":"` + b + `"}}`, "has path"},
		{"wrong field type", `[{"path":"` + a + `","narSize":"big"}]`, "invalid JSON"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseGraph([]byte(tc.input))
			assert.ErrorContains(t, err, tc.want)
		})
	}
}

// FuzzParseGraph: any input either fails cleanly or gives a graph that
// keeps the invariants strategies rely on.
func FuzzParseGraph(f *testing.F) {
	seed, _ := json.Marshal(randomClosure(2, 6))
	f.Add(seed)
	f.Add([]byte(`{"/nix/store/aaa-x":{"narSize":1,"references":["/nix/store/aaa-x"]}}`))
	f.Add([]byte(`[{"path":"/nix/store/a-b","references":["/nix/store/c-d"]},{"path":"/nix/store/c-d"}]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		g, err := ParseGraph(data)
		if err != nil {
			return
		}
		assert.Assert(t, len(g.Paths) > 0 && len(g.Roots) > 0)
		for i, p := range g.Paths {
			assert.Assert(t, ValidStorePath(p.Name), p.Name)
			if i > 0 {
				assert.Assert(t, g.Paths[i-1].Name < p.Name, "paths not sorted and unique")
			}
			for _, r := range g.Refs[i] {
				assert.Assert(t, r >= 0 && r < len(g.Paths) && r != i)
			}
		}
		assert.Equal(t, len(g.TopoOrder()), len(g.Paths))
		plan, err := Build(g, Options{Budget: 3})
		assert.NilError(t, err)
		assert.Assert(t, len(plan.Layers) <= 3)
	})
}
