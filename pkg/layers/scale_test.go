package layers

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/nixery-action/nixery-action/internal/closuregen"
	"github.com/nixery-action/nixery-action/pkg/popularity"
)

// denseClosure is closuregen.Dense with closure sizes, as `nix path-info
// --closure-size` prints them.
func denseClosure(seed int64, n int) []info { return withClosureSizes(closuregen.Dense(seed, n)) }

// flatClosure is closuregen.Flat with closure sizes.
func flatClosure(seed int64, n int) []info { return withClosureSizes(closuregen.Flat(seed, n)) }

// withClosureSizes fills in the closure sizes, as ParseGraph computes them.
func withClosureSizes(infos []info) []info {
	g, err := ParseGraph(mustJSON(infos))
	if err != nil {
		panic(err)
	}
	for i := range infos {
		k, _ := g.Index(infos[i].Path)
		infos[i].ClosureSize = g.Paths[k].ClosureSize
	}
	return infos
}

// BenchmarkScale plans dense closures of 10,000, 30,000 and 100,000 paths
// and a flat one of 100,000 with every strategy at budgets 16 and 94, the
// graph already read and popularity data given. Issue 13's goals: 10,000
// paths in 0.5 s, 100,000 in 10 s, under 500 MB.
//
// B/op, all the bytes a plan allocates, bounds the memory it needs; the
// machine may be busy, so cpu-s/op, the CPU time of a plan, is the figure
// to compare with the goals.
//
//	go test ./pkg/layers -run XXX -bench Scale -benchtime 1x -benchmem
func BenchmarkScale(b *testing.B) {
	pops := map[string]popularity.Data{}
	for _, c := range []struct {
		name  string
		infos func() []info
	}{
		{"dense-10k", func() []info { return denseClosure(13, 10000) }},
		{"dense-30k", func() []info { return denseClosure(13, 30000) }},
		{"dense-100k", func() []info { return denseClosure(13, 100000) }},
		{"flat-100k", func() []info { return flatClosure(13, 100000) }},
	} {
		var g *Graph
		var infos []info
		for _, name := range Strategies() {
			for _, budget := range []int{16, 94} {
				b.Run(fmt.Sprintf("%s/%s/%d", c.name, name, budget), func(b *testing.B) {
					if g == nil { // made once per closure, only when a sub-benchmark runs
						infos = c.infos()
						g = graphOf(b, infos)
					}
					pop := pops[c.name]
					if pop == nil {
						pop = popularityOf(infos)
						pops[c.name] = pop
					}
					b.ResetTimer()
					cpu := cpuTime()
					for b.Loop() {
						if _, err := Plan(g, Options{Strategy: name, Budget: budget, Popularity: pop}); err != nil {
							b.Fatal(err)
						}
					}
					// The machine may be busy: CPU time is what the plan costs.
					b.ReportMetric((cpuTime()-cpu).Seconds()/float64(b.N), "cpu-s/op")
				})
			}
		}
	}
}

// BenchmarkParseScale reads the path-info JSON of the dense closures, with
// closure sizes and without (then ParseGraph computes them).
func BenchmarkParseScale(b *testing.B) {
	for _, n := range []int{10000, 100000} {
		for _, sizes := range []bool{true, false} {
			name := fmt.Sprintf("%d/closure-size", n)
			if !sizes {
				name = fmt.Sprintf("%d/computed", n)
			}
			b.Run(name, func(b *testing.B) {
				infos := denseClosure(13, n)
				if !sizes {
					for i := range infos {
						infos[i].ClosureSize = 0
					}
				}
				data := mustJSON(infos)
				b.SetBytes(int64(len(data)))
				b.ResetTimer()
				for b.Loop() {
					if _, err := ParseGraph(data); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// cpuTime is the CPU time this process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
