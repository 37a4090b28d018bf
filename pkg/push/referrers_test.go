package push

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/nixery-action/nixery-action/pkg/sbom"
)

// referrers makes two referrers (an SBOM and a statement) of idx's first
// image, and returns that image's descriptor with them.
func referrers(t *testing.T, idx v1.ImageIndex) (v1.Descriptor, []v1.Image, []string) {
	t.Helper()
	im, err := idx.IndexManifest()
	assert.NilError(t, err)
	subject := im.Manifests[0]
	var imgs []v1.Image
	var digests []string
	for _, doc := range []sbom.Document{
		sbom.CycloneDX([]byte(`{"bomFormat":"CycloneDX"}`)),
		sbom.InToto([]byte(`{"_type":"https://in-toto.io/Statement/v1"}`), "https://slsa.dev/provenance/v1"),
	} {
		r, err := sbom.Referrer(subject, doc, time.Unix(1, 0))
		assert.NilError(t, err)
		d, err := r.Digest()
		assert.NilError(t, err)
		imgs = append(imgs, r)
		digests = append(digests, d.String())
	}
	sort.Strings(digests)
	return subject, imgs, digests
}

// An OCI layout lists the referrers in index.json, beside the image, in
// the same write; writing them again changes nothing. A docker archive
// has no place for them and says so.
func TestLayoutReferrers(t *testing.T) {
	ctx := context.Background()
	idx := testIndex(t, "layout-referrers", amd64)
	subject, imgs, want := referrers(t, idx)
	refs := Attachments{subject.Digest: imgs}

	dir := filepath.Join(t.TempDir(), "image")
	l := NewLayout(Output{Kind: OCILayout, Path: dir}, WriteOptions{Tags: []string{"v1"}})
	for range 2 {
		res, err := l.Write(ctx, idx, refs)
		assert.NilError(t, err)
		assert.Check(t, res.ReferrersAttached)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "index.json"))
	assert.NilError(t, err)
	var top v1.IndexManifest
	assert.NilError(t, json.Unmarshal(raw, &top))
	assert.Assert(t, is.Len(top.Manifests, 3))
	var got []string
	for _, m := range top.Manifests[1:] {
		got = append(got, m.Digest.String())
		assert.Check(t, m.ArtifactType != "", "a referrer without its artifactType: %+v", m)
	}
	sort.Strings(got)
	assert.DeepEqual(t, got, want)

	archive := NewLayout(Output{Kind: DockerArchive, Path: filepath.Join(t.TempDir(), "a.tar")}, WriteOptions{})
	res, err := archive.Write(ctx, idx, refs)
	assert.NilError(t, err)
	assert.Check(t, !res.ReferrersAttached)
}
