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
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/nixery-action/nixery-action/internal/testenv"
	"github.com/nixery-action/nixery-action/pkg/provenance"
)

func TestMain(m *testing.M) {
	os.Setenv("NIX_CONFIG", testenv.NixConfig)
	os.Exit(m.Run())
}

// A referrer is an OCI 1.1 artifact manifest naming its subject: the
// document as its one layer, titled, an empty config, no annotations
// without a time, and its artifactType in the descriptor a layout's
// index.json lists it by; the same document gives the same digest.
func TestReferrer(t *testing.T) {
	subject := v1.Descriptor{MediaType: types.OCIManifestSchema1, Size: 1234,
		Digest: v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("ab", 32)}}
	sbomDoc := CycloneDX([]byte(`{"bomFormat":"CycloneDX"}`))
	provDoc := InToto([]byte(`{"_type":"https://in-toto.io/Statement/v1"}`), provenance.PredicateType)
	var digests []v1.Hash
	for _, doc := range []Document{sbomDoc, provDoc, sbomDoc} {
		r, err := Referrer(subject, doc, time.Time{})
		assert.NilError(t, err)
		desc, err := LayoutDescriptor(r)
		assert.NilError(t, err)
		assert.Equal(t, desc.ArtifactType, doc.ArtifactType)
		assert.Equal(t, desc.MediaType, types.OCIManifestSchema1)
		digests = append(digests, desc.Digest)

		m, err := r.Manifest()
		assert.NilError(t, err)
		assert.DeepEqual(t, *m.Subject, subject)
		assert.Assert(t, m.Annotations == nil) // no time given, none written
		assert.Assert(t, is.Len(m.Layers, 1))
		assert.Equal(t, m.Layers[0].Annotations["org.opencontainers.image.title"], doc.Title)
		layer, err := r.LayerByDigest(m.Layers[0].Digest)
		assert.NilError(t, err)
		rc, err := layer.Compressed()
		assert.NilError(t, err)
		data, err := io.ReadAll(rc)
		assert.NilError(t, err)
		assert.Assert(t, bytes.Equal(data, doc.Data))
		config, err := r.RawConfigFile()
		assert.NilError(t, err)
		assert.Equal(t, string(config), "{}")
	}
	assert.Equal(t, digests[0], digests[2])
	assert.Assert(t, digests[0] != digests[1])
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
