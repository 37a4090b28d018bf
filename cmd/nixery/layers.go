package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/nixery-action/nixery-action/internal/limit"
	"github.com/nixery-action/nixery-action/pkg/layers"
	"github.com/nixery-action/nixery-action/pkg/popularity"
)

// layersCommand is `nixery layers`, which prints a layer plan as JSON;
// scripts depend on its flags and output:
//
//	nixery layers --closure FILE [--root PATH]... [--popularity FILE] [--budget N] [--strategy NAME]
//	{"layers":[{"key":"sha256:…","paths":["/nix/store/…"],"size":N},…]}
func layersCommand() *command {
	return &command{
		name:    "layers",
		summary: "plan the layers of a closure (nix path-info --json --recursive --closure-size)",
		usage:   "--closure FILE [--root PATH]... [--popularity FILE] [--budget N] [--strategy NAME]",
		setup: func(fs *flag.FlagSet) func([]string) error {
			closure := fs.String("closure", "", fmt.Sprintf("closure graph `FILE` from nix path-info --json --recursive --closure-size, at most %s and %d paths; - reads stdin", limit.Size(layers.MaxClosureBytes), layers.MaxClosurePaths))
			var roots listFlag
			fs.Var(&roots, "root", "a requested store `PATH` (repeat); default: the paths nothing else references")
			pop := fs.String("popularity", "", "popularity data `FILE` (Nixery's format, at most "+limit.Size(popularity.MaxBytes)+")")
			budget := fs.Int("budget", layers.DefaultBudget, fmt.Sprintf("most layers (`N`), 1 to %d (a build adds its customisation layer on top: at most %d, Docker's limit)", layers.MaxBudget, layers.MaxImageLayers))
			strategy := fs.String("strategy", "", "layering strategy `NAME`: "+strings.Join(layers.Strategies(), ", ")+" (default "+layers.DefaultStrategy+"); help lists them")
			return func(args []string) error {
				if *strategy == "help" {
					return printStrategies(os.Stdout)
				}
				if *closure == "" {
					return usagef("--closure FILE is required (- for stdin)")
				}
				if len(args) > 0 {
					return usagef("unexpected arguments %q: store paths go in --root", args)
				}
				// Bad values are one line each, then the --help hint.
				opts := layers.Options{Strategy: *strategy, Budget: *budget}
				if err := layerOptions(opts, "--budget"); err != nil {
					return err
				}
				ctx, stop := interruptContext()
				defer stop()
				plan, err := planFile(ctx, *closure, roots.items, *pop, opts)
				if err != nil {
					return err
				}
				if err := json.NewEncoder(os.Stdout).Encode(plan); err != nil {
					return fmt.Errorf("write the plan: %w", err)
				}
				return nil
			}
		},
	}
}

// layerOptions checks layer options, naming the flags: budgetFlag for the
// budget (0 is out of range here: the flags have a default), --strategy.
// What is wrong is the command line's: a usage error.
func layerOptions(o layers.Options, budgetFlag string) error {
	if o.Budget == 0 {
		return usagef("%s %s", budgetFlag, (&layers.BudgetError{}).Range())
	}
	var be *layers.BudgetError
	var se *layers.StrategyError
	switch err := o.Validate(); {
	case errors.As(err, &be):
		return usagef("%s %s", budgetFlag, be.Range())
	case errors.As(err, &se):
		return usagef("unknown --strategy %q: use one of %s (--strategy help lists them)", se.Name, strings.Join(layers.Strategies(), ", "))
	case err != nil:
		return usageError{err.Error()}
	}
	return nil
}

// printStrategies lists the layering strategies, one a line, the default
// marked.
func printStrategies(w io.Writer) error {
	for _, name := range layers.Strategies() {
		if name == layers.DefaultStrategy {
			name += " (default)"
		}
		if _, err := fmt.Fprintln(w, name); err != nil {
			return err
		}
	}
	return nil
}

// planFile reads a closure graph (- for stdin) and popularity data, and
// plans the layers.
func planFile(ctx context.Context, closure string, roots []string, popFile string, opts layers.Options) (*layers.LayerPlan, error) {
	in := os.Stdin
	if closure == "-" {
		closure = "stdin"
	} else {
		f, err := os.Open(closure)
		if err != nil {
			return nil, fmt.Errorf("read the closure graph: %w", err)
		}
		defer f.Close()
		in = f
	}
	g, err := layers.ReadGraph(in)
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return nil, fmt.Errorf("read the closure graph: %w", err)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", closure, err)
	}
	if err := g.SetRoots(roots); err != nil {
		return nil, fmt.Errorf("%s: %w", closure, err)
	}
	if popFile != "" {
		if opts.Popularity, err = readPopularity(ctx, popFile); err != nil {
			return nil, err
		}
	}
	return layers.Plan(g, opts)
}

// readPopularity reads the popularity data file (a FIFO too: the shell's
// <(...)). Opening a FIFO waits for its writer and reading it for the
// writer's end, neither of which a signal interrupts: both happen in a
// goroutine, given up on (and left to the process's exit) when ctx ends.
func readPopularity(ctx context.Context, file string) (popularity.Data, error) {
	type loaded struct {
		data popularity.Data
		err  error
	}
	done := make(chan loaded, 1)
	go func() {
		f, err := os.Open(file)
		if err != nil {
			done <- loaded{err: fmt.Errorf("read popularity data: %w", err)}
			return
		}
		defer f.Close()
		d, err := popularity.Load(f)
		if err != nil {
			err = fmt.Errorf("%s: %w", file, err)
		}
		done <- loaded{d, err}
	}()
	select {
	case l := <-done:
		return l.data, l.err
	case <-ctx.Done():
		return nil, fmt.Errorf("read popularity data from %s: %w", file, ctx.Err())
	}
}
