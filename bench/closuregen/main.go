// Command closuregen prints a synthetic closure (internal/closuregen) as
// `nix path-info --json` does, for bench/plan.sh.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"

	"github.com/nixery-action/nixery-action/internal/closuregen"
)

func main() {
	n := flag.Int("n", 10000, "paths")
	seed := flag.Int64("seed", 13, "seed")
	flat := flag.Bool("flat", false, "a flat closure instead of a dense one")
	flag.Parse()
	infos := closuregen.Dense(*seed, *n)
	if *flat {
		infos = closuregen.Flat(*seed, *n)
	}
	if err := json.NewEncoder(os.Stdout).Encode(infos); err != nil {
		fmt.Fprintln(os.Stderr, "closuregen:", err)
		os.Exit(1)
	}
}
