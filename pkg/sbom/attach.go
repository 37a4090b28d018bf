package sbom

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// InTotoMediaType is the media type of an in-toto statement, the artifact
// type of a provenance referrer.
const InTotoMediaType = "application/vnd.in-toto+json"

// Document is a document about an image, attached to it as a referrer.
type Document struct {
	ArtifactType string            // MediaType or InTotoMediaType; also the blob's media type
	Data         []byte            // the document
	Title        string            // file name for tools that save it (oras pull)
	Annotations  map[string]string // on the blob, e.g. in-toto.io/predicate-type
}

// CycloneDX is an SBOM made by Generate, as a Document.
func CycloneDX(data []byte) Document {
	return Document{ArtifactType: MediaType, Data: data, Title: "sbom.cdx.json"}
}

// InToto is an in-toto statement with a predicate of predicateType (e.g.
// https://slsa.dev/provenance/v1), as a Document. The annotation is the
// one BuildKit's attestations carry, so tools can tell predicates apart.
func InToto(data []byte, predicateType string) Document {
	return Document{ArtifactType: InTotoMediaType, Data: data, Title: "provenance.intoto.json",
		Annotations: map[string]string{"in-toto.io/predicate-type": predicateType}}
}

// emptyConfig is the OCI 1.1 empty descriptor's content: artifacts have
// no image configuration.
var emptyConfig = []byte("{}")

// Referrer returns the OCI 1.1 artifact manifest that attaches doc to
// subject (a platform image's manifest): artifactType doc.ArtifactType,
// the empty config, doc as its one blob, and subject as its subject. It
// is deterministic; created (SOURCE_DATE_EPOCH) becomes the
// org.opencontainers.image.created annotation, and zero leaves it out.
func Referrer(subject v1.Descriptor, doc Document, created time.Time) (v1.Image, error) {
	if doc.ArtifactType == "" || len(doc.Data) == 0 {
		return nil, fmt.Errorf("attaching a document: it is empty or has no artifact type")
	}
	if !subject.MediaType.IsImage() || subject.Digest.Hex == "" || subject.Size <= 0 {
		return nil, fmt.Errorf("attaching a %s document: the subject must be an image manifest, got %s %s", doc.ArtifactType, subject.MediaType, subject.Digest)
	}
	blob := static.NewLayer(doc.Data, types.MediaType(doc.ArtifactType))
	config := static.NewLayer(emptyConfig, types.OCIEmptyJSON)
	blobDesc, err := partial.Descriptor(blob)
	if err != nil {
		return nil, err
	}
	configDesc, err := partial.Descriptor(config)
	if err != nil {
		return nil, err
	}
	configDesc.Data = emptyConfig
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
		Config:        *configDesc,
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

func (a *artifact) RawConfigFile() ([]byte, error)      { return emptyConfig, nil }
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

// Push uploads a referrer made by Referrer into repo (the subject's
// repository) by digest, and returns its digest: its two blobs (those the
// registry has are skipped), then its manifest, which is PUT even when
// the registry has it. go-containerregistry's manifest PUT then asks the
// registry for the referrers API and, where it has none (the CNCF
// registry 2.x), adds the referrer to the OCI 1.1 fallback tag
// sha256-<subject hex> unless it is listed already; it reads that tag
// without a size limit, so push.Registry turns this off
// (remote.WithReferrersTagFallback(false)) and writes the tag itself. A
// writer that skipped manifests already there would never list one whose
// push was cut short between the manifest and the tag. opts are the
// caller's remote options (auth, transport); with remote.Reuse(pusher)
// the pusher's connections and tokens serve it.
func Push(ctx context.Context, repo name.Repository, referrer v1.Image, opts ...remote.Option) (v1.Hash, error) {
	d, err := referrer.Digest()
	if err != nil {
		return v1.Hash{}, err
	}
	fail := func(err error) (v1.Hash, error) {
		return v1.Hash{}, fmt.Errorf("pushing referrer %s to %s: %w", d, repo, err)
	}
	opts = append(append([]remote.Option(nil), opts...), remote.WithContext(ctx))
	blobs, err := referrer.Layers()
	if err != nil {
		return fail(err)
	}
	config, err := partial.ConfigLayer(referrer)
	if err != nil {
		return fail(err)
	}
	// One pusher: one token exchange for the three requests' worth.
	pusher, err := remote.NewPusher(opts...)
	if err != nil {
		return fail(err)
	}
	for _, b := range append(blobs, config) {
		if err := pusher.Upload(ctx, repo, b); err != nil {
			return fail(err)
		}
	}
	if err := pusher.Put(ctx, repo.Digest(d.String()), referrer); err != nil {
		return fail(err)
	}
	return d, nil
}

// LayoutDescriptor is how an OCI layout's index.json lists a referrer
// made by Referrer (with its artifactType, where oras and regclient look).
func LayoutDescriptor(referrer v1.Image) (v1.Descriptor, error) {
	desc, err := partial.Descriptor(referrer)
	if err != nil {
		return v1.Descriptor{}, err
	}
	return *desc, nil
}
