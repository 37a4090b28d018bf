package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/nixery-action/nixery-action/pkg/layers"
	"github.com/nixery-action/nixery-action/pkg/popularity"
)

func init() {
	register(&command{
		name:    "layers",
		summary: "plan the layers of a closure (nix path-info --json --recursive --closure-size)",
		usage:   "--closure FILE [--root PATH]... [--popularity FILE] [--budget N] [--strategy NAME]",
		setup: func(fs *flag.FlagSet) func([]string) error {
			closure := fs.String("closure", "", "closure graph `FILE` from nix path-info --json --recursive --closure-size; - reads stdin")
			var roots listFlag
			fs.Var(&roots, "root", "a requested store `PATH` (repeat); default: the paths nothing else references")
			pop := fs.String("popularity", "", "popularity data `FILE` (Nixery's format)")
			budget := fs.Int("budget", layers.DefaultBudget, fmt.Sprintf("most layers, 1 to %d", layers.MaxBudget))
			strategy := fs.String("strategy", "", "layering strategy: "+strings.Join(layers.Strategies(), ", ")+" (default "+layers.DefaultStrategy+")")
			return func(args []string) error {
				if *closure == "" {
					return usagef("--closure FILE is required (- for stdin)")
				}
				if len(args) > 0 {
					return usagef("unexpected arguments %q: store paths go in --root", args)
				}
				if *budget < 1 || *budget > layers.MaxBudget {
					return usagef("--budget %d is out of range: use 1 to %d", *budget, layers.MaxBudget)
				}
				if *strategy != "" && !contains(layers.Strategies(), *strategy) {
					return usagef("unknown --strategy %q: use one of %s", *strategy, strings.Join(layers.Strategies(), ", "))
				}
				plan, err := planFile(*closure, roots.items, *pop, layers.Options{Strategy: *strategy, Budget: *budget})
				if err != nil {
					return err
				}
				return json.NewEncoder(os.Stdout).Encode(plan)
			}
		},
	})
}

func planFile(closure string, roots []string, popFile string, opts layers.Options) (*layers.Plan, error) {
	var data []byte
	var err error
	if closure == "-" {
		data, err = io.ReadAll(os.Stdin)
	} else {
		data, err = os.ReadFile(closure)
	}
	if err != nil {
		return nil, fmt.Errorf("read the closure graph: %w", err)
	}
	g, err := layers.ParseGraph(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", closure, err)
	}
	if err := g.SetRoots(roots); err != nil {
		return nil, err
	}
	if popFile != "" {
		f, err := os.Open(popFile)
		if err != nil {
			return nil, fmt.Errorf("read popularity data: %w", err)
		}
		defer f.Close()
		if opts.Popularity, err = popularity.Load(f); err != nil {
			return nil, fmt.Errorf("%s: %w", popFile, err)
		}
	}
	return layers.Build(g, opts)
}
