package publish

import (
	"context"
	"errors"
	"net/http"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/nixery-action/nixery-action/pkg/registry"
)

// Merge's own errors say what to do, and keep their cause: the
// registry's 404 for a digest that is not there, the deadline for a
// registry too slow to read.
func TestMergeErrorsKeepCause(t *testing.T) {
	anon := Options{Options: registry.Options{Credentials: registry.Credentials{Keychain: noCreds}}}
	missing := "sha256:" + strings.Repeat("ab", 32)

	host := memRegistry(t, nil)
	_, err := mergeOne(context.Background(), mustTarget(t, host+"/merge/app", "v1"), []string{missing}, anon)
	assert.ErrorContains(t, err, missing+" is not in "+host+"/merge/app: merge the digests")
	var terr *transport.Error
	assert.Assert(t, errors.As(err, &terr), "%T", err)
	assert.Equal(t, terr.StatusCode, http.StatusNotFound)

	slow := memRegistry(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.Contains(r.URL.Path, "/manifests/") {
				select {
				case <-r.Context().Done():
				case <-time.After(5 * time.Second):
				}
			}
			h.ServeHTTP(w, r)
		})
	})
	o := anon
	o.RegistryTimeout = 200 * time.Millisecond
	_, err = mergeOne(context.Background(), mustTarget(t, slow+"/merge/app", "v1"), []string{missing}, o)
	assert.ErrorContains(t, err, "not done within 200ms")
	assert.Assert(t, errors.Is(err, context.DeadlineExceeded), "%v", err)
}

// pushImage pushes a random image of platform p, with the layers more
// on top, to repo and returns its digest.
func pushImage(t *testing.T, repo string, p v1.Platform, more ...v1.Layer) string {
	t.Helper()
	img, err := random.Image(64, 1)
	assert.NilError(t, err)
	img, err = mutate.AppendLayers(img, more...)
	assert.NilError(t, err)
	cf, err := img.ConfigFile()
	assert.NilError(t, err)
	cf.OS, cf.Architecture, cf.Variant = p.OS, p.Architecture, p.Variant
	img, err = mutate.ConfigFile(img, cf)
	assert.NilError(t, err)
	img = mutate.MediaType(mutate.ConfigMediaType(img, types.OCIConfigJSON), types.OCIManifestSchema1)
	ref, err := name.ParseReference(repo+":x", name.Insecure)
	assert.NilError(t, err)
	assert.NilError(t, remote.Write(ref, img))
	d, err := img.Digest()
	assert.NilError(t, err)
	return d.String()
}

// pushIndex pushes idx to repo and returns its digest.
func pushIndex(t *testing.T, repo string, idx v1.ImageIndex) string {
	t.Helper()
	ref, err := name.ParseReference(repo+":i", name.Insecure)
	assert.NilError(t, err)
	assert.NilError(t, remote.WriteIndex(ref, idx))
	d, err := idx.Digest()
	assert.NilError(t, err)
	return d.String()
}

// What merge is given is what it merges, or a one-line refusal: a digest
// given twice counts once; two images of one platform (arm64 and
// arm64/v8 are one) are refused; so is an index of no images, an index
// of indexes, and an image for the unknown/unknown platform.
func TestMergeInputs(t *testing.T) {
	anon := Options{Options: registry.Options{Credentials: registry.Credentials{Keychain: noCreds}}}
	host := memRegistry(t, nil)
	repo := host + "/merge/app"
	amd := pushImage(t, repo, v1.Platform{OS: "linux", Architecture: "amd64"})
	arm := pushImage(t, repo, v1.Platform{OS: "linux", Architecture: "arm64"})
	armV8 := pushImage(t, repo, v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"})
	unknown := pushImage(t, repo, v1.Platform{OS: "unknown", Architecture: "unknown"})
	emptyIndex := pushIndex(t, repo, mutate.IndexMediaType(empty.Index, types.OCIImageIndex))
	inner, err := random.Index(64, 1, 1)
	assert.NilError(t, err)
	nested := pushIndex(t, repo, mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex),
		mutate.IndexAddendum{Add: inner, Descriptor: v1.Descriptor{MediaType: types.OCIImageIndex, Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}}))

	res, err := mergeOne(context.Background(), mustTarget(t, repo, "v1"), []string{amd, amd, arm}, anon)
	assert.NilError(t, err)
	assert.Equal(t, len(res.Manifests), 2)

	for _, tc := range []struct {
		digests []string
		want    string
	}{
		{[]string{arm, armV8}, "two images for linux/arm64 among the digests to merge"},
		{[]string{amd, emptyIndex}, "index " + emptyIndex + " lists no images"},
		{[]string{nested}, "not an image: merge the digests of images"},
		{[]string{amd, unknown}, "image " + unknown + " has no usable platform"},
	} {
		_, err := mergeOne(context.Background(), mustTarget(t, repo, "v2"), tc.digests, anon)
		assert.Check(t, is.ErrorContains(err, tc.want), tc.digests)
	}
}

// A body that is not what the registry calls it is refused: an image
// manifest without a mediaType field, served as an index, would be an
// index of nothing and its platform would vanish from the merge.
func TestMergeSameKind(t *testing.T) {
	image := `{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":2,"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"},"layers":[]}`
	index := `{"schemaVersion":2,"manifests":[]}`
	for _, tc := range []struct {
		raw  string
		mt   types.MediaType
		want string
	}{
		{image, types.OCIManifestSchema1, ""},
		{index, types.OCIImageIndex, ""},
		{image, types.OCIImageIndex, "it lists no manifests"},
		{index, types.OCIManifestSchema1, "it has no config"},
		{`{"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{}}`, types.OCIImageIndex, `but it says it is a "application/vnd.oci.image.manifest.v1+json"`},
		{`<html>`, types.OCIImageIndex, "not a manifest"},
	} {
		err := sameKind([]byte(tc.raw), tc.mt)
		if tc.want == "" {
			assert.Check(t, err, tc.raw)
		} else {
			assert.Check(t, is.ErrorContains(err, tc.want), tc.raw)
		}
	}
}

// Merge with push false makes the index Merge would push, from the same images,
// and writes nothing to the registry: no manifest, no tag.
func TestMergeUnpushedWritesNothing(t *testing.T) {
	anon := Options{Options: registry.Options{Credentials: registry.Credentials{Keychain: noCreds}}}
	var writes atomic.Int64
	host := memRegistry(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodGet && r.Method != http.MethodHead {
				writes.Add(1)
			}
			h.ServeHTTP(w, r)
		})
	})
	repo := host + "/merge/dry"
	amd := pushImage(t, repo, v1.Platform{OS: "linux", Architecture: "amd64"})
	arm := pushImage(t, repo, v1.Platform{OS: "linux", Architecture: "arm64"})
	before := writes.Load()

	dry, err := mergeOneUnpushed(context.Background(), mustTarget(t, repo, "dry"), []string{amd, arm}, anon)
	assert.NilError(t, err)
	assert.Equal(t, writes.Load(), before, "an unpushed merge wrote to the registry")
	assert.Check(t, !dry.Pushed && dry.Reference == "")
	assert.DeepEqual(t, dry.Tags, []string{"dry"})
	tag, err := name.NewTag(repo+":dry", name.Insecure)
	assert.NilError(t, err)
	_, err = remote.Head(tag, remote.WithAuthFromKeychain(noCreds))
	assert.Check(t, err != nil, "the tag exists")

	pushed, err := mergeOne(context.Background(), mustTarget(t, repo, "wet"), []string{amd, arm}, anon)
	assert.NilError(t, err)
	assert.Equal(t, dry.Digest, pushed.Digest)
	assert.Equal(t, len(dry.Manifests), 2)
}

// A merge's result lists each platform's layers, read from the images it
// merges (an image given alone, and one inside an index), none uploaded:
// a merge sends no blob.
func TestMergeListsLayers(t *testing.T) {
	anon := Options{Options: registry.Options{Credentials: registry.Credentials{Keychain: noCreds}}}
	host := memRegistry(t, nil)
	repo := host + "/merge/layers"
	amd := pushImage(t, repo, v1.Platform{OS: "linux", Architecture: "amd64"})
	arm := pushImage(t, repo, v1.Platform{OS: "linux", Architecture: "arm64"})
	armImage := readImage(t, repo+"@"+arm)
	armIndex := pushIndex(t, repo, mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex),
		mutate.IndexAddendum{Add: armImage, Descriptor: v1.Descriptor{MediaType: types.OCIManifestSchema1, Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}}))

	for _, merge := range []func(context.Context, Target, []string, Options) (*Result, error){mergeOne, mergeOneUnpushed} {
		res, err := merge(context.Background(), mustTarget(t, repo, "v1"), []string{amd, armIndex}, anon)
		assert.NilError(t, err)
		assert.Assert(t, is.Len(res.Manifests, 2))
		for _, m := range res.Manifests {
			img := readImage(t, repo+"@"+m.Digest)
			layers, err := img.Layers()
			assert.NilError(t, err)
			assert.Assert(t, is.Len(m.Layers, len(layers)), m.Platform)
			for i, l := range layers {
				d, err := l.Digest()
				assert.NilError(t, err)
				size, err := l.Size()
				assert.NilError(t, err)
				assert.Check(t, is.Equal(m.Layers[i].Digest, d.String()))
				assert.Check(t, is.Equal(m.Layers[i].Size, size))
				assert.Check(t, !m.Layers[i].Uploaded)
			}
		}
	}
}

// A merge asks the registry about each blob once: a layer two platforms
// share is one HEAD, and the config of an image given alone, downloaded
// to read its platform, is not asked about again.
func TestMergeHeadsEachBlobOnce(t *testing.T) {
	anon := Options{Options: registry.Options{Credentials: registry.Credentials{Keychain: noCreds}}}
	var mu sync.Mutex
	heads := map[string]int{}
	host := memRegistry(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodHead && strings.Contains(r.URL.Path, "/blobs/") {
				mu.Lock()
				heads[path.Base(r.URL.Path)]++
				mu.Unlock()
			}
			h.ServeHTTP(w, r)
		})
	})
	repo := host + "/merge/heads"
	shared, err := random.Layer(64, types.OCILayer)
	assert.NilError(t, err)
	amd := pushImage(t, repo, v1.Platform{OS: "linux", Architecture: "amd64"}, shared)
	arm := pushImage(t, repo, v1.Platform{OS: "linux", Architecture: "arm64"}, shared)
	armIndex := pushIndex(t, repo, mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex),
		mutate.IndexAddendum{Add: readImage(t, repo+"@"+arm), Descriptor: v1.Descriptor{MediaType: types.OCIManifestSchema1, Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}}))
	mu.Lock()
	clear(heads) // the pushes' own
	mu.Unlock()

	_, err = mergeOneUnpushed(context.Background(), mustTarget(t, repo, "v1"), []string{amd, armIndex}, anon)
	assert.NilError(t, err)
	mu.Lock()
	defer mu.Unlock()
	for d, n := range heads {
		assert.Check(t, n == 1, "%s asked about %d times", d, n)
	}
	sharedDigest, err := shared.Digest()
	assert.NilError(t, err)
	assert.Check(t, is.Equal(heads[sharedDigest.String()], 1))
	amdConfig, err := readImage(t, repo+"@"+amd).ConfigName()
	assert.NilError(t, err)
	assert.Check(t, is.Equal(heads[amdConfig.String()], 0), "the config of %s, downloaded, asked about again", amd)
	armConfig, err := readImage(t, repo+"@"+arm).ConfigName()
	assert.NilError(t, err)
	assert.Check(t, is.Equal(heads[armConfig.String()], 1), "the config of %s, not downloaded, not asked about", arm)
}

func readImage(t *testing.T, ref string) v1.Image {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	assert.NilError(t, err)
	img, err := remote.Image(r, remote.WithAuthFromKeychain(noCreds))
	assert.NilError(t, err)
	return img
}

// Indexes that disagree on an annotation are warned of once per key; an
// image given alone, which has no index annotations, is one line saying
// the merged index keeps none, not a disagreement on every key.
func TestAgreedAnnotations(t *testing.T) {
	amd := v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}
	arm := v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}
	index := func(d v1.Descriptor, annots map[string]string) mergeInput {
		return mergeInput{digest: "sha256:i", index: true, manifests: []v1.Descriptor{d}, annots: annots}
	}
	same := map[string]string{"org.opencontainers.image.title": "hello", "org.nixery-action.nixpkgs": "path:/n"}
	got, warnings := agreed([]mergeInput{index(amd, same), index(arm, same)})
	assert.DeepEqual(t, got, same)
	assert.Check(t, is.Len(warnings, 0))

	other := map[string]string{"org.opencontainers.image.title": "hello", "org.nixery-action.nixpkgs": "path:/m"}
	got, warnings = agreed([]mergeInput{index(amd, same), index(arm, other)})
	assert.DeepEqual(t, got, map[string]string{"org.opencontainers.image.title": "hello"})
	assert.Assert(t, is.Len(warnings, 1))
	assert.Check(t, is.Contains(warnings[0], "disagree on org.nixery-action.nixpkgs (linux/amd64: path:/n, linux/arm64: path:/m)"))

	alone := mergeInput{digest: "sha256:a", manifests: []v1.Descriptor{arm}}
	got, warnings = agreed([]mergeInput{index(amd, same), alone})
	assert.Check(t, is.Len(got, 0))
	assert.Assert(t, is.Len(warnings, 1), "%q", warnings)
	assert.Check(t, is.Contains(warnings[0], "sha256:a (linux/arm64) given alone"))
	assert.Check(t, !strings.Contains(warnings[0], "disagree"))
}
