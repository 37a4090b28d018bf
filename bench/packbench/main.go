// Command packbench times packers of the same store paths for
// bench/pack.sh and for choosing pkg/archive's level and block
// size (docs/packing.md). Besides nixery's packer (pkg/archive) it has the
// baselines: the way Nixery packed a layer (archive/tar into
// single-threaded compress/gzip at its default level) and a plain tar into
// pgzip at any level and block size. It is a measuring tool, not part of
// the shipped binary.
//
//	packbench -packer seed|nixery|pgzip [-level N] [-block BYTES] [-repeat N] [-output FILE] PATH...
//
// It prints one JSON object: the fastest of the runs in seconds, the
// uncompressed tar's bytes (for the seed and pgzip packers) and the
// blob's.
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
	"runtime"
	"strings"
	"time"

	"github.com/klauspost/pgzip"

	"github.com/nixery-action/nixery-action/pkg/archive"
)

type result struct {
	Packer   string  `json:"packer"`
	Level    int     `json:"level,omitempty"`
	Block    int     `json:"block,omitempty"`
	Seconds  float64 `json:"seconds"`
	TarBytes int64   `json:"tarBytes,omitempty"`
	Size     int64   `json:"size"`
}

func main() {
	packer := flag.String("packer", "nixery", "nixery, seed or pgzip")
	level := flag.Int("level", 0, "gzip level for the nixery and pgzip packers (0: nixery's default)")
	block := flag.Int("block", 1<<20, "pgzip block size in bytes for the pgzip packer")
	repeat := flag.Int("repeat", 1, "runs; the fastest counts")
	out := flag.String("output", os.DevNull, "where the blob goes")
	flag.Parse()
	if *level == 0 {
		*level = archive.DefaultLevel
	}
	var pack func(w io.Writer) (int64, error)
	switch *packer {
	case "nixery":
		pack = func(w io.Writer) (int64, error) {
			_, err := archive.PackPaths(w, flag.Args(), archive.Options{Level: *level})
			return 0, err
		}
	case "seed":
		pack = func(w io.Writer) (int64, error) {
			gz := gzip.NewWriter(w)
			n, err := plainTar(gz, flag.Args())
			if err != nil {
				return 0, err
			}
			return n, gz.Close()
		}
	case "pgzip":
		pack = func(w io.Writer) (int64, error) {
			gz, err := pgzip.NewWriterLevel(w, *level)
			if err != nil {
				return 0, err
			}
			// As pkg/archive does: as many blocks in flight as CPUs.
			if err := gz.SetConcurrency(*block, max(runtime.GOMAXPROCS(0)-1, 1)); err != nil {
				return 0, err
			}
			n, err := plainTar(gz, flag.Args())
			if err != nil {
				return 0, err
			}
			return n, gz.Close()
		}
	default:
		fail(fmt.Errorf("unknown packer %q", *packer))
	}

	r := result{Packer: *packer, Level: *level, Block: *block}
	if *packer == "seed" {
		r.Level, r.Block = gzip.DefaultCompression, 0
	}
	for i := 0; i < max(*repeat, 1); i++ {
		f, err := os.Create(*out)
		if err != nil {
			fail(err)
		}
		counter := &counting{w: f}
		start := time.Now()
		tarBytes, err := pack(counter)
		if err == nil {
			err = f.Close()
		}
		if err != nil {
			fail(err)
		}
		if s := time.Since(start).Seconds(); i == 0 || s < r.Seconds {
			r.Seconds = s
		}
		r.TarBytes, r.Size = tarBytes, counter.n
	}
	json.NewEncoder(os.Stdout).Encode(r)
}

// plainTar writes the tar of paths the simple way (headers from the
// files' metadata), hashing it on the way as a layer's diffID needs, and
// returns its length.
func plainTar(w io.Writer, paths []string) (int64, error) {
	diff := sha256.New()
	tarCount := &counting{w: io.MultiWriter(diff, w)}
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
	return tarCount.n, nil
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
