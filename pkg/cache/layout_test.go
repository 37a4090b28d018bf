package cache_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/match"
	"gotest.tools/v3/assert"

	"github.com/nixery-action/nixery-action/pkg/cache"
	"github.com/nixery-action/nixery-action/pkg/image"
	"github.com/nixery-action/nixery-action/pkg/publish"
)

// blob writes a gzip'd blob of content into dir, with a cache key.
func blob(t testing.TB, dir, content, key string) image.Blob {
	t.Helper()
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(content))
	assert.NilError(t, zw.Close())
	digest, _, err := v1.SHA256(bytes.NewReader(gz.Bytes()))
	assert.NilError(t, err)
	diffID, _, err := v1.SHA256(bytes.NewReader([]byte(content)))
	assert.NilError(t, err)
	path := filepath.Join(dir, digest.Hex)
	assert.NilError(t, os.WriteFile(path, gz.Bytes(), 0o644))
	return image.Blob{Digest: digest, DiffID: diffID, Size: int64(gz.Len()), Path: path, CacheKey: key}
}

// An OCI layout's cache-keyed layers are a cache of its blob files; a
// missing layout is an empty one.
func TestReadLayout(t *testing.T) {
	src := t.TempDir()
	a, b := blob(t, src, "layer a", "sha256:"+string(bytes.Repeat([]byte("a"), 64))), blob(t, src, "layer b", "")
	img, err := image.NewImage(v1.Platform{OS: "linux", Architecture: "amd64"}, []image.Blob{a, b}, image.Options{})
	assert.NilError(t, err)
	idx, err := image.NewIndex([]*image.Image{img}, nil)
	assert.NilError(t, err)
	dir := filepath.Join(t.TempDir(), "layout")
	_, err = publish.Write(context.Background(), publish.Output{Kind: publish.OCILayout, Path: dir}, idx, publish.WriteOptions{Tags: []string{"v1"}})
	assert.NilError(t, err)

	c, err := cache.ReadLayout(dir)
	assert.NilError(t, err)
	assert.Equal(t, len(c), 1) // b has no cache key
	got := c[a.CacheKey]
	assert.Equal(t, got.Digest, a.Digest)
	assert.Equal(t, got.DiffID, a.DiffID)
	assert.Equal(t, got.Path, filepath.Join(dir, "blobs", "sha256", a.Digest.Hex))
	assert.Assert(t, publish.NewLayout(publish.Output{Kind: publish.OCILayout, Path: dir}, publish.WriteOptions{}).Holds(got.Repo, got.Digest, got.Size))

	none, err := cache.ReadLayout(filepath.Join(t.TempDir(), "nothing"))
	assert.NilError(t, err)
	assert.Equal(t, len(none), 0)
}

// A layout a user names may hold anything: an index descriptor naming a
// huge blob leaves that image out, read up to a bound only, and an
// index.json past its bound is an error, not read.
func TestReadLayoutBounds(t *testing.T) {
	src := t.TempDir()
	a := blob(t, src, "layer a", "sha256:"+string(bytes.Repeat([]byte("a"), 64)))
	img, err := image.NewImage(v1.Platform{OS: "linux", Architecture: "amd64"}, []image.Blob{a}, image.Options{})
	assert.NilError(t, err)
	idx, err := image.NewIndex([]*image.Image{img}, nil)
	assert.NilError(t, err)
	dir := filepath.Join(t.TempDir(), "layout")
	_, err = publish.Write(context.Background(), publish.Output{Kind: publish.OCILayout, Path: dir}, idx, publish.WriteOptions{Tags: []string{"v1"}})
	assert.NilError(t, err)

	huge := "sha256:" + string(bytes.Repeat([]byte("f"), 64))
	big, err := os.Create(filepath.Join(dir, "blobs", "sha256", huge[len("sha256:"):]))
	assert.NilError(t, err)
	assert.NilError(t, big.Truncate(1<<30)) // sparse: reading it whole would take 1 GiB
	assert.NilError(t, big.Close())
	im, err := cache.ReadLayoutIndex(dir)
	assert.NilError(t, err)
	im.Manifests = append([]v1.Descriptor{{MediaType: "application/vnd.oci.image.index.v1+json", Size: 1 << 30, Digest: v1.Hash{Algorithm: "sha256", Hex: huge[len("sha256:"):]}}}, im.Manifests...)
	raw, err := json.Marshal(im)
	assert.NilError(t, err)
	assert.NilError(t, os.WriteFile(filepath.Join(dir, "index.json"), raw, 0o644))
	c, err := cache.ReadLayout(dir)
	assert.NilError(t, err)
	assert.Equal(t, len(c), 1)
	assert.Equal(t, c[a.CacheKey].Digest, a.Digest)

	assert.NilError(t, os.Truncate(filepath.Join(dir, "index.json"), 17<<20))
	_, err = cache.ReadLayout(dir)
	assert.ErrorContains(t, err, "larger than")

	// A FIFO would block the read for good: refused at once.
	assert.NilError(t, os.Remove(filepath.Join(dir, "index.json")))
	assert.NilError(t, syscall.Mkfifo(filepath.Join(dir, "index.json"), 0o644))
	done := make(chan error, 1)
	go func() { _, err := cache.ReadLayout(dir); done <- err }()
	select {
	case err := <-done:
		assert.ErrorContains(t, err, "no regular file")
	case <-time.After(5 * time.Second):
		t.Fatal("reading a layout whose index.json is a FIFO still blocks after 5s")
	}
}

// An index.json past MaxLayoutIndex is refused, unread (its size says so).
func TestReadLayoutIndexBound(t *testing.T) {
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, "index.json"))
	assert.NilError(t, err)
	assert.NilError(t, f.Truncate(cache.MaxLayoutIndex+1))
	assert.NilError(t, f.Close())
	_, err = cache.ReadLayoutIndex(dir)
	assert.ErrorContains(t, err, "index.json of "+dir+": larger than 16 MiB")
	im, err := cache.ReadLayoutIndex(t.TempDir())
	assert.NilError(t, err)
	assert.Equal(t, len(im.Manifests), 0)
}

// layoutOf writes n two-platform images into a new OCI layout, each
// image's 20 layers drawn from a pool of 400 cache-keyed blobs, and
// returns the layout's directory.
func layoutOf(t testing.TB, n int) string {
	t.Helper()
	src := t.TempDir()
	var pool []image.Blob
	for i := range 400 {
		pool = append(pool, blob(t, src, fmt.Sprintf("layer %d", i), fmt.Sprintf("sha256:%064x", i)))
	}
	lp, err := layout.Write(filepath.Join(t.TempDir(), "layout"), empty.Index)
	assert.NilError(t, err)
	for k := range n {
		var imgs []*image.Image
		for p, arch := range []string{"amd64", "arm64"} {
			var ls []image.Blob
			for j := range 20 {
				ls = append(ls, pool[(k*7+j*13+p)%len(pool)])
			}
			img, err := image.NewImage(v1.Platform{OS: "linux", Architecture: arch}, ls, image.Options{Labels: map[string]string{"k": fmt.Sprint(k)}})
			assert.NilError(t, err)
			imgs = append(imgs, img)
		}
		idx, err := image.NewIndex(imgs, nil)
		assert.NilError(t, err)
		assert.NilError(t, lp.AppendIndex(idx))
	}
	return string(lp)
}

// A LayoutReader gives what ReadLayout gives, reads again only the
// images added since, and forgets the images the layout no longer names.
func TestLayoutReader(t *testing.T) {
	dir := layoutOf(t, 3)
	var r cache.LayoutReader
	first, err := r.Read(dir)
	assert.NilError(t, err)
	fresh, err := cache.ReadLayout(dir)
	assert.NilError(t, err)
	assert.DeepEqual(t, blobsOf(first), blobsOf(fresh))
	assert.Assert(t, len(first) > 0)

	// The images read are remembered: their manifests are not read
	// again (here they are gone, which a fresh read notices).
	lp := layout.Path(dir)
	top, err := lp.ImageIndex()
	assert.NilError(t, err)
	im, err := top.IndexManifest()
	assert.NilError(t, err)
	first0, err := top.ImageIndex(im.Manifests[0].Digest)
	assert.NilError(t, err)
	m0, err := first0.IndexManifest()
	assert.NilError(t, err)
	for _, d := range m0.Manifests {
		assert.NilError(t, os.Remove(filepath.Join(dir, "blobs", "sha256", d.Digest.Hex)))
	}
	again, err := r.Read(dir)
	assert.NilError(t, err)
	assert.DeepEqual(t, blobsOf(again), blobsOf(first))
	fresh, err = cache.ReadLayout(dir)
	assert.NilError(t, err)
	assert.Assert(t, len(fresh) < len(first))

	// An image dropped from index.json is forgotten.
	assert.NilError(t, lp.RemoveDescriptors(match.Digests(im.Manifests[0].Digest)))
	dropped, err := r.Read(dir)
	assert.NilError(t, err)
	assert.DeepEqual(t, blobsOf(dropped), blobsOf(fresh))
}

// Concurrent reads through one LayoutReader, as concurrent serve builds
// make, each give the whole cache (go test -race checks the sharing).
func TestLayoutReaderConcurrent(t *testing.T) {
	dir := layoutOf(t, 6)
	want, err := cache.ReadLayout(dir)
	assert.NilError(t, err)
	var r cache.LayoutReader
	got := make([]cache.Cache, 8)
	errs := make([]error, len(got))
	var wg sync.WaitGroup
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], errs[i] = r.Read(dir)
		}()
	}
	wg.Wait()
	for i := range got {
		assert.NilError(t, errs[i])
		assert.DeepEqual(t, blobsOf(got[i]), blobsOf(want))
	}
}

// blobsOf is a layout's cache without the repositories, which a layout's
// blobs do not have.
func blobsOf(c cache.Cache) map[string]image.Blob {
	out := map[string]image.Blob{}
	for k, b := range c {
		out[k] = b.Blob
	}
	return out
}

// BenchmarkReadLayout reads the cache of a layout of 1,000 two-platform
// images (nixery serve reads its storage before every build), once
// fresh and once with the reader that read it before.
//
//	go test -run '^$' -bench ReadLayout -benchtime 5x ./pkg/cache/
func BenchmarkReadLayout(b *testing.B) {
	dir := layoutOf(b, 1000)
	b.Run("fresh", func(b *testing.B) {
		for b.Loop() {
			if _, err := cache.ReadLayout(dir); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("remembered", func(b *testing.B) {
		var r cache.LayoutReader
		if _, err := r.Read(dir); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if _, err := r.Read(dir); err != nil {
				b.Fatal(err)
			}
		}
	})
}
