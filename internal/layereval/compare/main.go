// Command compare prints the layering comparison of docs/layering.md:
// every strategy at layer budgets 16, 48 and 94, with and without
// popularity data, on the corpus in internal/layereval/testdata.
// scripts/compare-layering.sh runs it.
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/nixery-action/nixery-action/internal/layereval"
	"github.com/nixery-action/nixery-action/pkg/layers"
	"github.com/nixery-action/nixery-action/pkg/popularity"
)

var budgets = []int{16, 48, 94}

func main() {
	corpus := flag.String("corpus", "internal/layereval/testdata/corpus.json.gz", "the corpus file")
	only := flag.String("strategies", "", "comma-separated strategies to compare (default: all)")
	flag.Parse()
	if err := run(*corpus, *only); err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		os.Exit(1)
	}
}

type row struct {
	name, pop string
	scores    []layereval.Score
}

func run(file, only string) error {
	c, err := layereval.Load(file)
	if err != nil {
		return err
	}
	b, err := layereval.NewBench(c)
	if err != nil {
		return err
	}
	names := layers.Strategies()
	if only != "" {
		names = strings.Split(only, ",")
	}
	var rows []row
	for _, name := range names {
		for _, pop := range []popularity.Data{nil, c.Popularity()} {
			r := row{name: name, pop: "none"}
			if name == layers.DefaultStrategy {
				r.name = "**" + name + "** (default)"
			}
			if pop != nil {
				r.pop = "corpus"
			}
			for _, budget := range budgets {
				s, err := b.Score(name, budget, pop)
				if err != nil {
					return err
				}
				r.scores = append(r.scores, s)
			}
			rows = append(rows, r)
		}
	}
	fmt.Printf("corpus: %d packages, %d images, %d updated libraries, %d (image, library) pairs\n\n",
		len(c.Packages), len(c.Images), len(c.Updates), rows[0].scores[0].Pairs)
	fmt.Println("| strategy | popularity | sharing 16 | sharing 48 | sharing 94 | update 16 | update 48 | update 94 | layers 16/48/94 |")
	fmt.Println("|---|---|---:|---:|---:|---:|---:|---:|---|")
	for _, r := range rows {
		s := r.scores
		fmt.Printf("| %s | %s | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f | %.1f/%.1f/%.1f |\n", r.name, r.pop,
			s[0].Sharing, s[1].Sharing, s[2].Sharing,
			s[0].UpdateOverhead, s[1].UpdateOverhead, s[2].UpdateOverhead,
			s[0].Layers, s[1].Layers, s[2].Layers)
	}
	fmt.Println()
	fmt.Println("Update overhead as a ratio of sums (all bytes pulled ÷ all bytes changed):")
	fmt.Println()
	fmt.Println("| strategy | popularity | update 16 | update 48 | update 94 |")
	fmt.Println("|---|---|---:|---:|---:|")
	for _, r := range rows {
		s := r.scores
		fmt.Printf("| %s | %s | %.3f | %.3f | %.3f |\n", r.name, r.pop, s[0].UpdateBytes, s[1].UpdateBytes, s[2].UpdateBytes)
	}
	return nil
}
