//go:build integration

package build

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/nixery-action/nixery-action/internal/testenv"
	"github.com/nixery-action/nixery-action/pkg/archive"
	"github.com/nixery-action/nixery-action/pkg/image"
	"github.com/nixery-action/nixery-action/pkg/publish"
)

// layerTypes reads the media types of every layer of the image index at
// ref from the registry.
func layerTypes(t *testing.T, ref string) map[types.MediaType]int {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	assert.NilError(t, err)
	idx, err := remote.Index(r)
	assert.NilError(t, err)
	im, err := idx.IndexManifest()
	assert.NilError(t, err)
	seen := map[types.MediaType]int{}
	for _, d := range im.Manifests {
		if !d.MediaType.IsImage() {
			continue
		}
		img, err := idx.Image(d.Digest)
		assert.NilError(t, err)
		m, err := img.Manifest()
		assert.NilError(t, err)
		for _, l := range m.Layers {
			seen[l.MediaType]++
		}
	}
	return seen
}

// TestBuildZstd: a zstd build pushes zstd layers only (streamed ones
// too), the same image every time; a second zstd build reuses them all,
// into a registry and into a layout (which downloads each and checks its
// diffID by decompressing it); a gzip build reuses none of them; and
// skopeo copies the zstd image, checking every blob's digest.
func TestBuildZstd(t *testing.T) {
	testenv.Require(t, "skopeo")
	ctx := context.Background()
	host := testenv.StartRegistry(t)
	zstdReq := func(dest publish.Destination) Request {
		req := request(t, dest, 6)
		req.Pack = archive.Options{Compression: archive.Zstd}
		return req
	}

	defer func(old int64) { streamAbove = old }(streamAbove)
	streamAbove = 0 // every layer streamed while it is packed
	target := mustTarget(t, host+"/build/zstd", "v1")
	cold, err := Build(ctx, zstdReq(publish.NewRegistry(target, publish.Options{})), Options{})
	assert.NilError(t, err)
	cold.Close()
	streamAbove = 1 << 62
	assert.Check(t, cold.Packed > 0)
	n := 0
	for _, m := range cold.Manifests {
		n += len(m.Layers)
	}
	assert.DeepEqual(t, layerTypes(t, host+"/build/zstd:v1"), map[types.MediaType]int{types.OCILayerZStd: n})

	// Packed again, without the cache: the same bytes.
	again := zstdReq(publish.NewRegistry(mustTarget(t, host+"/build/zstd-again", "v1"), publish.Options{}))
	again.NoCache = true
	res, err := Build(ctx, again, Options{})
	assert.NilError(t, err)
	res.Close()
	assert.Equal(t, res.Digest, cold.Digest)
	assert.Equal(t, res.Reused, 0)

	// Warm, to the registry (the blobs are there already) and to a
	// layout (they are downloaded and checked).
	for _, dest := range []publish.Destination{
		publish.NewRegistry(target, publish.Options{}),
		publish.NewLayout(publish.Output{Kind: publish.OCILayout, Path: filepath.Join(t.TempDir(), "layout")}, publish.WriteOptions{}),
	} {
		req := zstdReq(dest)
		req.CacheFrom = []name.Reference{target.Tags[0]}
		res, err := Build(ctx, req, Options{})
		assert.NilError(t, err, "%s", dest)
		res.Close()
		assert.Equal(t, res.Digest, cold.Digest, "%s", dest)
		assert.Equal(t, res.Packed, 0, "%s", dest)
		assert.Equal(t, res.Reused, cold.Packed, "%s", dest)
	}

	// gzip from the zstd cache: nothing reused, gzip layers only.
	gzTarget := mustTarget(t, host+"/build/zstd-then-gzip", "v1")
	gzReq := request(t, publish.NewRegistry(gzTarget, publish.Options{}), 6)
	gzReq.CacheFrom = []name.Reference{target.Tags[0]}
	gz, err := Build(ctx, gzReq, Options{})
	assert.NilError(t, err)
	gz.Close()
	assert.Equal(t, gz.Reused, 0)
	assert.Equal(t, gz.Packed, cold.Packed)
	assert.Check(t, gz.Digest != cold.Digest)
	assert.DeepEqual(t, layerTypes(t, host+"/build/zstd-then-gzip:v1"), map[types.MediaType]int{image.LayerMediaType: n})

	// And zstd from the gzip cache: nothing reused either.
	back := zstdReq(publish.NewRegistry(mustTarget(t, host+"/build/gzip-then-zstd", "v1"), publish.Options{}))
	back.CacheFrom = []name.Reference{gzTarget.Tags[0]}
	res, err = Build(ctx, back, Options{})
	assert.NilError(t, err)
	res.Close()
	assert.Equal(t, res.Reused, 0)
	assert.Equal(t, res.Digest, cold.Digest)

	// A gzip blob under a zstd layer's key is not taken.
	victim := cold.Manifests[0].Layers[0]
	poisoned := poison(t, host+"/evil/zstd:latest", victim.Key, victim.Digest, target)
	req := zstdReq(publish.NewLayout(publish.Output{Kind: publish.OCILayout, Path: filepath.Join(t.TempDir(), "poisoned")}, publish.WriteOptions{}))
	req.CacheFrom = []name.Reference{poisoned}
	var log bytes.Buffer
	res, err = Build(ctx, req, Options{Log: logTo(&log)})
	assert.NilError(t, err)
	res.Close()
	assert.Equal(t, res.Digest, cold.Digest)
	assert.Check(t, is.Contains(log.String(), "is application/vnd.oci.image.layer.v1.tar+gzip, not application/vnd.oci.image.layer.v1.tar+zstd; packing it"))
	assert.Equal(t, res.Reused, 0)

	for _, m := range cold.Manifests {
		out, err := exec.Command("skopeo", "copy", "--src-tls-verify=false", "docker://"+host+"/build/zstd@"+m.Digest, "oci:"+filepath.Join(t.TempDir(), "copy")).CombinedOutput()
		assert.NilError(t, err, "skopeo copy %s: %s", m.Digest, out)
	}
}
