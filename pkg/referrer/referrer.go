// Package referrer makes the OCI 1.1 artifacts that attach documents (an
// SBOM, a provenance statement) to an image: an artifact manifest whose
// subject is the image's manifest. Storing them is the destinations' job
// (pkg/publish); making the documents is pkg/sbom's and pkg/provenance's.
package referrer

import (
	"encoding/json"
	"fmt"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/nixery-action/nixery-action/pkg/image"
)

// CycloneDXMediaType is the media type of a CycloneDX JSON SBOM, the
// artifact type of an SBOM referrer.
const CycloneDXMediaType = "application/vnd.cyclonedx+json"

// InTotoMediaType is the media type of an in-toto statement, the artifact
// type of a provenance referrer.
const InTotoMediaType = "application/vnd.in-toto+json"

// Document is a document about an image, attached to it as a referrer.
type Document struct {
	ArtifactType string            // CycloneDXMediaType or InTotoMediaType; also the blob's media type
	Data         []byte            // the document
	Title        string            // file name for tools that save it (oras pull)
	Annotations  map[string]string // on the blob, e.g. in-toto.io/predicate-type
}

// CycloneDX is a CycloneDX JSON SBOM (sbom.Generate's), as a Document.
func CycloneDX(data []byte) Document {
	return Document{ArtifactType: CycloneDXMediaType, Data: data, Title: "sbom.cdx.json"}
}

// InToto is an in-toto statement with a predicate of predicateType (e.g.
// https://slsa.dev/provenance/v1), as a Document. The annotation is the
// one BuildKit's attestations carry, so tools can tell predicates apart.
func InToto(data []byte, predicateType string) Document {
	return Document{ArtifactType: InTotoMediaType, Data: data, Title: "provenance.intoto.json",
		Annotations: map[string]string{"in-toto.io/predicate-type": predicateType}}
}

// New returns the OCI 1.1 artifact manifest that attaches doc to
// subject (a platform image's manifest): artifactType doc.ArtifactType,
// the empty config, doc as its one blob, and subject as its subject. It
// is deterministic; created (SOURCE_DATE_EPOCH) becomes the
// org.opencontainers.image.created annotation, and zero leaves it out.
func New(subject v1.Descriptor, doc Document, created time.Time) (v1.Image, error) {
	if doc.ArtifactType == "" || len(doc.Data) == 0 {
		return nil, fmt.Errorf("attaching a document: it is empty or has no artifact type")
	}
	if !subject.MediaType.IsImage() || subject.Digest.Hex == "" || subject.Size <= 0 {
		return nil, fmt.Errorf("attaching a %s document: the subject must be an image manifest, got %s %s", doc.ArtifactType, subject.MediaType, subject.Digest)
	}
	blob := static.NewLayer(doc.Data, types.MediaType(doc.ArtifactType))
	config := image.EmptyBlob()
	blobDesc, err := partial.Descriptor(blob)
	if err != nil {
		return nil, err
	}
	configDesc := image.EmptyDescriptor()
	configDesc.Data = image.EmptyJSON()
	blobDesc.Annotations = map[string]string{}
	for k, v := range doc.Annotations {
		blobDesc.Annotations[k] = v
	}
	if doc.Title != "" {
		blobDesc.Annotations["org.opencontainers.image.title"] = doc.Title
	}
	if len(blobDesc.Annotations) == 0 {
		blobDesc.Annotations = nil
	}
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		ArtifactType:  doc.ArtifactType,
		Config:        configDesc,
		Layers:        []v1.Descriptor{*blobDesc},
		// Only what identifies the subject: its platform and annotations
		// belong to the index.
		Subject: &v1.Descriptor{MediaType: subject.MediaType, Size: subject.Size, Digest: subject.Digest},
	}
	if !created.IsZero() {
		m.Annotations = map[string]string{"org.opencontainers.image.created": created.UTC().Format(time.RFC3339)}
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return partial.CompressedToImage(&artifact{manifest: raw, config: config, blob: blob})
}

// artifact is an artifact manifest with its two blobs, as a v1.Image, so
// that go-containerregistry's writers push and store it like any image.
type artifact struct {
	manifest     []byte
	config, blob v1.Layer
}

func (a *artifact) RawConfigFile() ([]byte, error)      { return image.EmptyJSON(), nil }
func (a *artifact) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }
func (a *artifact) RawManifest() ([]byte, error)        { return a.manifest, nil }

func (a *artifact) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	for _, l := range []v1.Layer{a.blob, a.config} {
		if d, err := l.Digest(); err == nil && d == h {
			return l, nil
		}
	}
	return nil, fmt.Errorf("artifact has no blob %s", h)
}

// LayoutDescriptor is how an OCI layout's index.json lists a referrer
// made by New (with its artifactType, where oras and regclient look).
func LayoutDescriptor(referrer v1.Image) (v1.Descriptor, error) {
	desc, err := partial.Descriptor(referrer)
	if err != nil {
		return v1.Descriptor{}, err
	}
	return *desc, nil
}
