//go:build integration

package publish

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"gotest.tools/v3/assert"

	"github.com/nixery-action/nixery-action/internal/testenv"
	"github.com/nixery-action/nixery-action/pkg/cache"
	"github.com/nixery-action/nixery-action/pkg/image"
	"github.com/nixery-action/nixery-action/pkg/registry"
)

// TestRecordCache writes the record after two pushes under different
// tags, and reads it back as a build would: every layer of both, with
// the digests and diffIDs pushed, and the same record for the same
// inputs.
func TestRecordCache(t *testing.T) {
	testenv.Require(t, "docker-registry")
	ctx := context.Background()
	host := testenv.StartRegistry(t)
	opts := Options{Options: registry.Options{Backoff: fastBackoff}}
	record := cache.RecordRef(mustTarget(t, host+"/rec/app").Repo)

	var want []image.Blob
	for i, tag := range []string{"v1", "v2"} {
		idx, layers := recordIndex(t, tag, amd64, arm64)
		want = append(want, layers...)
		r := NewRegistry(mustTarget(t, host+"/rec/app", tag), opts)
		_, err := r.Write(ctx, idx, nil)
		assert.NilError(t, err)
		n, err := r.RecordCache(ctx, idx, r.ReadCacheRecord(ctx))
		assert.NilError(t, err)
		assert.Equal(t, n, 3*(i+1))
		r.Close()
	}
	found, notes := cache.Read(ctx, []name.Reference{record}, opts.Options)
	assert.Equal(t, len(notes), 1)
	assert.Equal(t, notes[0].String(), fmt.Sprintf("cache %s: 6 layers", record))
	assert.NilError(t, notes[0].Err)
	for _, l := range want {
		got, ok := found[l.CacheKey]
		assert.Assert(t, ok, "%s not in the record", l.CacheKey)
		assert.Equal(t, got.Digest, l.Digest)
		assert.Equal(t, got.DiffID, l.DiffID)
		assert.Equal(t, got.Size, l.Size)
	}

	// The same build again: the same record, byte for byte.
	before, err := remote.Head(record)
	assert.NilError(t, err)
	idx, _ := recordIndex(t, "v2", amd64, arm64)
	r := NewRegistry(mustTarget(t, host+"/rec/app", "v2"), opts)
	defer r.Close()
	seen := r.ReadCacheRecord(ctx)
	_, err = r.RecordCache(ctx, idx, cache.Record{})
	assert.NilError(t, err)
	after, err := remote.Head(record)
	assert.NilError(t, err)
	assert.Equal(t, after.Digest, before.Digest)

	// A build that read the record at its start (seen: v2's layers first)
	// while another build (v3) added its own: the first build leaves the
	// record as it is, keeping v3's entries in front.
	idx3, _ := recordIndex(t, "v3", amd64, arm64)
	r3 := NewRegistry(mustTarget(t, host+"/rec/app", "v3"), opts)
	defer r3.Close()
	_, err = r3.Write(ctx, idx3, nil)
	assert.NilError(t, err)
	n, err := r3.RecordCache(ctx, idx3, r3.ReadCacheRecord(ctx))
	assert.NilError(t, err)
	assert.Equal(t, n, 9)
	withV3, err := remote.Head(record)
	assert.NilError(t, err)
	n, err = r.RecordCache(ctx, idx, seen)
	assert.NilError(t, err)
	assert.Equal(t, n, 6, "what seen lists")
	last, err := remote.Head(record)
	assert.NilError(t, err)
	assert.Equal(t, last.Digest, withV3.Digest)
}

// TestPresentButGone: a blob the build was told the repository holds
// (Present) is not offered or asked for again; were it gone, the image's
// own push (its manifest is new) still finds it missing and sends it.
func TestPresentButGone(t *testing.T) {
	testenv.Require(t, "docker-registry")
	ctx := context.Background()
	host := testenv.StartRegistry(t)
	idx := testIndex(t, "gone", amd64)
	img, err := idx.Image(mustManifestDigest(t, idx, 0))
	assert.NilError(t, err)
	ls, err := img.Layers()
	assert.NilError(t, err)
	gone, err := ls[0].Digest()
	assert.NilError(t, err)

	target := mustTarget(t, host+"/present/app", "v1")
	r := NewRegistry(target, Options{Options: registry.Options{Backoff: fastBackoff}})
	r.Present(gone)
	r.Offer(ctx, ls[0]) // a no-op now
	_, err = r.Write(ctx, idx, nil)
	r.Close()
	assert.NilError(t, err)
	resp, err := http.Head("http://" + host + "/v2/present/app/blobs/" + gone.String())
	assert.NilError(t, err)
	resp.Body.Close()
	assert.Equal(t, resp.StatusCode, http.StatusOK, "the image is complete")
}

// TestRecordCacheBlobGone: when an older entry's blob was deleted from
// the repository, the registry refuses the merged record; it is written
// again with this build's layers only, and the build is not failed.
func TestRecordCacheBlobGone(t *testing.T) {
	testenv.Require(t, "docker-registry")
	ctx := context.Background()
	host := testenv.StartRegistry(t)
	opts := Options{Options: registry.Options{Backoff: fastBackoff}}

	idx1, layers1 := recordIndex(t, "v1", amd64, arm64)
	r1 := NewRegistry(mustTarget(t, host+"/gone/app", "v1"), opts)
	defer r1.Close()
	_, err := r1.Write(ctx, idx1, nil)
	assert.NilError(t, err)
	n, err := r1.RecordCache(ctx, idx1, r1.ReadCacheRecord(ctx))
	assert.NilError(t, err)
	assert.Equal(t, n, 3)

	req, err := http.NewRequest(http.MethodDelete, "http://"+host+"/v2/gone/app/blobs/"+layers1[0].Digest.String(), nil)
	assert.NilError(t, err)
	resp, err := http.DefaultClient.Do(req)
	assert.NilError(t, err)
	resp.Body.Close()
	assert.Equal(t, resp.StatusCode, http.StatusAccepted, "delete %s", layers1[0].Digest)

	idx2, layers2 := recordIndex(t, "v2", amd64, arm64)
	r2 := NewRegistry(mustTarget(t, host+"/gone/app", "v2"), opts)
	defer r2.Close()
	_, err = r2.Write(ctx, idx2, nil)
	assert.NilError(t, err)
	n, err = r2.RecordCache(ctx, idx2, r2.ReadCacheRecord(ctx))
	assert.NilError(t, err)
	assert.Equal(t, n, len(layers2), "only this build's layers")
	found, _ := cache.Read(ctx, []name.Reference{cache.RecordRef(mustTarget(t, host+"/gone/app").Repo)}, opts.Options)
	assert.Equal(t, len(found), len(layers2))
	for _, l := range layers2 {
		_, ok := found[l.CacheKey]
		assert.Check(t, ok, "%s not in the record", l.CacheKey)
	}
}

// recordIndex is an index of one image per platform, each with a layer
// of its own and a shared one, every layer with a cache key.
func recordIndex(t *testing.T, salt string, platforms ...v1.Platform) (*image.Index, []image.Blob) {
	t.Helper()
	dir := t.TempDir()
	shared := realLayer(t, dir, map[string]string{"nix/store/aaa-cacert/etc/ca.crt": "certs " + salt})
	shared.CacheKey = "ck-shared-" + salt
	all := []image.Blob{shared}
	var imgs []*image.Image
	for _, p := range platforms {
		own := realLayer(t, dir, map[string]string{"nix/store/bbb-hello/bin/hello": "hello " + p.Architecture + salt})
		own.CacheKey = "ck-hello-" + p.Architecture + "-" + salt
		all = append(all, own)
		img, err := image.NewImage(p, []image.Blob{shared, own}, image.Options{})
		assert.NilError(t, err)
		imgs = append(imgs, img)
	}
	idx, err := image.NewIndex(imgs, nil)
	assert.NilError(t, err)
	return idx, all
}

func mustManifestDigest(t *testing.T, idx v1.ImageIndex, i int) v1.Hash {
	t.Helper()
	im, err := idx.IndexManifest()
	assert.NilError(t, err)
	return im.Manifests[i].Digest
}

// TestRecordCacheArtifact: the record is an OCI artifact (artifactType,
// the empty config, each layer's diffID on its descriptor), which
// docker-registry accepts; a record an earlier version wrote (an image
// config for no platform holding the diffIDs) is still read, by a
// build's cache and by the next RecordCache, which writes the new form.
func TestRecordCacheArtifact(t *testing.T) {
	testenv.Require(t, "docker-registry")
	ctx := context.Background()
	host := testenv.StartRegistry(t)
	opts := Options{Options: registry.Options{Backoff: fastBackoff}}
	record := cache.RecordRef(mustTarget(t, host+"/art/app").Repo)

	idx1, layers1 := recordIndex(t, "v1", amd64, arm64)
	r1 := NewRegistry(mustTarget(t, host+"/art/app", "v1"), opts)
	defer r1.Close()
	_, err := r1.Write(ctx, idx1, nil)
	assert.NilError(t, err)
	_, err = r1.RecordCache(ctx, idx1, r1.ReadCacheRecord(ctx))
	assert.NilError(t, err)

	m := recordManifest(t, record)
	assert.Equal(t, m.ArtifactType, cache.RecordArtifactType)
	assert.Equal(t, m.Config.MediaType, types.OCIEmptyJSON)
	empty, _, err := v1.SHA256(strings.NewReader("{}"))
	assert.NilError(t, err)
	assert.Equal(t, m.Config.Digest, empty)
	assert.Equal(t, len(m.Layers), len(layers1))
	for i, l := range layers1 {
		assert.Equal(t, m.Layers[i].Annotations[cache.AnnotationDiffID], l.DiffID.String())
	}

	// The record as earlier versions wrote it: still read, every layer.
	putEarlierRecord(t, record, m)
	assert.Equal(t, recordManifest(t, record).ArtifactType, "")
	assert.Equal(t, r1.ReadCacheRecord(ctx).Len(), len(layers1))
	found, _ := cache.Read(ctx, []name.Reference{record}, opts.Options)
	for _, l := range layers1 {
		got, ok := found[l.CacheKey]
		assert.Assert(t, ok, "%s not in the earlier record", l.CacheKey)
		assert.Equal(t, got.DiffID, l.DiffID)
	}

	// The next build keeps its entries, in the new form.
	idx2, layers2 := recordIndex(t, "v2", amd64, arm64)
	r2 := NewRegistry(mustTarget(t, host+"/art/app", "v2"), opts)
	defer r2.Close()
	_, err = r2.Write(ctx, idx2, nil)
	assert.NilError(t, err)
	n, err := r2.RecordCache(ctx, idx2, r2.ReadCacheRecord(ctx))
	assert.NilError(t, err)
	assert.Equal(t, n, len(layers1)+len(layers2))
	assert.Equal(t, recordManifest(t, record).ArtifactType, cache.RecordArtifactType)
	found, _ = cache.Read(ctx, []name.Reference{record}, opts.Options)
	for _, l := range append(layers1, layers2...) {
		got, ok := found[l.CacheKey]
		assert.Assert(t, ok, "%s not in the record", l.CacheKey)
		assert.Equal(t, got.DiffID, l.DiffID)
	}
}

// recordManifest is the record's manifest as the registry holds it.
func recordManifest(t *testing.T, record name.Tag) *v1.Manifest {
	t.Helper()
	desc, err := remote.Get(record)
	assert.NilError(t, err)
	assert.Equal(t, desc.MediaType, types.OCIManifestSchema1)
	m, err := v1.ParseManifest(bytes.NewReader(desc.Manifest))
	assert.NilError(t, err)
	return m
}

// putEarlierRecord puts the record m under its tag in the form versions
// before the artifact wrote: an image config for unknown/unknown whose
// diff_ids pair with the layers, no artifactType, no diffID annotations.
func putEarlierRecord(t *testing.T, record name.Tag, m *v1.Manifest) {
	t.Helper()
	type rootFS struct {
		Type    string    `json:"type"`
		DiffIDs []v1.Hash `json:"diff_ids"`
	}
	cfg := struct {
		Architecture string `json:"architecture"`
		OS           string `json:"os"`
		RootFS       rootFS `json:"rootfs"`
	}{"unknown", "unknown", rootFS{Type: "layers"}}
	old := *m
	old.ArtifactType = ""
	old.Layers = nil
	for _, l := range m.Layers {
		h, err := v1.NewHash(l.Annotations[cache.AnnotationDiffID])
		assert.NilError(t, err)
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, h)
		l.Annotations = map[string]string{image.AnnotationLayerCache: l.Annotations[image.AnnotationLayerCache]}
		old.Layers = append(old.Layers, l)
	}
	raw, err := json.Marshal(cfg)
	assert.NilError(t, err)
	assert.NilError(t, remote.WriteLayer(record.Context(), static.NewLayer(raw, types.OCIConfigJSON)))
	old.Config = v1.Descriptor{MediaType: types.OCIConfigJSON, Size: int64(len(raw))}
	old.Config.Digest, _, err = v1.SHA256(bytes.NewReader(raw))
	assert.NilError(t, err)
	manifest, err := json.Marshal(old)
	assert.NilError(t, err)
	assert.NilError(t, remote.Put(record, image.RawManifest{Bytes: manifest, Type: types.OCIManifestSchema1}))
}
