package layers

import (
	"testing"

	"gotest.tools/v3/assert"
)

// BenchmarkBuild10k plans a 10,000-path closure with each strategy, the
// graph already read.
func BenchmarkBuild10k(b *testing.B) {
	infos := randomClosure(7, 10000)
	pop := popularityOf(infos)
	g := graphOf(b, infos)
	for _, name := range Strategies() {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if _, err := Plan(g, Options{Strategy: name, Popularity: pop}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkParseGraph10k reads the path-info JSON of a 10,000-path
// closure, with closure sizes as --closure-size prints them and without
// (then they are computed).
func BenchmarkParseGraph10k(b *testing.B) {
	infos := randomClosure(7, 10000)
	withSizes := mustJSON(infos)
	for i := range infos {
		infos[i].ClosureSize = 0
	}
	withoutSizes := mustJSON(infos)
	for name, data := range map[string][]byte{"closure-size": withSizes, "computed": withoutSizes} {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				g, err := ParseGraph(data)
				assert.NilError(b, err)
				if len(g.Paths) != 10000 {
					b.Fatal(len(g.Paths))
				}
			}
		})
	}
}
