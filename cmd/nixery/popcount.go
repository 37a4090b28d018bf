package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/nixery-action/nixery-action/internal/limit"
	"github.com/nixery-action/nixery-action/pkg/outfile"
	"github.com/nixery-action/nixery-action/pkg/popularity"
	"github.com/nixery-action/nixery-action/pkg/storepath"
)

// popcountCommand is `nixery popcount`.
func popcountCommand() *command {
	return &command{
		name:    "popcount",
		summary: "compute popularity data from a binary cache (for --popularity)",
		usage:   "[--cache URL] [--output FILE] [--jobs N] [--timeout DURATION] (STORE-PATHS-FILE | STOREPATH...)",
		help: fmt.Sprintf(`Store paths are top-level ones, /nix/store/HASH-NAME; any other argument
is a store-paths file, read alone (plain or .xz; - is stdin), a file
inside a store path too (a channel's /nix/store/HASH-NAME/store-paths.xz).
Bounds (exceeding one is an error naming it):
  a store-paths file: at most %d paths and %s (after xz)
  a narinfo: at most %s; its References must be store path base names
    (HASH-NAME), or the cache is refused
  the closure walked: at most %d paths
  the whole run: --timeout`, popularity.MaxStorePaths, limit.Size(popularity.MaxStorePathsBytes),
			limit.Size(popularity.MaxNarinfoBytes), popularity.MaxClosurePaths),
		setup: func(fs *flag.FlagSet) func([]string) error {
			cache := fs.String("cache", "https://cache.nixos.org", "binary cache `URL` to read narinfos from: https://, http:// or file://")
			output := fs.String("output", "", "write the data to `FILE` instead of stdout (- is stdout)")
			jobs := fs.Int("jobs", 16, "`N` narinfos fetched at once")
			timeout := fs.Duration("timeout", popularity.DefaultTimeout, "give up after `DURATION` in all")
			return func(args []string) error {
				if len(args) == 0 {
					return usagef("name a store-paths file (plain or .xz; - for stdin) or store paths")
				}
				if *timeout <= 0 {
					return usagef("--timeout %s: give a positive duration such as 30m", *timeout)
				}
				pc := &popularity.Popcount{Cache: *cache, Jobs: *jobs, Timeout: *timeout}
				if err := pc.Validate(); err != nil {
					return usagef("--cache: %v", err)
				}
				paths, err := popcountInput(args)
				if err != nil {
					return err
				}
				if *output == "" || *output == "-" {
					return popcount(pc, paths, os.Stdout)
				}
				// Opened before the walk, which takes minutes: a path that
				// cannot be written fails now, and a failed run leaves what
				// was there.
				f, err := createOutput(*output)
				if err != nil {
					return err
				}
				defer f.Abort()
				if err := popcount(pc, paths, f); err != nil {
					return err
				}
				if err := f.Commit(); err != nil {
					return fmt.Errorf("write %s: %w", *output, err)
				}
				return nil
			}
		},
	}
}

// popcount walks the cache from paths, stopping on a signal, and writes
// the data to w.
func popcount(pc *popularity.Popcount, paths []string, w io.Writer) error {
	ctx, stop := interruptContext()
	defer stop()
	data, err := pc.Run(ctx, paths)
	if err != nil {
		return err
	}
	return popularity.Write(w, data)
}

// createOutput starts writing --output FILE, as outfile writes it: to a
// temporary file renamed into place when complete.
func createOutput(path string) (*outfile.File, error) {
	f, err := outfile.Create(path)
	var pe *fs.PathError
	switch {
	case errors.As(err, &pe):
		// The temporary file's name means nothing to the user.
		return nil, fmt.Errorf("--output %s: cannot write there (%v): name a file in a directory you can write to", path, pe.Err)
	case err != nil:
		return nil, fmt.Errorf("--output %s: %w", path, err)
	}
	return f, nil
}

// popcountInput reads the store paths to start from. Which kind each
// argument is goes by its form alone, never by what is on disk: a
// top-level store path (/nix/store/HASH-NAME, what a cache has a narinfo
// for) is a store path; anything else is a FILE listing them (- for
// stdin), a file inside a store path too (a channel's store-paths.xz).
// Store paths may be several; a FILE comes alone.
func popcountInput(args []string) ([]string, error) {
	if storepath.Exact(args[0]) {
		for _, a := range args[1:] {
			if !storepath.Exact(a) {
				return nil, usagef("%q is not a top-level store path (/nix/store/HASH-NAME): give one store-paths file, or store paths", a)
			}
		}
		return args, nil
	}
	if len(args) > 1 {
		return nil, usagef("%q is no top-level store path, so it is read as a store-paths file, which comes alone: give one store-paths file, or store paths", args[0])
	}
	var r io.Reader = os.Stdin
	if args[0] != "-" {
		if info, err := os.Stat(args[0]); err == nil && info.IsDir() {
			// A store path with the slash a shell's completion adds.
			return nil, usagef("%q is a directory, not a store-paths file: give store paths as /nix/store/HASH-NAME (no trailing /), or a file listing them", args[0])
		}
		f, err := os.Open(args[0])
		if err != nil {
			return nil, fmt.Errorf("read store paths: %w", err)
		}
		defer f.Close()
		r = f
	}
	paths, err := popularity.ReadStorePaths(r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", args[0], err)
	}
	return paths, nil
}
