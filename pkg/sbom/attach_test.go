package sbom

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"gotest.tools/v3/assert"

	"github.com/nixery-action/nixery-action/internal/testenv"
	"github.com/nixery-action/nixery-action/pkg/provenance"
)

func TestMain(m *testing.M) {
	os.Setenv("NIX_CONFIG", testenv.NixConfig)
	os.Exit(m.Run())
}

// In an OCI layout the referrers are listed in index.json next to the
// image, with their artifact type; writing twice lists them once.
func TestWriteLayoutReferrers(t *testing.T) {
	dir := t.TempDir()
	subject := v1.Descriptor{MediaType: types.OCIManifestSchema1, Size: 1234,
		Digest: v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("ab", 32)}}
	p, err := layout.Write(dir, emptyIndex(t))
	assert.NilError(t, err)
	sbomDoc := CycloneDX([]byte(`{"bomFormat":"CycloneDX"}`))
	provDoc := InToto([]byte(`{"_type":"https://in-toto.io/Statement/v1"}`), provenance.PredicateType)
	var digests []v1.Hash
	for _, doc := range []Document{sbomDoc, provDoc, sbomDoc} {
		r, err := Referrer(subject, doc, time.Time{})
		assert.NilError(t, err)
		assert.NilError(t, WriteLayout(p, r))
		d, err := r.Digest()
		assert.NilError(t, err)
		digests = append(digests, d)
	}
	assert.Equal(t, digests[0], digests[2])

	var index v1.IndexManifest
	raw, err := os.ReadFile(filepath.Join(dir, "index.json"))
	assert.NilError(t, err)
	assert.NilError(t, json.Unmarshal(raw, &index))
	assert.Equal(t, len(index.Manifests), 2)
	for i, want := range []Document{sbomDoc, provDoc} {
		desc := index.Manifests[i]
		assert.Equal(t, desc.Digest, digests[i])
		assert.Equal(t, desc.ArtifactType, want.ArtifactType)
		var m v1.Manifest
		raw, err := os.ReadFile(filepath.Join(dir, "blobs", "sha256", desc.Digest.Hex))
		assert.NilError(t, err)
		assert.NilError(t, json.Unmarshal(raw, &m))
		assert.DeepEqual(t, *m.Subject, subject)
		assert.Assert(t, m.Annotations == nil) // no time given, none written
		data, err := os.ReadFile(filepath.Join(dir, "blobs", "sha256", m.Layers[0].Digest.Hex))
		assert.NilError(t, err)
		assert.Assert(t, bytes.Equal(data, want.Data))
		assert.Equal(t, m.Layers[0].Annotations["org.opencontainers.image.title"], want.Title)
		config, err := os.ReadFile(filepath.Join(dir, "blobs", "sha256", m.Config.Digest.Hex))
		assert.NilError(t, err)
		assert.Equal(t, string(config), "{}")
	}
	assert.Assert(t, index.Manifests[1].Annotations == nil) // no tag names a referrer
}

func TestReferrerErrors(t *testing.T) {
	subject := v1.Descriptor{MediaType: types.OCIManifestSchema1, Size: 10, Digest: v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("0", 64)}}
	_, err := Referrer(subject, Document{ArtifactType: MediaType}, time.Time{})
	assert.ErrorContains(t, err, "empty")
	idx := subject
	idx.MediaType = types.OCIImageIndex
	_, err = Referrer(idx, CycloneDX([]byte("{}")), time.Time{})
	assert.ErrorContains(t, err, "the subject must be an image manifest")
}

// A registry with the referrers API lists the referrer itself, and no
// fallback tag is written. (go-containerregistry's in-memory registry:
// Debian's registry 2.8 has no referrers API.)
func TestPushReferrersAPI(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.WithReferrersSupport(true), registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	repo, err := name.NewRepository(strings.TrimPrefix(srv.URL, "http://")+"/hello", name.Insecure)
	assert.NilError(t, err)
	desc := pushRandom(t, repo.Tag("v1"))

	r, err := Referrer(*desc, CycloneDX([]byte(`{"bomFormat":"CycloneDX"}`)), time.Time{})
	assert.NilError(t, err)
	d, err := Push(context.Background(), repo, r)
	assert.NilError(t, err)

	resp, err := http.Get(srv.URL + "/v2/hello/referrers/" + desc.Digest.String())
	assert.NilError(t, err)
	defer resp.Body.Close()
	var listed v1.IndexManifest
	assert.NilError(t, json.NewDecoder(resp.Body).Decode(&listed))
	assert.Equal(t, len(listed.Manifests), 1)
	assert.Equal(t, listed.Manifests[0].Digest, d)
	// (This registry lists the config's media type as the artifact type,
	// not the manifest's artifactType, so that is not checked here.)

	tags, err := remote.List(repo)
	assert.NilError(t, err)
	assert.DeepEqual(t, tags, []string{"v1"})
}

// pushRandom pushes a random image under tag and describes it: a
// subject for referrers.
func pushRandom(t *testing.T, tag name.Tag) *v1.Descriptor {
	t.Helper()
	img, err := random.Image(100, 1)
	assert.NilError(t, err)
	assert.NilError(t, remote.Write(tag, img))
	desc, err := partial.Descriptor(img)
	assert.NilError(t, err)
	return desc
}
