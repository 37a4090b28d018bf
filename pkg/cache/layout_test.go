package cache_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"os"
	"path/filepath"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"gotest.tools/v3/assert"

	"github.com/nixery-action/nixery-action/pkg/cache"
	"github.com/nixery-action/nixery-action/pkg/image"
	"github.com/nixery-action/nixery-action/pkg/publish"
)

// blob writes a gzip'd blob of content into dir, with a cache key.
func blob(t *testing.T, dir, content, key string) image.Blob {
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
	assert.Assert(t, publish.NewLayout(publish.Output{Kind: publish.OCILayout, Path: dir}, publish.WriteOptions{}).Holds(got.Repo, got.Digest))

	none, err := cache.ReadLayout(filepath.Join(t.TempDir(), "nothing"))
	assert.NilError(t, err)
	assert.Equal(t, len(none), 0)
}
