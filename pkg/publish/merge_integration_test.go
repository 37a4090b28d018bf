//go:build integration

package publish

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/nixery-action/nixery-action/internal/testenv"
	"github.com/nixery-action/nixery-action/pkg/registry"
)

var anonMerge = Options{Options: registry.Options{Credentials: registry.Credentials{Keychain: noCreds}}}

// indexOver pushes to repo an index over the image digests given, each
// for its platform, with the index annotations annots, and returns its
// digest.
func indexOver(t *testing.T, repo string, annots map[string]string, images map[string]v1.Platform) string {
	t.Helper()
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for d, p := range images {
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: readImage(t, repo+"@"+d), Descriptor: v1.Descriptor{MediaType: types.OCIManifestSchema1, Platform: &p}})
	}
	return pushIndex(t, repo, mutate.Annotations(idx, annots).(v1.ImageIndex))
}

var (
	linuxAMD = v1.Platform{OS: "linux", Architecture: "amd64"}
	linuxARM = v1.Platform{OS: "linux", Architecture: "arm64"}
)

// Images whose indexes disagree on an annotation merge, and each key they
// disagree on is one warning naming each platform's value (a flake URL's
// credentials redacted); the keys they agree on stay in the index.
func TestMergeWarnsOfDisagreement(t *testing.T) {
	repo := testenv.StartRegistry(t) + "/merge/warn"
	amd := pushImage(t, repo, linuxAMD)
	arm := pushImage(t, repo, linuxARM)
	amdIndex := indexOver(t, repo, map[string]string{"org.nixery-action.nixpkgs": "https://user:s3cret@example.com/np1.tar.gz", "org.example.same": "yes"}, map[string]v1.Platform{amd: linuxAMD})
	armIndex := indexOver(t, repo, map[string]string{"org.nixery-action.nixpkgs": "path:/np2?narHash=x", "org.example.same": "yes", "org.example.arm": "only"}, map[string]v1.Platform{arm: linuxARM})

	var warnings []string
	var platforms []string
	o := anonMerge
	o.OnWarning = func(l string) { warnings = append(warnings, l) }
	o.OnMerging = func(p []string) { platforms = p }
	res, err := mergeOne(context.Background(), mustTarget(t, repo, "v1"), []string{amdIndex, armIndex}, o)
	assert.NilError(t, err)
	assert.DeepEqual(t, platforms, []string{"linux/amd64", "linux/arm64"})
	assert.DeepEqual(t, warnings, []string{
		"warning: the images disagree on org.example.arm (linux/amd64: not set, linux/arm64: only): the index leaves it out; build every platform from the same sources to get one build's index",
		"warning: the images disagree on org.nixery-action.nixpkgs (linux/amd64: https://REDACTED@example.com/np1.tar.gz, linux/arm64: path:/np2?narHash=x): the index leaves it out; build every platform from the same sources to get one build's index",
	})
	idx := readIndex(t, repo+"@"+res.Digest)
	assert.DeepEqual(t, idx.Annotations, map[string]string{"org.example.same": "yes"})
}

// The same linuxAMD image given as its index and as its manifest is merged
// once (the index's annotations kept, no warning); two different images
// for one platform are refused naming both, in a dry run too, which
// says nothing of pushing.
func TestMergeSameImageTwice(t *testing.T) {
	repo := testenv.StartRegistry(t) + "/merge/twice"
	amd := pushImage(t, repo, linuxAMD)
	otherAmd := pushImage(t, repo, linuxAMD)
	arm := pushImage(t, repo, linuxARM)
	annots := map[string]string{"org.example.built-by": "nixery"}
	amdIndex := indexOver(t, repo, annots, map[string]v1.Platform{amd: linuxAMD})
	armIndex := indexOver(t, repo, annots, map[string]v1.Platform{arm: linuxARM})

	for _, digests := range [][]string{{amdIndex, amd, armIndex}, {amd, amdIndex, armIndex}} {
		var warnings, platforms []string
		o := anonMerge
		o.OnWarning = func(l string) { warnings = append(warnings, l) }
		o.OnMerging = func(p []string) { platforms = p }
		res, err := mergeOneUnpushed(context.Background(), mustTarget(t, repo, "v1"), digests, o)
		assert.NilError(t, err)
		assert.Check(t, is.Len(res.Manifests, 2))
		assert.Check(t, is.Len(platforms, 2))
		assert.Check(t, is.Len(warnings, 0), "%q", warnings)
		pushed, err := mergeOne(context.Background(), mustTarget(t, repo, "v1"), digests, anonMerge)
		assert.NilError(t, err)
		assert.DeepEqual(t, readIndex(t, repo+"@"+pushed.Digest).Annotations, annots)
	}

	for _, merge := range []func(context.Context, Target, []string, Options) (*Result, error){mergeOne, mergeOneUnpushed} {
		_, err := merge(context.Background(), mustTarget(t, repo, "v2"), []string{amdIndex, otherAmd, armIndex}, anonMerge)
		assert.Check(t, is.ErrorContains(err, "two images for linux/amd64 among the digests to merge: "+amd+" (in index "+amdIndex+") and "+otherAmd))
		assert.Check(t, err != nil && !strings.Contains(err.Error(), "push to"), err)
	}
}

// A platform manifest gone from the registry fails the merge naming the
// image, its platform and its index, and saying to build that platform
// again; a read is not called a push.
func TestMergeReadFailureNamesImage(t *testing.T) {
	host := testenv.StartRegistry(t)
	repo := host + "/merge/gone"
	amd := pushImage(t, repo, linuxAMD)
	arm := pushImage(t, repo, linuxARM)
	armIndex := indexOver(t, repo, nil, map[string]v1.Platform{arm: linuxARM})
	req, err := http.NewRequest(http.MethodDelete, "http://"+host+"/v2/merge/gone/manifests/"+arm, nil)
	assert.NilError(t, err)
	resp, err := http.DefaultClient.Do(req)
	assert.NilError(t, err)
	resp.Body.Close()
	assert.Equal(t, resp.StatusCode, http.StatusAccepted)

	for _, merge := range []func(context.Context, Target, []string, Options) (*Result, error){mergeOne, mergeOneUnpushed} {
		_, err := merge(context.Background(), mustTarget(t, repo, "v1"), []string{amd, armIndex}, anonMerge)
		assert.Check(t, is.ErrorContains(err, "read the linux/arm64 image "+arm+" (in index "+armIndex+") from "+repo+": registry answered 404 Not Found"))
		assert.Check(t, is.ErrorContains(err, ": run the linux/arm64 build again (it pushes its image again) and merge the digest it prints"))
		assert.Check(t, err != nil && !strings.Contains(err.Error(), "push to"), err)
		var terr *transport.Error
		assert.Check(t, errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound, "%v", err)
	}
}

// A tag PUT that fails after another was written says which tags now
// name the merged index and which do not.
func TestMergeTagFailureNamesTags(t *testing.T) {
	host := testenv.StartRegistry(t)
	proxy := testenv.Front(t, host, func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodPut || !strings.HasSuffix(r.URL.Path, "/manifests/latest") {
			return false
		}
		testenv.RegistryError(w, http.StatusBadRequest, "TAG_INVALID", "refused for the test")
		return true
	})
	repo := proxy + "/merge/tags"
	amd := pushImage(t, repo, linuxAMD)
	arm := pushImage(t, repo, linuxARM)

	res, err := mergeOneUnpushed(context.Background(), mustTarget(t, repo, "v9", "latest"), []string{amd, arm}, anonMerge)
	assert.NilError(t, err)
	_, err = mergeOne(context.Background(), mustTarget(t, repo, "v9", "latest"), []string{amd, arm}, anonMerge)
	assert.ErrorContains(t, err, "; tags moved: v9; not moved: latest (run the merge again)")
	tag, err := name.NewTag(repo+":v9", name.Insecure)
	assert.NilError(t, err)
	d, err := remote.Head(tag, remote.WithAuthFromKeychain(noCreds))
	assert.NilError(t, err)
	assert.Equal(t, d.Digest.String(), res.Digest)

	// The first tag refused: none moved, and the error says no more.
	_, err = mergeOne(context.Background(), mustTarget(t, repo, "latest", "v10"), []string{amd, arm}, anonMerge)
	assert.ErrorContains(t, err, "TAG_INVALID")
	assert.Check(t, !strings.Contains(err.Error(), "tags moved"), err)
}

func readIndex(t *testing.T, ref string) *v1.IndexManifest {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	assert.NilError(t, err)
	idx, err := remote.Index(r, remote.WithAuthFromKeychain(noCreds))
	assert.NilError(t, err)
	m, err := idx.IndexManifest()
	assert.NilError(t, err)
	return m
}
