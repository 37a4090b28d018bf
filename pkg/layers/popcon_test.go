package layers

import (
	"math/rand"
	"sort"
	"testing"

	"github.com/nixery-action/nixery-action/pkg/storepath"
	"gotest.tools/v3/assert"
)

// pathNames returns the package names (store path without hash) of indexes.
func pathNames(g *Graph, idx []int) []string {
	var out []string
	for _, i := range idx {
		out = append(out, g.Paths[i].Name[len(storepath.Dir)+33:])
	}
	return out
}

// groupPathNames is pathNames for each group.
func groupPathNames(g *Graph, groups [][]int) [][]string {
	var out [][]string
	for _, grp := range groups {
		out = append(out, pathNames(g, grp))
	}
	return out
}

// sortedGroupPathNames is groupPathNames with each group's names sorted,
// and the groups sorted by their first name.
func sortedGroupPathNames(g *Graph, groups [][]int) [][]string {
	out := groupPathNames(g, groups)
	for _, grp := range out {
		sort.Strings(grp)
	}
	sort.Slice(out, func(a, b int) bool { return out[a][0] < out[b][0] })
	return out
}

// The example in the comment of nixpkgs' closure-graph.py: A uses B and
// G, B uses C and E, C uses D and E, D and E use F. Scores: A 1, B 2,
// C 3, D 4, E 5, F 9, G 2.
func popconExample(t *testing.T) *Graph {
	ref := func(names ...string) []string {
		var out []string
		for _, n := range names {
			out = append(out, storePath(n))
		}
		return out
	}
	return graphOf(t, []info{
		{Path: storePath("A"), NarSize: 1, References: ref("B", "G")},
		{Path: storePath("B"), NarSize: 1, References: ref("C", "E")},
		{Path: storePath("C"), NarSize: 1, References: ref("D", "E")},
		{Path: storePath("D"), NarSize: 1, References: ref("F")},
		{Path: storePath("E"), NarSize: 1, References: ref("F")},
		{Path: storePath("F"), NarSize: 1},
		{Path: storePath("G"), NarSize: 1},
	})
}

func TestPopconRank(t *testing.T) {
	g := popconExample(t)
	// B and G tie at 2 and go by name.
	assert.DeepEqual(t, pathNames(g, popconRank(g, len(g.Paths))), []string{"F", "E", "D", "C", "B", "G", "A"})
}

func TestPopconLayers(t *testing.T) {
	g := popconExample(t)
	for _, tc := range []struct {
		budget int
		want   [][]string
	}{
		{1, [][]string{{"A", "B", "C", "D", "E", "F", "G"}}},
		{3, [][]string{{"F"}, {"E"}, {"A", "B", "C", "D", "G"}}},
		{7, [][]string{{"F"}, {"E"}, {"D"}, {"C"}, {"B"}, {"G"}, {"A"}}},
		{94, [][]string{{"F"}, {"E"}, {"D"}, {"C"}, {"B"}, {"G"}, {"A"}}},
	} {
		got := groupPathNames(g, popconStrategy(g, nil, tc.budget))
		for _, grp := range got[len(got)-1:] { // the last layer's order is not a rank
			sort.Strings(grp)
		}
		assert.DeepEqual(t, got, tc.want)
	}
}

// Equally popular paths go by name, then hash, not by store path.
func TestPopconTies(t *testing.T) {
	g := graphOf(t, []info{
		{Path: "/nix/store/00000000000000000000000000000000-zlib-1", NarSize: 1},
		{Path: "/nix/store/11111111111111111111111111111111-bash-5", NarSize: 1},
		{Path: "/nix/store/22222222222222222222222222222222-bash-5", NarSize: 1},
	})
	var got []string
	for _, i := range popconRank(g, len(g.Paths)) {
		got = append(got, g.Paths[i].Name)
	}
	assert.DeepEqual(t, got, []string{
		"/nix/store/11111111111111111111111111111111-bash-5",
		"/nix/store/22222222222222222222222222222222-bash-5",
		"/nix/store/00000000000000000000000000000000-zlib-1",
	})
	assert.Equal(t, nameThenHash("/nix/store/abc-zlib-1.3"), "zlib-1.3-/nix/store/abc")
}

// Only walks from the requested roots count; paths they do not reach
// come last. From C: C 1, D and E 2 (a tie, by name), F 5.
func TestPopconUnreached(t *testing.T) {
	g := popconExample(t)
	assert.NilError(t, g.SetRoots([]string{storePath("C")}))
	assert.DeepEqual(t, pathNames(g, popconRank(g, len(g.Paths))), []string{"F", "D", "E", "C", "A", "B", "G"})
}

// refPopconRank is the whole ranking, every score computed: the
// straightforward way, quadratic, to check popconRank against.
func refPopconRank(g *Graph) []int {
	score, _, reached := refPopconScores(g)
	n := len(g.Paths)
	key := make([]string, n)
	for i, p := range g.Paths {
		key[i] = nameThenHash(p.Name)
	}
	ranked := make([]int, n)
	for i := range ranked {
		ranked[i] = i
	}
	sort.Slice(ranked, func(a, b int) bool {
		x, y := ranked[a], ranked[b]
		if reached[x] != reached[y] {
			return reached[x]
		}
		if score[x] != score[y] {
			return score[x] > score[y]
		}
		return key[x] < key[y]
	})
	return ranked
}

// refPopconScores is every path's score, its walks and whether the roots
// reach it, each reached path's walks added to every path below it.
func refPopconScores(g *Graph) (score, walks []float64, reached []bool) {
	n := len(g.Paths)
	// walks[i]: walks from the roots to i. float64, since they grow
	// exponentially with depth.
	walks = make([]float64, n)
	reached = make([]bool, n)
	for _, r := range g.Roots {
		walks[r] = 1
	}
	order := g.TopoOrder() // dependencies first
	for k := n - 1; k >= 0; k-- {
		i := order[k]
		if walks[i] == 0 {
			continue
		}
		reached[i] = true
		for _, r := range g.Refs[i] {
			walks[r] += walks[i]
		}
	}
	// Each reached path adds its walks to every path below it.
	score = append([]float64(nil), walks...)
	mark := make([]int, n)
	for i := range mark {
		mark[i] = -1
	}
	var stack []int
	for v := 0; v < n; v++ {
		if !reached[v] {
			continue
		}
		stack = append(stack[:0], g.Refs[v]...)
		for len(stack) > 0 {
			d := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if mark[d] == v {
				continue
			}
			mark[d] = v
			score[d] += walks[v]
			stack = append(stack, g.Refs[d]...)
		}
	}
	return score, walks, reached
}

// TestPopconRankTop: the first k of the ranking, computed lazily, are the
// first k of the whole ranking.
func TestPopconRankTop(t *testing.T) {
	rng := rand.New(rand.NewSource(4))
	for seed := int64(1); seed <= 10; seed++ {
		infos := randomClosure(seed, 50+int(seed)*40)
		if seed%3 == 0 {
			infos = denseClosure(seed, 400)
		}
		g := graphOf(t, infos)
		if seed%2 == 0 {
			assert.NilError(t, g.SetRoots(randomRoots(rng, g)))
		}
		want := refPopconRank(g)
		for _, k := range []int{0, 1, 15, 93, 124, len(g.Paths)} {
			k = min(k, len(g.Paths))
			assert.DeepEqual(t, popconRank(g, k), want[:k])
		}
	}
}

// TestPopconBounds: the bound a path waits with is never below its score,
// so no path is ranked after one that scores less; nor is it useless: a
// root's bound is its score, give or take the margin.
func TestPopconBounds(t *testing.T) {
	for seed := int64(1); seed <= 6; seed++ {
		infos := randomClosure(seed, 300)
		if seed%2 == 0 {
			infos = denseClosure(seed, 1500)
		}
		g := graphOf(t, infos)
		score, walks, reached := refPopconScores(g)
		bound := popconBounds(g, g.TopoOrder(), g.users(), walks, reached)
		tight := 0
		for i := range g.Paths {
			if !reached[i] {
				continue
			}
			assert.Assert(t, bound[i] >= score[i], "seed %d, %s: bound %g < score %g", seed, g.Paths[i].Name, bound[i], score[i])
			if bound[i] <= 2*score[i] {
				tight++
			}
		}
		for _, r := range g.Roots {
			assert.Assert(t, bound[r] <= score[r]*1.001, "seed %d, root %s: bound %g, score %g", seed, g.Paths[r].Name, bound[r], score[r])
		}
		t.Logf("seed %d: %d of %d bounds within twice the score", seed, tight, len(g.Paths))
	}
}
