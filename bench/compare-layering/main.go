// Command compare-layering prints the layering comparison of docs/layering.md:
// every strategy at layer budgets 4, 8 to 12, 16, 32, 48, 94 and 124, with and without
// popularity data, on the corpus in internal/layereval/testdata.
// bench/compare-layering.sh runs it.
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

var budgets = []int{4, 8, 9, 10, 11, 12, 16, 32, 48, 94, layers.MaxBudget}

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
	header := func(what string) {
		fmt.Print("| strategy | popularity |")
		for _, b := range budgets {
			fmt.Printf(" %s %d |", what, b)
		}
		fmt.Print("\n|---|---|")
		for range budgets {
			fmt.Print("---:|")
		}
		fmt.Println()
	}
	table := func(what string, value func(layereval.Score) float64, format string, extra func()) {
		header(what)
		for _, r := range rows {
			fmt.Printf("| %s | %s |", r.name, r.pop)
			for _, s := range r.scores {
				fmt.Printf(" "+format+" |", value(s))
			}
			fmt.Println()
		}
		if extra != nil {
			extra()
		}
		fmt.Println()
	}
	fmt.Println("Sharing (bytes of distinct paths ÷ bytes of distinct layers; 1 is perfect):")
	fmt.Println()
	table("sharing", func(s layereval.Score) float64 { return s.Sharing }, "%.3f", func() {
		fmt.Print("| *oracle*: knows which images hold each path (a reference, not a strategy) | every image |")
		for _, budget := range budgets {
			fmt.Printf(" %.3f |", b.OracleSharing(budget))
		}
		fmt.Println()
	})
	fmt.Println("Sharing in a host's layer store (docker, containerd's snapshots, podman), which keeps a layer once per chain of layers below it, so that images share only a common prefix; the same bytes over the bytes of the distinct chains:")
	fmt.Println()
	table("chain sharing", func(s layereval.Score) float64 { return s.ChainSharing }, "%.3f", nil)
	fmt.Println("Update overhead, mean of ratios (bytes pulled ÷ bytes changed; 1 is perfect):")
	fmt.Println()
	table("update", func(s layereval.Score) float64 { return s.UpdateOverhead }, "%.3f", nil)
	fmt.Println("*Joint oracle* (a reference, not a strategy): knows which images hold each path and which libraries are updated; sharing, then update overhead:")
	fmt.Println()
	fmt.Print("| figure |")
	for _, budget := range budgets {
		fmt.Printf(" %d |", budget)
	}
	fmt.Print("\n|---|")
	for range budgets {
		fmt.Print("---:|")
	}
	fmt.Println()
	var shares, updates []float64
	for _, budget := range budgets {
		s, u := b.JointOracle(budget)
		shares, updates = append(shares, s), append(updates, u)
	}
	for _, row := range []struct {
		name string
		v    []float64
	}{{"sharing", shares}, {"update overhead", updates}} {
		fmt.Printf("| %s |", row.name)
		for _, v := range row.v {
			fmt.Printf(" %.3f |", v)
		}
		fmt.Println()
	}
	fmt.Println()
	fmt.Println("Update overhead as a ratio of sums (all bytes pulled ÷ all bytes changed):")
	fmt.Println()
	table("update", func(s layereval.Score) float64 { return s.UpdateBytes }, "%.3f", nil)
	fmt.Println("Update overhead when an image's own requested packages are updated, one at a time (the figures above count the libraries' updates only), as a ratio of sums:")
	fmt.Println()
	table("own update", func(s layereval.Score) float64 { return s.OwnUpdateBytes }, "%.3f", nil)
	fmt.Println("Layers per image:")
	fmt.Println()
	table("layers", func(s layereval.Score) float64 { return s.Layers }, "%.1f", nil)
	return nil
}
