package publish

import (
	"context"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/nixery-action/nixery-action/pkg/referrer"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
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
	for _, doc := range []referrer.Document{
		referrer.CycloneDX([]byte(`{"bomFormat":"CycloneDX"}`)),
		referrer.InToto([]byte(`{"_type":"https://in-toto.io/Statement/v1"}`), "https://slsa.dev/provenance/v1"),
	} {
		r, err := referrer.New(subject, doc, time.Unix(1, 0))
		assert.NilError(t, err)
		d, err := r.Digest()
		assert.NilError(t, err)
		imgs = append(imgs, r)
		digests = append(digests, d.String())
	}
	sort.Strings(digests)
	return subject, imgs, digests
}

// An OCI layout names the image alone in index.json (skopeo needs no
// reference then), and lists the referrers beside it in its referrers
// layout, whose layer blobs are the outer layout's files (hard links);
// writing them again changes nothing. A docker archive has no place for
// them and says so.
func TestLayoutReferrers(t *testing.T) {
	ctx := context.Background()
	idx := testIndex(t, "layout-referrers", amd64)
	subject, imgs, want := referrers(t, idx)
	refs := Attachments{subject.Digest: imgs}

	dir := filepath.Join(t.TempDir(), "image")
	l := NewLayout(Output{Kind: OCILayout, Path: dir}, WriteOptions{Tags: []string{"v1"}})
	layers := map[string]bool{}
	for range 2 {
		res, err := l.Write(ctx, idx, refs)
		assert.NilError(t, err)
		assert.Check(t, res.ReferrersAttached)
		for _, m := range res.Manifests {
			for _, l := range m.Layers {
				layers[strings.TrimPrefix(l.Digest, "sha256:")] = true
			}
		}
	}
	raw, err := os.ReadFile(filepath.Join(dir, "index.json"))
	assert.NilError(t, err)
	var top v1.IndexManifest
	assert.NilError(t, json.Unmarshal(raw, &top))
	assert.Assert(t, is.Len(top.Manifests, 1))
	raw, err = os.ReadFile(filepath.Join(dir, ReferrersDir, "index.json"))
	assert.NilError(t, err)
	var side v1.IndexManifest
	assert.NilError(t, json.Unmarshal(raw, &side))
	assert.Assert(t, is.Len(side.Manifests, 3))
	assert.DeepEqual(t, side.Manifests[0], top.Manifests[0])
	entries, err := os.ReadDir(filepath.Join(dir, "blobs", "sha256"))
	assert.NilError(t, err)
	for _, e := range entries {
		outer, err := os.Stat(filepath.Join(dir, "blobs", "sha256", e.Name()))
		assert.NilError(t, err)
		inner, err := os.Stat(filepath.Join(dir, ReferrersDir, "blobs", "sha256", e.Name()))
		assert.NilError(t, err, "the referrers layout lacks %s", e.Name())
		if layers[e.Name()] { // linked rather than copied
			assert.Check(t, os.SameFile(outer, inner), "layer %s is a copy", e.Name())
		}
		// A new layout's files are 0644, whatever their names.
		assert.Check(t, is.Equal(outer.Mode().Perm(), os.FileMode(0o644)), e.Name())
		assert.Check(t, is.Equal(inner.Mode().Perm(), os.FileMode(0o644)), e.Name())
	}
	var got []string
	for _, m := range side.Manifests[1:] {
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

// A registry with the referrers API lists the referrer itself, and no
// fallback tag is written. (go-containerregistry's in-memory registry:
// Debian's registry 2.8 has no referrers API.)
func TestAttachReferrersAPI(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.WithReferrersSupport(true), registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	repo, err := name.NewRepository(strings.TrimPrefix(srv.URL, "http://")+"/hello", name.Insecure)
	assert.NilError(t, err)
	desc := pushRandom(t, repo.Tag("v1"))

	r, err := referrer.New(*desc, referrer.CycloneDX([]byte(`{"bomFormat":"CycloneDX"}`)), time.Time{})
	assert.NilError(t, err)
	assert.NilError(t, NewRegistry(Target{Repo: repo}, Options{}).AttachReferrers(context.Background(), *desc, r))
	d, err := r.Digest()
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
