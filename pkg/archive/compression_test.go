package archive

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestParseCompression(t *testing.T) {
	for _, c := range []struct {
		in    string
		want  Compression
		level int
	}{
		{"gzip", Gzip, 0},
		{"zstd", Zstd, 0},
		{"gzip:1", Gzip, 1},
		{"gzip:9", Gzip, 9},
		{"zstd:1", Zstd, 1},
		{"zstd:3", Zstd, 3},
		{"zstd:22", Zstd, 22},
		{" zstd:19 ", Zstd, 19},
	} {
		got, level, err := ParseCompression(c.in)
		assert.NilError(t, err, c.in)
		assert.Equal(t, got, c.want, c.in)
		assert.Equal(t, level, c.level, c.in)
	}
	for _, c := range []struct{ in, want string }{
		{"", `unknown compression "": use gzip or zstd`},
		{"xz", `unknown compression "xz": use gzip or zstd`},
		{"ZSTD", `unknown compression "ZSTD"`},
		{"zstd3", `unknown compression "zstd3"`},
		{"gzip:0", `compression "gzip:0": the gzip level is 1 to 9`},
		{"gzip:10", `the gzip level is 1 to 9`},
		{"zstd:0", `compression "zstd:0": the zstd level is 1 to 22`},
		{"zstd:23", `the zstd level is 1 to 22`},
		{"zstd:", `the zstd level is 1 to 22`},
		{"zstd:fast", `the zstd level is 1 to 22`},
		{"zstd:-1", `the zstd level is 1 to 22`},
	} {
		_, _, err := ParseCompression(c.in)
		assert.ErrorContains(t, err, c.want, c.in)
	}
}

func TestCompressionValidate(t *testing.T) {
	assert.NilError(t, Options{Compression: Zstd, Level: 22}.Validate())
	assert.ErrorContains(t, Options{Compression: Zstd, Level: 23}.Validate(), "zstd level 23 is out of range: use 1 to 22")
	assert.ErrorContains(t, Options{Level: 10}.Validate(), "gzip level 10 is out of range: use 1 to 9")
	assert.ErrorContains(t, Options{Compression: "xz"}.Validate(), `unknown compression "xz"`)
	assert.Equal(t, Compression("").MediaType(), "application/vnd.oci.image.layer.v1.tar+gzip")
	assert.Equal(t, Gzip.MediaType(), "application/vnd.oci.image.layer.v1.tar+gzip")
	assert.Equal(t, Zstd.MediaType(), "application/vnd.oci.image.layer.v1.tar+zstd")
}

// unzstd decompresses a zstd blob, checking that it is whole (its frames'
// checksums included).
func unzstd(t testing.TB, blob []byte) []byte {
	t.Helper()
	zr, err := zstd.NewReader(bytes.NewReader(blob))
	assert.NilError(t, err)
	defer zr.Close()
	out, err := io.ReadAll(zr)
	assert.NilError(t, err)
	return out
}

// A zstd layer holds the same tar as a gzip one: its diffID is the same,
// and decompressing it gives the tar the diffID names.
func TestPackZstdHashes(t *testing.T) {
	dir := sampleTree(t)
	blob, res, err := packDir(t, dir, Options{Compression: Zstd})
	assert.NilError(t, err)
	assert.Equal(t, res.Digest, sha256Of(blob))
	assert.Equal(t, res.Size, int64(len(blob)))
	assert.Equal(t, res.MediaType, MediaTypeZstd)
	// Frame magic (RFC 8878): not a gzip stream.
	assert.Assert(t, bytes.HasPrefix(blob, []byte{0x28, 0xb5, 0x2f, 0xfd}))
	tarBytes := unzstd(t, blob)
	assert.Equal(t, res.DiffID, sha256Of(tarBytes))

	gz, gzRes, err := packDir(t, dir, Options{})
	assert.NilError(t, err)
	assert.Equal(t, gzRes.MediaType, MediaTypeGzip)
	assert.Equal(t, gzRes.DiffID, res.DiffID)
	assert.Check(t, !bytes.Equal(gz, blob))
	// The same entries as the gzip layer's, which the other tests check.
	assert.DeepEqual(t, readBack(t, gz), readBackTar(t, tarBytes))

	_, plain, err := packDir(t, dir, Options{Compression: Zstd, Uncompressed: true})
	assert.NilError(t, err)
	assert.Equal(t, plain.DiffID, res.DiffID)
	assert.Equal(t, plain.MediaType, "")
}

// readBackTar is readBack of a plain tar.
func readBackTar(t testing.TB, tarBytes []byte) []entry {
	t.Helper()
	var gz bytes.Buffer
	p, err := newPacker(&gz, Options{Level: 1})
	assert.NilError(t, err)
	_, err = p.gz.Write(tarBytes)
	assert.NilError(t, err)
	assert.NilError(t, p.gz.Close())
	return readBack(t, gz.Bytes())
}

// bigTree is a store path of about size bytes of compressible data with
// long repeats, some of them farther apart than a zstd job, so matches
// cross the jobs' borders.
func bigTree(t testing.TB, size int) string {
	rng := rand.New(rand.NewSource(25))
	pool := make([]byte, 256<<10)
	for i := range pool {
		pool[i] = byte('a' + rng.Intn(20))
	}
	data := make([]byte, 0, size)
	for len(data) < size {
		switch n := 16 + rng.Intn(4096); {
		case rng.Intn(8) == 0 && len(data) > 20<<20:
			off := rng.Intn(len(data) - n)
			data = append(data, data[off:off+n]...) // from far back
		case rng.Intn(4) == 0:
			for range n {
				data = append(data, byte(rng.Intn(256))) // noise
			}
		default:
			off := rng.Intn(len(pool) - n)
			data = append(data, pool[off:off+n]...)
		}
	}
	dir := filepath.Join(t.TempDir(), "zzz-big")
	assert.NilError(t, os.MkdirAll(filepath.Join(dir, "share"), 0o755))
	assert.NilError(t, os.WriteFile(filepath.Join(dir, "share", "blob"), data[:size], 0o644))
	assert.NilError(t, os.WriteFile(filepath.Join(dir, "small"), []byte("s"), 0o644))
	return dir
}

// TestPackZstdReproducible: zstd's bytes depend on the input and level
// alone, not on GOMAXPROCS or the concurrency, over several of the
// encoder's 16 MiB jobs; and they are the bytes this version packs
// (golden digests), so an update of klauspost/compress that changes them
// fails here, and must change FormatVersion.
func TestPackZstdReproducible(t *testing.T) {
	dir := bigTree(t, 40<<20)
	golden := map[int]string{
		1:  "sha256:28a90a6c271e74d3510be147e94163c4915820f22fccad14f666ba40bc6aca58",
		3:  "sha256:fa3dae34c8971bb8e2398312bdee882a72d612a610ba998736f28f61b307a903",
		7:  "sha256:5e92bbc841be631b1a5548e186ade86c31790be4831e369da3d72ff66f4edfe7",
		12: "sha256:7658a21d121d4b26c3a0ab2f78bbb9b3714677e14ec6c012be70bebff80e60b2",
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	var tarDiffID string
	for _, level := range []int{1, 3, 7, 12} {
		var first []byte
		cases := [][2]int{{1, 0}, {8, 0}}
		if level == DefaultZstdLevel {
			cases = [][2]int{{1, 0}, {2, 0}, {8, 0}, {2, 1}, {2, 3}, {8, 16}, {1, 0}}
		}
		for _, c := range cases {
			runtime.GOMAXPROCS(c[0])
			got, res, err := packDir(t, dir, Options{Compression: Zstd, Level: level, Concurrency: c[1]})
			assert.NilError(t, err)
			if first == nil {
				first = got
				t.Logf("level %d: %d bytes, %s", level, len(got), res.Digest)
				assert.Check(t, is.Equal(res.Digest, golden[level]), "level %d", level)
				if tarDiffID == "" {
					tarDiffID = sha256Of(unzstd(t, got))
				}
				assert.Equal(t, res.DiffID, tarDiffID)
				continue
			}
			assert.Assert(t, bytes.Equal(got, first), "level %d: GOMAXPROCS=%d concurrency=%d changed the bytes", level, c[0], c[1])
		}
	}
	// Levels that map to one encoder give one blob (CacheKey relies on it).
	a, _, err := packDir(t, dir, Options{Compression: Zstd, Level: 4})
	assert.NilError(t, err)
	b, _, err := packDir(t, dir, Options{Compression: Zstd})
	assert.NilError(t, err)
	assert.Assert(t, bytes.Equal(a, b))
}

// A gzip key is made as it was before zstd came, so only a new
// FormatVersion changes it (and then every cached blob misses once); a
// zstd key differs from it, and names the encoder, not the level.
func TestCacheKeyCompression(t *testing.T) {
	const content = "sha256:0123"
	gzipKeyAt := func(version string, level int, mtime int64) string {
		h := sha256.New()
		fmt.Fprintf(h, "nixery-archive %s\nlevel %d\nblock 1048576\nmtime %d\n%s", version, level, mtime, content)
		return "sha256:" + hex.EncodeToString(h.Sum(nil))
	}
	gzipKey := func(version string, level int) string { return gzipKeyAt(version, level, 1) }
	legacy := func(level int) string { return gzipKey(FormatVersion, level) }
	key := func(o Options) string {
		k, err := CacheKey(content, o)
		assert.NilError(t, err)
		return k
	}
	assert.Equal(t, key(Options{}), legacy(DefaultLevel))
	assert.Equal(t, key(Options{Compression: Gzip}), legacy(DefaultLevel))
	assert.Equal(t, key(Options{Compression: Gzip, Level: 6}), legacy(6))
	// Blobs of version 1 (before hdrcharset=BINARY) are not reused.
	assert.Check(t, key(Options{}) != gzipKey("1", DefaultLevel))

	zstdKey := key(Options{Compression: Zstd})
	seen := map[string]string{}
	for _, o := range []Options{{}, {Level: 3}, {Level: 9}, {Compression: Zstd, Level: 1}, {Compression: Zstd}, {Compression: Zstd, Level: 7}, {Compression: Zstd, Level: 19}} {
		k := key(o)
		name := fmt.Sprintf("%s:%d", o.Compression, o.Level)
		assert.Check(t, seen[k] == "", "%s and %s have one key", seen[k], name)
		seen[k] = name
	}
	// zstd levels 3 to 5 are one encoder, so one blob.
	assert.Equal(t, key(Options{Compression: Zstd, Level: 3}), zstdKey)
	assert.Equal(t, key(Options{Compression: Zstd, Level: 5}), zstdKey)
	// Blobs whose entries older versions dated SOURCE_DATE_EPOCH (mtime
	// in their keys) are not taken for today's, dated 1.
	assert.Check(t, key(Options{}) != gzipKeyAt(FormatVersion, DefaultLevel, 1700000000))
	_, err := CacheKey(content, Options{Compression: "xz"})
	assert.ErrorContains(t, err, `unknown compression "xz"`)
}

// A zstd packer that fails ends its encoder's goroutines.
func TestPackZstdAbortEnds(t *testing.T) {
	dir := bigTree(t, 24<<20)
	before := runtime.NumGoroutine()
	for range 3 {
		ctx, cancel := context.WithCancel(context.Background())
		read := &cancelAfter{cancel: cancel, limit: 20 << 20}
		_, err := PackPaths(io.Discard, []string{"/nix/store/x"}, Options{Compression: Zstd})
		assert.ErrorContains(t, err, "/nix/store/x")
		p, err := newPacker(io.Discard, Options{Compression: Zstd, Context: ctx, Progress: func(n int) { read.Write(make([]byte, n)) }})
		assert.NilError(t, err)
		err = p.addTree(dir, "nix/store/big")
		assert.ErrorIs(t, err, context.Canceled)
		p.abort()
		p.abort()
		cancel()
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	assert.Assert(t, runtime.NumGoroutine() <= before, "%d goroutines, %d before", runtime.NumGoroutine(), before)
}
