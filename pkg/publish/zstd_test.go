package publish

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"gotest.tools/v3/assert"

	"github.com/nixery-action/nixery-action/pkg/cache"
	"github.com/nixery-action/nixery-action/pkg/image"
	"github.com/nixery-action/nixery-action/pkg/registry"
)

// The cache keeps zstd layers as zstd ones: a registry's image and the
// cache record give them with their media type, so a zstd build can
// reuse them (its keys say zstd) and a gzip build never takes them.
func TestCacheKeepsMediaTypes(t *testing.T) {
	host := memRegistry(t, nil)
	ctx := context.Background()
	dir := t.TempDir()
	gz := realLayer(t, dir, map[string]string{"nix/store/a/x": "a"}, "a")
	gz.CacheKey = fmt.Sprintf("sha256:%064x", 1)
	// The registry stores bytes; which compression they are in is the
	// descriptor's word, all the cache reads.
	zs := realLayer(t, dir, map[string]string{"nix/store/b/x": "b"}, "b")
	zs.CacheKey = fmt.Sprintf("sha256:%064x", 2)
	zs.MediaType = image.LayerMediaTypeZstd
	img, err := image.NewImage(amd64, []image.Blob{gz, zs}, image.Options{})
	assert.NilError(t, err)
	idx, err := image.NewIndex([]*image.Image{img}, nil)
	assert.NilError(t, err)
	opts := Options{Options: registry.Options{Credentials: registry.Credentials{Keychain: noCreds}}}
	_, err = Push(ctx, mustTarget(t, host+"/app", "v1"), idx, opts)
	assert.NilError(t, err)

	found, notes := cache.Read(ctx, []name.Reference{ref(t, host+"/app:v1")}, opts.Options)
	assert.Equal(t, len(found), 2, "%v", notes)
	assert.Equal(t, found[gz.CacheKey].MediaType, types.OCILayer)
	assert.Equal(t, found[zs.CacheKey].MediaType, types.OCILayerZStd)

	// The cache record lists each layer with its own media type.
	rec, err := cache.RecordOf(idx)
	assert.NilError(t, err)
	_, raw, err := rec.Blobs()
	assert.NilError(t, err)
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	assert.NilError(t, err)
	assert.Equal(t, len(m.Layers), 2)
	assert.Equal(t, m.Layers[0].MediaType, types.OCILayer)
	assert.Equal(t, m.Layers[1].MediaType, types.OCILayerZStd)
}

func TestGrowingMediaType(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "blob"))
	assert.NilError(t, err)
	defer f.Close()
	g := NewGrowing(f)
	mt, err := g.MediaType()
	assert.NilError(t, err)
	assert.Equal(t, mt, types.OCILayer)
	g.Type = types.OCILayerZStd
	mt, err = g.MediaType()
	assert.NilError(t, err)
	assert.Equal(t, mt, types.OCILayerZStd)
}
