package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"

	"github.com/nixery-action/nixery-action/pkg/archive"
	"github.com/nixery-action/nixery-action/pkg/outfile"
	"github.com/nixery-action/nixery-action/pkg/storepath"
)

// packCommand is `nixery pack`.
func packCommand() *command {
	return &command{
		name:    "pack",
		summary: "pack store paths into one reproducible layer blob (tar + gzip or zstd)",
		usage:   "--output FILE [--compression gzip|zstd[:LEVEL]] STOREPATH...",
		setup: func(fs *flag.FlagSet) func([]string) error {
			output := fs.String("output", "", "the blob `FILE` to write (not -: stdout carries the blob's description)")
			compress := fs.String("compression", string(archive.Gzip), compressionUsage)
			level := new(int)
			fs.Var((*levelFlag)(level), "level", fmt.Sprintf("`LEVEL` of the compression, as --compression ALGO:LEVEL gives it (gzip 1 (fastest) to 9, default %d)", archive.DefaultLevel))
			concurrency := fs.Int("concurrency", 0, "`N` blocks (zstd: 16 MiB jobs) compressed at once (default: the number of CPUs); never changes the output")
			return func(args []string) error {
				if *output == "" {
					return usagef("--output FILE is required")
				}
				if *output == "-" {
					return usagef("--output -: the blob cannot go to stdout, which carries its description: name a file")
				}
				if len(args) == 0 {
					return usagef("name the store paths to pack")
				}
				// Nix's own entries of the store (.links, the hard-link
				// directory) are no store paths: only HASH-NAME is.
				for _, p := range args {
					if !storepath.Exact(p) {
						return usagef("%q is not a top-level store path (/nix/store/HASH-NAME, HASH 32 nix-base32 characters)", p)
					}
				}
				if *concurrency < 0 || *concurrency > archive.MaxConcurrency {
					return usagef("--concurrency %d is out of range: use 1 to %d, or 0 for one per CPU", *concurrency, archive.MaxConcurrency)
				}
				compression, level, err := compressionOptions(*compress, *level)
				if err != nil {
					return err
				}
				// A signal stops packing, and the temporary file goes.
				ctx, stop := interruptContext()
				defer stop()
				blob, err := packToFile(*output, args, archive.Options{Compression: compression, Level: level, Concurrency: *concurrency, Context: ctx})
				if err != nil {
					return err
				}
				return json.NewEncoder(os.Stdout).Encode(blob)
			}
		},
	}
}

// packToFile writes the blob to dest as outfile does: renamed into place
// when complete (a failed run leaves what was there), or streamed into a
// device, FIFO or symlink, which stays what it is.
func packToFile(dest string, paths []string, o archive.Options) (archive.Blob, error) {
	f, err := outfile.Create(dest)
	if err != nil {
		return archive.Blob{}, fmt.Errorf("create %s: %w", dest, err)
	}
	defer f.Abort()
	blob, err := archive.PackPaths(f, paths, o)
	if err != nil {
		return archive.Blob{}, err
	}
	if err := f.Commit(); err != nil {
		return archive.Blob{}, fmt.Errorf("write %s: %w", dest, err)
	}
	return blob, nil
}
