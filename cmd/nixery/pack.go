package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/nixery-action/nixery-action/pkg/archive"
	"github.com/nixery-action/nixery-action/pkg/image"
	"github.com/nixery-action/nixery-action/pkg/storepath"
)

func init() {
	register(&command{
		name:    "pack",
		summary: "pack store paths into one reproducible layer blob (tar + gzip)",
		usage:   "--output FILE [--level N] STOREPATH...",
		setup: func(fs *flag.FlagSet) func([]string) error {
			output := fs.String("output", "", "the blob `FILE` to write")
			level := fs.Int("level", 0, fmt.Sprintf("gzip level, 1 (fastest) to 9 (default %d)", archive.DefaultLevel))
			concurrency := fs.Int("concurrency", 0, "blocks compressed at once (default: the number of CPUs); never changes the output")
			return func(args []string) error {
				if *output == "" {
					return usagef("--output FILE is required")
				}
				if len(args) == 0 {
					return usagef("name the store paths to pack")
				}
				for _, p := range args {
					if !storepath.Valid(p) {
						return usagef("%q is not a top-level store path (/nix/store/HASH-NAME)", p)
					}
				}
				if *level != 0 && (*level < 1 || *level > 9) {
					return usagef("--level %d is out of range: use 1 to 9", *level)
				}
				created, err := image.SourceDateEpoch(os.Getenv)
				if err != nil {
					return err
				}
				// A signal stops packing, and the temporary file goes.
				ctx, stop := interruptContext()
				defer stop()
				blob, err := packToFile(*output, args, archive.Options{Level: *level, Concurrency: *concurrency, ModTime: packTime(created), Context: ctx})
				if err != nil {
					return err
				}
				return json.NewEncoder(os.Stdout).Encode(blob)
			}
		},
	})
}

// packToFile writes the blob next to its destination and renames it into
// place, so a failed run leaves no partial file behind.
func packToFile(dest string, paths []string, o archive.Options) (archive.Blob, error) {
	tmp, err := os.CreateTemp(filepath.Dir(dest), ".pack-")
	if err != nil {
		return archive.Blob{}, fmt.Errorf("create %s: %w", dest, err)
	}
	defer os.Remove(tmp.Name())
	blob, err := archive.PackPaths(tmp, paths, o)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return archive.Blob{}, err
	}
	// CreateTemp's 0600 is for secrets; a layer is for other tools to read.
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return archive.Blob{}, err
	}
	if err := os.Rename(tmp.Name(), dest); err != nil {
		return archive.Blob{}, err
	}
	return blob, nil
}
