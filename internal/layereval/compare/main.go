// Command compare prints the layering comparison table of docs/layering.md:
// every strategy at layer budgets 16, 48 and 94, with and without
// popularity data, on the corpus in internal/layereval/testdata.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/nixery-action/nixery-action/internal/layereval"
	"github.com/nixery-action/nixery-action/pkg/layers"
	"github.com/nixery-action/nixery-action/pkg/popularity"
)

func main() {
	corpus := flag.String("corpus", "internal/layereval/testdata/corpus.json.gz", "corpus file")
	flag.Parse()
	c, err := layereval.Load(*corpus)
	if err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		os.Exit(1)
	}
	fmt.Printf("corpus: %d packages, %d images, %d updated libraries\n\n", len(c.Packages), len(c.Images), len(c.Updates))
	fmt.Println("| strategy | popularity | sharing 16 | sharing 48 | sharing 94 | update 16 | update 48 | update 94 | layers 16/48/94 |")
	fmt.Println("|---|---|---:|---:|---:|---:|---:|---:|---|")
	for _, name := range layers.Strategies() {
		for _, pop := range []popularity.Data{nil, c.Popularity()} {
			var scores []layereval.Score
			for _, budget := range []int{16, 48, 94} {
				s, err := layereval.Evaluate(c, name, budget, pop)
				if err != nil {
					fmt.Fprintln(os.Stderr, "compare:", err)
					os.Exit(1)
				}
				scores = append(scores, s)
			}
			label := "none"
			if pop != nil {
				label = "corpus"
			}
			fmt.Printf("| %s | %s | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f | %.0f/%.0f/%.0f |\n", name, label,
				scores[0].Sharing, scores[1].Sharing, scores[2].Sharing,
				scores[0].UpdateOverhead, scores[1].UpdateOverhead, scores[2].UpdateOverhead,
				scores[0].Layers, scores[1].Layers, scores[2].Layers)
		}
	}
}
