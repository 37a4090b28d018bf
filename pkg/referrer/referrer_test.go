package referrer

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// A referrer is an OCI 1.1 artifact manifest naming its subject: the
// document as its one layer, titled, an empty config, no annotations
// without a time, and its artifactType in the descriptor a layout's
// index.json lists it by; the same document gives the same digest.
func TestReferrer(t *testing.T) {
	subject := v1.Descriptor{MediaType: types.OCIManifestSchema1, Size: 1234,
		Digest: v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("ab", 32)}}
	sbomDoc := CycloneDX([]byte(`{"bomFormat":"CycloneDX"}`))
	provDoc := InToto([]byte(`{"_type":"https://in-toto.io/Statement/v1"}`), "https://slsa.dev/provenance/v1")
	var digests []v1.Hash
	for _, doc := range []Document{sbomDoc, provDoc, sbomDoc} {
		r, err := New(subject, doc, time.Time{})
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
	_, err := New(subject, Document{ArtifactType: CycloneDXMediaType}, time.Time{})
	assert.ErrorContains(t, err, "empty")
	idx := subject
	idx.MediaType = types.OCIImageIndex
	_, err = New(idx, CycloneDX([]byte("{}")), time.Time{})
	assert.ErrorContains(t, err, "the subject must be an image manifest")
}
