package layers

import (
	"sort"
	"strings"
	"testing"

	"gotest.tools/v3/assert"

	"github.com/nixery-action/nixery-action/pkg/popularity"
)

// The graph of the seed's explanation of its algorithm:
//
//	img ─> A ─> E        G is big (its closure is over 100 MB),
//	img ─> B ─> E        E is popular (1000 references).
//	img ─> C ─> E, D
//	img ─> D ─> F, G
//
// The dominator tree hangs A, B, C, D, E and G off the root (E and G
// because they are reached in several ways or hoisted), and F under D, so
// the layers start as {A} {B} {C} {D F} {E} {G}. With popularity 1 for all
// but E, and narSizes A 10, B 11, C 12, D 4, E 5, F 6, G 200 (MB), the
// merge ratings (popularity × summed closure sizes) are
//
//	A 15, B 16, G 200, {D F} 210+6 = 216, C 12+5+210 = 227, E 1000×5 = 5000.
//
// Merging takes the two lowest and, as in the seed, does not sort again:
// at budget 4 the merged {A B G} (231) stays in front of {D F} (216), so
// at budget 3 it takes {D F} in, where sorting again would have merged
// {D F} with C.
func seedExample(t *testing.T) (*Graph, popularity.Data) {
	const mb = 1000 * 1000
	p := func(n string) string { return storePath(n) }
	g := graphOf(t, []info{
		{Path: p("A"), NarSize: 10 * mb, References: []string{p("E")}},
		{Path: p("B"), NarSize: 11 * mb, References: []string{p("E")}},
		{Path: p("C"), NarSize: 12 * mb, References: []string{p("E"), p("D")}},
		{Path: p("D"), NarSize: 4 * mb, References: []string{p("F"), p("G")}},
		{Path: p("E"), NarSize: 5 * mb},
		{Path: p("F"), NarSize: 6 * mb},
		{Path: p("G"), NarSize: 200 * mb},
	})
	assert.NilError(t, g.SetRoots([]string{p("A"), p("B"), p("C"), p("D")}))
	return g, popularity.Data{"E": 1000}
}

// names turns a plan into sorted groups of package names, e.g. "ABG".
func names(plan *Plan) []string {
	var out []string
	for _, l := range plan.Layers {
		var ns []string
		for _, p := range l.Paths {
			ns = append(ns, popularity.Name(p))
		}
		sort.Strings(ns)
		out = append(out, strings.Join(ns, ""))
	}
	sort.Strings(out)
	return out
}

func TestNixerySeedExample(t *testing.T) {
	for budget, want := range map[int][]string{
		1:  {"ABCDEFG"},
		2:  {"ABCDFG", "E"},
		3:  {"ABDFG", "C", "E"},
		4:  {"ABG", "C", "DF", "E"},
		5:  {"AB", "C", "DF", "E", "G"},
		6:  {"A", "B", "C", "DF", "E", "G"},
		94: {"A", "B", "C", "DF", "E", "G"},
	} {
		g, pop := seedExample(t)
		plan, err := Build(g, Options{Strategy: "nixery", Budget: budget, Popularity: pop})
		assert.NilError(t, err)
		assert.DeepEqual(t, names(plan), want)
	}
}

// Without popularity data E is not hoisted, but it is still reached from
// A, B and C, so it keeps a layer of its own; cacert and iana-etc are
// always treated as popular.
func TestNixeryWithoutPopularity(t *testing.T) {
	g, _ := seedExample(t)
	plan, err := Build(g, Options{Strategy: "nixery", Budget: 94})
	assert.NilError(t, err)
	assert.DeepEqual(t, names(plan), []string{"A", "B", "C", "DF", "E", "G"})

	app, lib, ca := storePath("app"), storePath("lib"), storePath("nss-cacert-3.98")
	g = graphOf(t, []info{
		{Path: app, NarSize: 1, References: []string{lib, ca}},
		{Path: lib, NarSize: 1, References: []string{ca}},
		{Path: ca, NarSize: 1},
	})
	plan, err = Build(g, Options{Strategy: "nixery", Budget: 94})
	assert.NilError(t, err)
	// lib is dominated by app; cacert would be too, but is hoisted.
	assert.DeepEqual(t, names(plan), []string{"applib", "nss-cacert-3.98"})
}
