package layers

import (
	"fmt"
	"testing"

	"gotest.tools/v3/assert"
)

// twoBigs is an app using two big libraries that share a small one, x;
// big2 also uses yy. Primaries by size: big1, big2, app, then x and yy.
func twoBigs(t *testing.T) *Graph {
	t.Helper()
	return graphOf(t, []info{
		{Path: storePath("app"), NarSize: 10, References: []string{storePath("big1"), storePath("big2")}},
		{Path: storePath("big1"), NarSize: 100, References: []string{storePath("x")}},
		{Path: storePath("big2"), NarSize: 90, References: []string{storePath("x"), storePath("yy")}},
		{Path: storePath("x"), NarSize: 1},
		{Path: storePath("yy"), NarSize: 1},
	})
}

func TestAutolayer(t *testing.T) {
	g := twoBigs(t)
	for _, tc := range []struct {
		budget int
		want   [][]string
	}{
		{1, [][]string{{"app", "big1", "big2", "x", "yy"}}},
		// big1 takes x; the rest stays in the first layer.
		{2, [][]string{{"app", "big2", "yy"}, {"big1", "x"}}},
		{3, [][]string{{"app", "big2", "yy"}, {"big1", "x"}}},
		// big2 takes yy, and x, under both, gets a layer of its own.
		{4, [][]string{{"app"}, {"big1"}, {"big2", "yy"}, {"x"}}},
		{5, [][]string{{"app"}, {"big1"}, {"big2"}, {"x"}, {"yy"}}},
	} {
		t.Run(fmt.Sprint(tc.budget), func(t *testing.T) {
			assert.DeepEqual(t, sortedGroupPathNames(g, autolayerStrategy(g, nil, tc.budget)), tc.want)
		})
	}
}

// Below a budget of 10, shared is auto-layer that fills the budget from
// the image's own paths: at 3, where auto-layer stops with 2 layers (big2
// would split x off too), yy, which no primary holds, gets the third;
// app cannot (it takes big1 and x, which big1 holds).
func TestSharedFillsLowBudgets(t *testing.T) {
	g := twoBigs(t)
	assert.DeepEqual(t, sortedGroupPathNames(g, sharedStrategy(g, nil, 3)), [][]string{{"app", "big2"}, {"big1", "x"}, {"yy"}})
	// Where auto-layer uses the whole budget, shared is the same.
	for _, budget := range []int{1, 2, 4, 5} {
		assert.DeepEqual(t, sortedGroupPathNames(g, sharedStrategy(g, nil, budget)), sortedGroupPathNames(g, autolayerStrategy(g, nil, budget)))
	}
}
