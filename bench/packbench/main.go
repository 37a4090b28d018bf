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
	"compress/gzip"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"time"

	"github.com/klauspost/pgzip"

	"github.com/nixery-action/nixery-action/internal/plaintar"
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
			n, _, err := plaintar.Write(gz, flag.Args())
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
			n, _, err := plaintar.Write(gz, flag.Args())
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
