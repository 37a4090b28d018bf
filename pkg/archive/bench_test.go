package archive

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/klauspost/pgzip"

	"github.com/nixery-action/nixery-action/internal/plaintar"
)

// The benchmarks pack a corpus of real files: the Go toolchain's
// binaries and its crypto sources (about 31 MB of tar, half machine code,
// half text), each directory standing for one store path. SetBytes counts
// the uncompressed tar, so MB/s compare across packers; size/tar is the
// compressed size over the tar's. bench/pack.sh measures the same
// on several hundred MB of real store paths.
//
//	go test -run '^$' -bench BenchmarkPack -benchtime 3x ./pkg/archive/

// benchCorpus returns the corpus's directories and its tar (uncompressed).
func benchCorpus(b *testing.B) ([]string, []byte) {
	b.Helper()
	out, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		b.Fatalf("go env GOROOT: %v", err)
	}
	goroot := strings.TrimSpace(string(out))
	roots := []string{filepath.Join(goroot, "bin"), filepath.Join(goroot, "src", "crypto")}
	var blob bytes.Buffer
	if _, err := packRoots(&blob, roots, Options{Level: 1}); err != nil {
		b.Fatal(err)
	}
	zr, err := gzip.NewReader(&blob)
	if err != nil {
		b.Fatal(err)
	}
	tarBytes, err := io.ReadAll(zr)
	if err != nil {
		b.Fatal(err)
	}
	return roots, tarBytes
}

// packRoots packs directories as the store paths nix/store/<their names>.
func packRoots(w io.Writer, roots []string, o Options) (Blob, error) {
	p, err := newPacker(w, o)
	if err != nil {
		return Blob{}, err
	}
	if err := p.dirs("nix/", "nix/store/"); err != nil {
		return Blob{}, err
	}
	for _, r := range roots {
		if err := p.addTree(r, "nix/store/"+filepath.Base(r)); err != nil {
			return Blob{}, err
		}
	}
	return p.close()
}

// countWriter counts what is written to it and drops it.
type countWriter int64

func (c *countWriter) Write(b []byte) (int, error) { *c += countWriter(len(b)); return len(b), nil }

// BenchmarkPackPaths packs the corpus from disk at each level, then at
// the default level with 1 to 4 blocks compressed at once, then as the
// plain tar that verifies a cached layer.
func BenchmarkPackPaths(b *testing.B) {
	roots, tarBytes := benchCorpus(b)
	run := func(name string, o Options) {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(tarBytes)))
			var size countWriter
			for b.Loop() {
				size = 0
				if _, err := packRoots(&size, roots, o); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(size)/float64(len(tarBytes)), "size/tar")
		})
	}
	for level := 1; level <= 6; level++ {
		run(fmt.Sprintf("level=%d", level), Options{Level: level})
	}
	for c := 1; c <= 4; c++ {
		run(fmt.Sprintf("concurrency=%d", c), Options{Concurrency: c})
	}
	// What verifying a cached layer costs: the plain tar, hashed.
	run("uncompressed", Options{Uncompressed: true})
}

// BenchmarkPackBaseline is the packer Nixery used, for comparison in the
// same run: a tar of the same files into compress/gzip at its default
// level, on one core, with the tar hashed on the way.
func BenchmarkPackBaseline(b *testing.B) {
	roots, tarBytes := benchCorpus(b)
	b.SetBytes(int64(len(tarBytes)))
	var size countWriter
	for b.Loop() {
		size = 0
		gz := gzip.NewWriter(&size)
		if _, _, err := plaintar.Write(gz, roots); err != nil {
			b.Fatal(err)
		}
		if err := gz.Close(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(size)/float64(len(tarBytes)), "size/tar")
}

// BenchmarkPackCompress compresses the corpus's tar, already in memory,
// with pgzip at each level and block size: the compression alone, which
// is what the level and block size change (docs/packing.md).
func BenchmarkPackCompress(b *testing.B) {
	_, tarBytes := benchCorpus(b)
	for _, level := range []int{1, 2, 3, 4, 5, 6} {
		for _, block := range []int{256 << 10, 512 << 10, 1 << 20, 2 << 20} {
			b.Run(fmt.Sprintf("level=%d/block=%dKiB", level, block>>10), func(b *testing.B) {
				b.SetBytes(int64(len(tarBytes)))
				var size countWriter
				for b.Loop() {
					size = 0
					gz, err := pgzip.NewWriterLevel(&size, level)
					if err != nil {
						b.Fatal(err)
					}
					if err := gz.SetConcurrency(block, max(runtime.GOMAXPROCS(0)-1, 1)); err != nil {
						b.Fatal(err)
					}
					if _, err := gz.Write(tarBytes); err != nil {
						b.Fatal(err)
					}
					if err := gz.Close(); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(size)/float64(len(tarBytes)), "size/tar")
			})
		}
	}
}

// BenchmarkPackCustomisation builds the symlink farm of two packages with
// overlapping directories.
func BenchmarkPackCustomisation(b *testing.B) {
	var pkgs []string
	store := b.TempDir() // one store: a package elsewhere leads out of it
	for _, name := range []string{"aaa-one", "bbb-two"} {
		pkg := filepath.Join(store, name)
		for _, dir := range []string{"bin", "lib", "share/man/man1", "share/doc"} {
			for i := range 50 {
				p := filepath.Join(pkg, dir, fmt.Sprintf("%s-%d", name, i))
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					b.Fatal(err)
				}
				if err := os.WriteFile(p, nil, 0o644); err != nil {
					b.Fatal(err)
				}
			}
		}
		pkgs = append(pkgs, pkg)
	}
	for b.Loop() {
		if _, err := PackCustomisation(io.Discard, Customisation{Packages: pkgs}, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}
