package layers

import (
	"sort"
	"testing"

	"gotest.tools/v3/assert"
)

// pathNames returns the package names (store path without hash) of indexes.
func pathNames(g *Graph, idx []int) []string {
	var out []string
	for _, i := range idx {
		out = append(out, g.Paths[i].Name[len(StoreDir)+33:])
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
	assert.DeepEqual(t, pathNames(g, popconRank(g)), []string{"F", "E", "D", "C", "B", "G", "A"})
}

func TestPopconLayers(t *testing.T) {
	g := popconExample(t)
	for _, tc := range []struct {
		budget int
		want   [][]string
	}{
		{1, [][]string{{"F", "E", "D", "C", "B", "G", "A"}}},
		{3, [][]string{{"F"}, {"E"}, {"D", "C", "B", "G", "A"}}},
		{7, [][]string{{"F"}, {"E"}, {"D"}, {"C"}, {"B"}, {"G"}, {"A"}}},
		{94, [][]string{{"F"}, {"E"}, {"D"}, {"C"}, {"B"}, {"G"}, {"A"}}},
	} {
		assert.DeepEqual(t, groupPathNames(g, popconStrategy(g, nil, tc.budget)), tc.want)
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
	for _, i := range popconRank(g) {
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
	assert.DeepEqual(t, pathNames(g, popconRank(g)), []string{"F", "D", "E", "C", "A", "B", "G"})
}
