// Command packbench times packers of the same store paths for
// bench/pack.sh and for choosing pkg/archive's level and block
// size (docs/packing.md). Besides nixery's packer (pkg/archive) it has the
// baselines: the way Nixery packed a layer (archive/tar into
// single-threaded compress/gzip at its default level) and a plain tar into
// pgzip at any level and block size. It is a measuring tool, not part of
// the shipped binary.
//
//	packbench -packer seed|nixery|pgzip [-compression gzip|zstd] [-level N] [-block BYTES] [-repeat N] [-output FILE] PATH...
//	packbench -decompress gzip|pgzip|zstd [-repeat N] FILE
//
// It prints one JSON object: the fastest of the runs in seconds, the
// uncompressed tar's bytes (for the seed and pgzip packers, and when
// decompressing) and the blob's. -compression applies to the nixery
// packer. -decompress times reading a blob's tar back as a client
// pulling the layer does: gzip with Go's compress/gzip (go-containerregistry,
// containerd without pigz), pgzip with klauspost/pgzip's reader (podman's
// containers/image), zstd with klauspost/compress (all of them).
package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/pgzip"

	"github.com/nixery-action/nixery-action/internal/counting"
	"github.com/nixery-action/nixery-action/internal/plaintar"
	"github.com/nixery-action/nixery-action/pkg/archive"
)

type result struct {
	Packer      string  `json:"packer,omitempty"`
	Compression string  `json:"compression,omitempty"`
	Decoder     string  `json:"decoder,omitempty"`
	Level       int     `json:"level,omitempty"`
	Block       int     `json:"block,omitempty"`
	Seconds     float64 `json:"seconds"`
	TarBytes    int64   `json:"tarBytes,omitempty"`
	Size        int64   `json:"size"`
}

func main() {
	packer := flag.String("packer", "nixery", "nixery, seed or pgzip")
	compression := flag.String("compression", "gzip", "the nixery packer's compression: gzip or zstd")
	decompress := flag.String("decompress", "", "instead of packing, time decompressing the blob FILE with gzip, pgzip or zstd")
	level := flag.Int("level", 0, "level for the nixery (gzip or zstd) and pgzip packers (0: nixery's default)")
	block := flag.Int("block", 1<<20, "pgzip block size in bytes for the pgzip packer")
	repeat := flag.Int("repeat", 1, "runs; the fastest counts")
	out := flag.String("output", os.DevNull, "where the blob goes")
	flag.Parse()
	if *decompress != "" {
		if flag.NArg() != 1 {
			fail(fmt.Errorf("-decompress takes one blob FILE"))
		}
		timeDecompress(*decompress, flag.Arg(0), max(*repeat, 1))
		return
	}
	comp := archive.Compression(*compression)
	if err := (archive.Options{Compression: comp}).Validate(); err != nil {
		fail(err)
	}
	if *level == 0 {
		*level = comp.DefaultLevel()
	}
	var pack func(w io.Writer) (int64, error)
	switch *packer {
	case "nixery":
		pack = func(w io.Writer) (int64, error) {
			_, err := archive.PackPaths(w, flag.Args(), archive.Options{Compression: comp, Level: *level})
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
	switch *packer {
	case "seed":
		r.Level, r.Block = gzip.DefaultCompression, 0
	case "nixery":
		r.Compression = comp.String()
		if comp == archive.Zstd {
			r.Block = 0
		}
	}
	for i := 0; i < max(*repeat, 1); i++ {
		f, err := os.Create(*out)
		if err != nil {
			fail(err)
		}
		counter := &counting.Writer{W: f}
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
		r.TarBytes, r.Size = tarBytes, counter.N
	}
	json.NewEncoder(os.Stdout).Encode(r)
}

// timeDecompress reads file's tar back repeat times with decoder, from
// memory into nothing, and prints the fastest run.
func timeDecompress(decoder, file string, repeat int) {
	blob, err := os.ReadFile(file)
	if err != nil {
		fail(err)
	}
	r := result{Decoder: decoder, Size: int64(len(blob))}
	for i := 0; i < repeat; i++ {
		start := time.Now()
		var zr io.Reader
		switch decoder {
		case "gzip":
			zr, err = gzip.NewReader(bytes.NewReader(blob))
		case "pgzip":
			zr, err = pgzip.NewReader(bytes.NewReader(blob))
		case "zstd":
			var d *zstd.Decoder
			d, err = zstd.NewReader(bytes.NewReader(blob))
			if err == nil {
				defer d.Close()
			}
			zr = d
		default:
			err = fmt.Errorf("unknown decoder %q: gzip, pgzip or zstd", decoder)
		}
		if err != nil {
			fail(err)
		}
		n, err := io.Copy(io.Discard, zr)
		if err != nil {
			fail(err)
		}
		if s := time.Since(start).Seconds(); i == 0 || s < r.Seconds {
			r.Seconds = s
		}
		r.TarBytes = n
	}
	json.NewEncoder(os.Stdout).Encode(r)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "packbench:", err)
	os.Exit(1)
}
