package cache

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/zstd"
	"gotest.tools/v3/assert"

	"github.com/nixery-action/nixery-action/pkg/image"
)

// cachedBlob is a gzip'd blob of content, described truly, read from
// memory through open (which may change what is read).
func cachedBlob(t *testing.T, content string, open func([]byte) io.ReadCloser) Blob {
	t.Helper()
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, err := zw.Write([]byte(content))
	assert.NilError(t, err)
	assert.NilError(t, zw.Close())
	raw := gz.Bytes()
	digest, _, err := v1.SHA256(bytes.NewReader(raw))
	assert.NilError(t, err)
	diffID, _, err := v1.SHA256(strings.NewReader(content))
	assert.NilError(t, err)
	return Blob{Blob: image.Blob{Digest: digest, DiffID: diffID, Size: int64(len(raw)),
		Open: func() (io.ReadCloser, error) { return open(raw), nil }}}
}

func plain(raw []byte) io.ReadCloser { return io.NopCloser(bytes.NewReader(raw)) }

var quick = FetchOptions{Backoff: remote.Backoff{Duration: time.Millisecond, Steps: 3}}

// Fetch keeps a blob only when its size, digest and diffID are what the
// registry said, and each failure says which.
func TestFetch(t *testing.T) {
	dir := t.TempDir()
	good := cachedBlob(t, "the layer", plain)
	got, err := Fetch(context.Background(), good, dir, quick)
	assert.NilError(t, err)
	data, err := os.ReadFile(got.Path)
	assert.NilError(t, err)
	assert.Equal(t, int64(len(data)), good.Size)
	assert.Equal(t, got.Digest, good.Digest)

	longer := good
	longer.Size--
	_, err = Fetch(context.Background(), longer, dir, quick)
	assert.ErrorContains(t, err, "bytes long")

	other := cachedBlob(t, "the layer", plain)
	other.Digest = cachedBlob(t, "another layer", plain).Digest
	_, err = Fetch(context.Background(), other, dir, quick)
	assert.ErrorContains(t, err, "other bytes than its digest says")

	wrongDiffID := good
	wrongDiffID.DiffID = other.Digest
	_, err = Fetch(context.Background(), wrongDiffID, dir, quick)
	assert.ErrorContains(t, err, "other content than its diffID says")

	notGzip := cachedBlob(t, "x", plain)
	notGzip.Open = func() (io.ReadCloser, error) { return plain(bytes.Repeat([]byte{'x'}, int(notGzip.Size))), nil }
	notGzip.Digest, _, _ = v1.SHA256(bytes.NewReader(bytes.Repeat([]byte{'x'}, int(notGzip.Size))))
	_, err = Fetch(context.Background(), notGzip, dir, quick)
	assert.ErrorContains(t, err, "does not decompress")

	// Only the good blob's file is left: failed tries remove theirs.
	entries, err := os.ReadDir(dir)
	assert.NilError(t, err)
	assert.Equal(t, len(entries), 1, "files of failed tries were left")
}

// A registry's answer to a blob read is told in one line, its control
// characters escaped.
func TestFetchErrorOneLine(t *testing.T) {
	b := cachedBlob(t, "the layer", plain)
	b.Open = func() (io.ReadCloser, error) {
		return nil, errors.New("unexpected status code 400: nope\n::error title=x::injected\n\x1b[31mred\x1b[0m")
	}
	_, err := Fetch(context.Background(), b, t.TempDir(), quick)
	assert.ErrorContains(t, err, `nope ::error title=x::injected \x1b[31mred\x1b[0m`)
	assert.Check(t, !strings.ContainsAny(err.Error(), "\n\x1b"), "%q", err)
}

// A download broken off is started over; one that never ends is given up
// on after the time allowed.
func TestFetchRetriesAndGivesUp(t *testing.T) {
	tries := 0
	flaky := cachedBlob(t, "the layer", func(raw []byte) io.ReadCloser {
		tries++
		if tries == 1 {
			return io.NopCloser(io.MultiReader(bytes.NewReader(raw[:3]), errReader{io.ErrUnexpectedEOF}))
		}
		return plain(raw)
	})
	_, err := Fetch(context.Background(), flaky, t.TempDir(), quick)
	assert.NilError(t, err)
	assert.Equal(t, tries, 2)

	stuck := cachedBlob(t, "the layer", func([]byte) io.ReadCloser { return newBlocked() })
	o := quick
	o.Timeout = func(int64) time.Duration { return 50 * time.Millisecond }
	_, err = Fetch(context.Background(), stuck, t.TempDir(), o)
	assert.ErrorContains(t, err, "gave up after 50ms")
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// blocked is a body that sends nothing until closed.
type blocked struct{ done chan struct{} }

func newBlocked() *blocked { return &blocked{done: make(chan struct{})} }

func (b *blocked) Read([]byte) (int, error) {
	<-b.done
	return 0, errors.New("closed")
}

func (b *blocked) Close() error {
	select {
	case <-b.done:
	default:
		close(b.done)
	}
	return nil
}

// A blob file at hand (ReadLayout's: a Path, no Open) is copied the same way.
func TestFetchFromPath(t *testing.T) {
	b := cachedBlob(t, "the layer", plain)
	raw, err := io.ReadAll(mustOpen(t, b))
	assert.NilError(t, err)
	b.Path = filepath.Join(t.TempDir(), "blob")
	assert.NilError(t, os.WriteFile(b.Path, raw, 0o644))
	b.Open = nil
	got, err := Fetch(context.Background(), b, t.TempDir(), quick)
	assert.NilError(t, err)
	assert.Equal(t, got.Digest, b.Digest)
}

func mustOpen(t *testing.T, b Blob) io.Reader {
	rc, err := b.Open()
	assert.NilError(t, err)
	return rc
}

// A blob that breaks off part way through decompression is told as such,
// not as a failed read: the one stored with those bytes "does not
// decompress", one whose bytes changed on the way has "other bytes".
func TestFetchCorruptMidway(t *testing.T) {
	var text bytes.Buffer
	rng := rand.New(rand.NewPCG(1, 2))
	for text.Len() < 2<<20 {
		fmt.Fprintf(&text, "%x %d word%d\n", rng.Uint64(), rng.IntN(1000), rng.IntN(50))
	}
	content := text.Bytes()
	for _, tc := range []struct {
		mt       types.MediaType
		compress func(io.Writer) io.WriteCloser
	}{
		{image.LayerMediaType, func(w io.Writer) io.WriteCloser { return gzip.NewWriter(w) }},
		{image.LayerMediaTypeZstd, func(w io.Writer) io.WriteCloser {
			zw, err := zstd.NewWriter(w)
			assert.NilError(t, err)
			return zw
		}},
	} {
		var z bytes.Buffer
		zw := tc.compress(&z)
		_, err := zw.Write(content)
		assert.NilError(t, err)
		assert.NilError(t, zw.Close())
		raw := z.Bytes()
		assert.Assert(t, len(raw) > 256<<10, "%s: %d bytes compressed, too few to break off midway", tc.mt, len(raw))
		sent, _, err := v1.SHA256(bytes.NewReader(raw))
		assert.NilError(t, err)
		bad := bytes.Clone(raw)
		for i := len(bad) / 3; i < len(bad)/3+4096; i++ { // deflate reads on through a few bytes
			bad[i] ^= 0xff
		}
		stored, _, err := v1.SHA256(bytes.NewReader(bad))
		assert.NilError(t, err)
		diffID, _, err := v1.SHA256(bytes.NewReader(content))
		assert.NilError(t, err)
		b := Blob{Blob: image.Blob{MediaType: tc.mt, Digest: stored, DiffID: diffID, Size: int64(len(bad)),
			Open: func() (io.ReadCloser, error) { return plain(bad), nil }}}
		_, err = Fetch(context.Background(), b, t.TempDir(), quick)
		assert.ErrorContains(t, err, "does not decompress", "%s", tc.mt)
		assert.Check(t, !strings.Contains(err.Error(), "read layer"), "%s: %v", tc.mt, err)

		b.Digest = sent
		_, err = Fetch(context.Background(), b, t.TempDir(), quick)
		assert.ErrorContains(t, err, "other bytes than its digest says", "%s", tc.mt)
	}
}
