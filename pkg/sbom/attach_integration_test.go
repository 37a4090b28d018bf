//go:build integration

package sbom

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"gotest.tools/v3/assert"

	"github.com/nixery-action/nixery-action/internal/cdxvalidate"
	"github.com/nixery-action/nixery-action/internal/testenv"
	"github.com/nixery-action/nixery-action/pkg/archive"
	"github.com/nixery-action/nixery-action/pkg/image"
	"github.com/nixery-action/nixery-action/pkg/layers"
	"github.com/nixery-action/nixery-action/pkg/nix"
	"github.com/nixery-action/nixery-action/pkg/provenance"
	"github.com/nixery-action/nixery-action/pkg/publish"
	"github.com/nixery-action/nixery-action/pkg/referrer"
)

func buildHello(t *testing.T, repo string) built {
	t.Helper()
	testenv.Require(t, "nix")
	dir, err := filepath.Abs("../../testdata/nixpkgs")
	assert.NilError(t, err)
	b := &nix.Builder{Flake: "path:" + dir}
	res, err := b.Build(context.Background(), "x86_64-linux", []string{"hello"})
	assert.NilError(t, err)
	g, err := layers.ParseGraph(res.Closure)
	assert.NilError(t, err)
	assert.NilError(t, g.SetRoots(res.Roots()))

	var paths []string
	for _, p := range g.Paths {
		paths = append(paths, p.Name)
	}
	blobFile := filepath.Join(t.TempDir(), "layer.tar.gz")
	f, err := os.Create(blobFile)
	assert.NilError(t, err)
	blob, err := archive.PackPaths(f, paths, archive.Options{})
	assert.NilError(t, err)
	assert.NilError(t, f.Close())
	digest, err := v1.NewHash(blob.Digest)
	assert.NilError(t, err)
	diffID, err := v1.NewHash(blob.DiffID)
	assert.NilError(t, err)
	img, err := image.NewImage(v1.Platform{OS: "linux", Architecture: "amd64"},
		[]image.Blob{{Digest: digest, DiffID: diffID, Size: blob.Size, Path: blobFile}}, image.Options{Created: epoch})
	assert.NilError(t, err)
	idx, err := image.NewIndex([]*image.Image{img}, nil)
	assert.NilError(t, err)
	im, err := idx.IndexManifest()
	assert.NilError(t, err)

	doc, err := Generate(g, res.Packages, Options{Image: repo, Platform: "linux/amd64", Nixpkgs: res.Flake, ToolVersion: "test", Time: epoch})
	assert.NilError(t, err)
	prov, err := provenance.New(provenance.Options{Name: repo, Subject: im.Manifests[0].Digest, Nixpkgs: res.Flake,
		Packages: []string{"hello"}, Platform: "linux/amd64", Version: "test"})
	assert.NilError(t, err)
	return built{index: idx, manifest: im.Manifests[0], sbom: doc, prov: prov}
}

// An image and its SBOM and provenance pushed to the CNCF registry, which
// has no referrers API: the referrers land in the fallback tag, and
// skopeo (which we did not write) reads them back, byte for byte.
func TestAttachSBOMAndProvenance(t *testing.T) {
	testenv.Require(t, "skopeo")
	reg := testenv.StartRegistry(t)
	repo, err := name.NewRepository(reg+"/hello", name.Insecure)
	assert.NilError(t, err)
	b := buildHello(t, repo.String())
	cdxvalidate.Validate(t, b.sbom)
	assert.NilError(t, remote.WriteIndex(repo.Tag("v1"), b.index))

	ctx := context.Background()
	docs := []referrer.Document{referrer.CycloneDX(b.sbom), referrer.InToto(b.prov, provenance.PredicateType)}
	pushed := map[string]referrer.Document{}
	for _, doc := range docs {
		r, err := referrer.New(b.manifest, doc, epoch)
		assert.NilError(t, err)
		dest := publish.NewRegistry(publish.Target{Repo: repo}, publish.Options{})
		assert.NilError(t, dest.AttachReferrers(ctx, b.manifest, r))
		// Attaching again changes nothing.
		assert.NilError(t, dest.AttachReferrers(ctx, b.manifest, r))
		d, err := r.Digest()
		assert.NilError(t, err)
		pushed[d.String()] = doc
	}

	// The fallback tag: sha256-<hex of the platform manifest>.
	fallback := repo.Tag("sha256-" + b.manifest.Digest.Hex).String()
	var referrers v1.IndexManifest
	assert.NilError(t, json.Unmarshal([]byte(testenv.Run(t, "skopeo", "inspect", "--tls-verify=false", "--raw", "docker://"+fallback)), &referrers))
	assert.Equal(t, referrers.MediaType, types.OCIImageIndex)
	assert.Equal(t, len(referrers.Manifests), 2)
	for _, desc := range referrers.Manifests {
		doc, ok := pushed[desc.Digest.String()]
		assert.Assert(t, ok, "unexpected referrer %s", desc.Digest)
		assert.Equal(t, desc.ArtifactType, doc.ArtifactType)

		var m v1.Manifest
		assert.NilError(t, json.Unmarshal([]byte(testenv.Run(t, "skopeo", "inspect", "--tls-verify=false", "--raw", "docker://"+repo.Digest(desc.Digest.String()).String())), &m))
		assert.Equal(t, m.ArtifactType, doc.ArtifactType)
		assert.Equal(t, m.Subject.Digest, b.manifest.Digest)
		assert.Equal(t, m.Subject.Size, b.manifest.Size)
		assert.Equal(t, m.Config.MediaType, types.OCIEmptyJSON)
		assert.Equal(t, m.Annotations["org.opencontainers.image.created"], "2023-11-14T22:13:20Z")

		// The document itself, copied out by skopeo.
		dir := t.TempDir()
		testenv.Run(t, "skopeo", "copy", "--src-tls-verify=false", "docker://"+repo.Digest(desc.Digest.String()).String(), "oci:"+dir+":x")
		data, err := os.ReadFile(filepath.Join(dir, "blobs", "sha256", m.Layers[0].Digest.Hex))
		assert.NilError(t, err)
		assert.Assert(t, bytes.Equal(data, doc.Data), "%s changed on the way", doc.ArtifactType)
	}

	// go-containerregistry's referrers listing, filtered by type, agrees.
	idx, err := remote.Referrers(repo.Digest(b.manifest.Digest.String()), remote.WithFilter("artifactType", MediaType))
	assert.NilError(t, err)
	im, err := idx.IndexManifest()
	assert.NilError(t, err)
	assert.Equal(t, len(im.Manifests), 1)
	assert.Equal(t, pushed[im.Manifests[0].Digest.String()].ArtifactType, MediaType)
}

// built is the stand-in hello, realised by Nix, packed into a one-layer
// image for linux/amd64, with its SBOM and provenance.
type built struct {
	index      *image.Index
	manifest   v1.Descriptor // the platform image's
	sbom, prov []byte
}
