// Command packbench times packers of the same store paths for
// scripts/bench-pack.sh: nixery's (pkg/archive) and, as the baseline, the
// seed's way of packing a layer: archive/tar into a single-threaded
// compress/gzip at its default level. It is a measuring tool, not part of
// the shipped binary.
package main

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nixery-action/nixery-action/pkg/archive"
)

type result struct {
	Packer   string  `json:"packer"`
	Seconds  float64 `json:"seconds"`
	TarBytes int64   `json:"tarBytes"`
	Size     int64   `json:"size"`
}

func main() {
	packer := flag.String("packer", "nixery", "nixery or seed")
	level := flag.Int("level", 0, "gzip level for the nixery packer (0: its default)")
	out := flag.String("output", os.DevNull, "where the blob goes")
	flag.Parse()
	f, err := os.Create(*out)
	if err != nil {
		fail(err)
	}
	defer f.Close()
	counter := &counting{w: f}
	start := time.Now()
	var tarBytes int64
	switch *packer {
	case "nixery":
		if _, err := archive.PackPaths(counter, flag.Args(), archive.Options{Level: *level}); err != nil {
			fail(err)
		}
	case "seed":
		tarBytes, err = seedPack(counter, flag.Args())
		if err != nil {
			fail(err)
		}
	default:
		fail(fmt.Errorf("unknown packer %q", *packer))
	}
	r := result{Packer: *packer, Seconds: time.Since(start).Seconds(), TarBytes: tarBytes, Size: counter.n}
	json.NewEncoder(os.Stdout).Encode(r)
}

// seedPack is the single-threaded baseline: tar into gzip at the default
// level, hashing the tar on the way as a layer needs.
func seedPack(w io.Writer, paths []string) (int64, error) {
	gz := gzip.NewWriter(w)
	diff := sha256.New()
	tarCount := &counting{w: io.MultiWriter(diff, gz)}
	tw := tar.NewWriter(tarCount)
	for _, root := range paths {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			var link string
			if d.Type()&fs.ModeSymlink != 0 {
				if link, err = os.Readlink(path); err != nil {
					return err
				}
			} else if !d.Type().IsRegular() && !d.IsDir() {
				return nil
			}
			h, err := tar.FileInfoHeader(info, link)
			if err != nil {
				return err
			}
			h.Name = strings.TrimPrefix(path, "/")
			if err := tw.WriteHeader(h); err != nil {
				return err
			}
			if !d.Type().IsRegular() {
				return nil
			}
			f, err := os.Open(path)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = io.Copy(tw, f)
			return err
		})
		if err != nil {
			return 0, err
		}
	}
	if err := tw.Close(); err != nil {
		return 0, err
	}
	return tarCount.n, gz.Close()
}

type counting struct {
	w io.Writer
	n int64
}

func (c *counting) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "packbench:", err)
	os.Exit(1)
}
