package publish

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
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
	raw, err := rec.Manifest()
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

// A docker archive names each layer file by its compression: .tar.gz for
// gzip, .tar.zst for zstd.
func TestDockerArchiveLayerNames(t *testing.T) {
	dir := t.TempDir()
	gz := realLayer(t, dir, map[string]string{"nix/store/a/x": "a"}, "a")
	zs := realLayer(t, dir, map[string]string{"nix/store/b/x": "b"}, "b")
	zs.MediaType = image.LayerMediaTypeZstd
	img, err := image.NewImage(amd64, []image.Blob{gz, zs}, image.Options{})
	assert.NilError(t, err)
	idx, err := image.NewIndex([]*image.Image{img}, nil)
	assert.NilError(t, err)
	file := filepath.Join(t.TempDir(), "img.tar")
	_, err = Write(context.Background(), Output{Kind: DockerArchive, Path: file}, idx, WriteOptions{})
	assert.NilError(t, err)

	f, err := os.Open(file)
	assert.NilError(t, err)
	defer f.Close()
	var names []string
	var manifest []archiveManifest
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		assert.NilError(t, err)
		names = append(names, h.Name)
		if h.Name == "manifest.json" {
			assert.NilError(t, json.NewDecoder(tr).Decode(&manifest))
		}
	}
	assert.Equal(t, len(manifest), 1)
	assert.DeepEqual(t, manifest[0].Layers, []string{gz.Digest.Hex + ".tar.gz", zs.Digest.Hex + ".tar.zst"})
	for _, l := range manifest[0].Layers {
		assert.Assert(t, slices.Contains(names, l), "%s is not in the archive (%v)", l, names)
	}
}
