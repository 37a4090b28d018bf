package layers

import (
	"testing"

	"github.com/nixery-action/nixery-action/pkg/storepath"
	"gotest.tools/v3/assert"
)

// FuzzParseGraph: any input either fails cleanly or gives a graph that
// keeps the invariants strategies rely on, and that every strategy plans
// within the rules.
func FuzzParseGraph(f *testing.F) {
	f.Add(mustJSON(randomClosure(2, 6)))
	f.Add(asObject(f, randomClosure(3, 5)))
	f.Add([]byte(`{"/nix/store/aaa-x":{"narSize":1,"references":["/nix/store/aaa-x"]}}`))
	f.Add([]byte(`[{"path":"/nix/store/a-b","references":["/nix/store/c-d"]},{"path":"/nix/store/c-d"}]`))
	f.Add([]byte(`{"a-b":{"narSize":5,"closureSize":9,"references":["c-d"]},"c-d":{"narSize":4}}`))
	f.Add([]byte(`[{"path":"/nix/store/a-b","references":["/nix/store/a-b","/nix/store/c-d"]},{"path":"/nix/store/c-d","references":["/nix/store/a-b"]}]`))
	f.Add([]byte(`[null]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		g, err := ParseGraph(data)
		if err != nil {
			assert.Assert(t, g == nil)
			return
		}
		assert.Assert(t, len(g.Paths) > 0 && len(g.Roots) > 0)
		for i, p := range g.Paths {
			assert.Assert(t, storepath.Valid(p.Name), p.Name)
			if i > 0 {
				assert.Assert(t, g.Paths[i-1].Name < p.Name, "paths not sorted and unique")
			}
			k, ok := g.Index(p.Name)
			assert.Assert(t, ok && k == i)
			for j, r := range g.Refs[i] {
				assert.Assert(t, r >= 0 && r < len(g.Paths) && r != i)
				if j > 0 {
					assert.Assert(t, g.Refs[i][j-1] < r, "references not sorted and unique")
				}
			}
		}
		for _, r := range g.Roots {
			assert.Assert(t, r >= 0 && r < len(g.Paths))
		}
		assert.Equal(t, len(g.TopoOrder()), len(g.Paths))
		for _, name := range Strategies() {
			for _, budget := range []int{1, 3} {
				plan, err := Plan(g, Options{Strategy: name, Budget: budget})
				assert.NilError(t, err, name)
				checkPlan(t, g, plan, budget)
			}
		}
	})
}
