//go:build integration

package publish

import (
	"context"
	"encoding/json"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"gotest.tools/v3/assert"

	"github.com/nixery-action/nixery-action/internal/testenv"
	"github.com/nixery-action/nixery-action/pkg/referrer"
	"github.com/nixery-action/nixery-action/pkg/registry"
)

// A registry that needs credentials gets the referrers with the push's
// own credentials, into the fallback tag skopeo reads; the wrong ones
// fail naming the registry, never showing the password.
func TestRegistryAttachReferrers(t *testing.T) {
	testenv.Require(t, "docker-registry", "skopeo")
	host, user, password := testenv.StartAuthRegistry(t)
	ctx := context.Background()
	idx := testIndex(t, "referrers", amd64, arm64)
	subject, imgs, want := referrers(t, idx)

	reg := NewRegistry(mustTarget(t, host+"/referrers/good", "v1"), Options{Options: registry.Options{Credentials: registry.Credentials{Username: user, Password: password}}})
	_, err := reg.Write(ctx, idx, nil)
	assert.NilError(t, err)
	assert.Check(t, !reg.Attached(ctx, subject, imgs...), "nothing is attached yet")
	assert.NilError(t, reg.AttachReferrers(ctx, subject, imgs[:1]...))
	assert.Check(t, reg.Attached(ctx, subject, imgs[0]))
	assert.Check(t, !reg.Attached(ctx, subject, imgs...), "only the first is attached")
	assert.NilError(t, reg.AttachReferrers(ctx, subject, imgs...))
	assert.Check(t, reg.Attached(ctx, subject, imgs...))
	assert.NilError(t, reg.AttachReferrers(ctx, subject, imgs...)) // again: no change
	reg.Close()

	raw := testenv.Run(t, "skopeo", "inspect", "--tls-verify=false", "--creds", user+":"+password, "--raw",
		"docker://"+host+"/referrers/good:sha256-"+subject.Digest.Hex)
	var listed v1.IndexManifest
	assert.NilError(t, json.Unmarshal([]byte(raw), &listed))
	var got []string
	for _, m := range listed.Manifests {
		got = append(got, m.Digest.String())
	}
	sort.Strings(got)
	assert.DeepEqual(t, got, want)

	bad := NewRegistry(mustTarget(t, host+"/referrers/good", "v1"), Options{Options: registry.Options{Credentials: registry.Credentials{Username: user, Password: password + "-wrong"}, Backoff: fastBackoff}})
	defer bad.Close()
	err = bad.AttachReferrers(ctx, subject, imgs...)
	assert.ErrorContains(t, err, "authentication failed for registry "+host)
	assert.Assert(t, !strings.Contains(err.Error(), password))
}

// pushReferrer tells a referrer stored but not listed by the registry
// library's own words: a registry without the referrers API (the CNCF
// one on loopback) must still produce them, with the project's options.
func TestLibraryNoFallbackWords(t *testing.T) {
	testenv.Require(t, "docker-registry")
	host := testenv.StartRegistry(t)
	ctx := context.Background()
	idx := testIndex(t, "nofallback", amd64)
	target := mustTarget(t, host+"/referrers/words")
	_, err := Push(ctx, target, idx, Options{})
	assert.NilError(t, err)
	_, imgs, _ := referrers(t, idx)

	l, err := Options{}.Credentials.Login(ctx, target.Repo, true)
	assert.NilError(t, err)
	_, err = pushArtifact(ctx, target.Repo, imgs[0], Options{}.remoteOptions(ctx, l)...)
	assert.ErrorContains(t, err, noFallback)
}

// A push cut short between a referrer's manifest and the fallback tag
// (here: the tag written back without it) is repaired by pushing again,
// although the registry has the manifest already.
func TestAttachRepairsFallbackTag(t *testing.T) {
	reg := testenv.StartRegistry(t)
	repo, err := name.NewRepository(reg+"/repair", name.Insecure)
	assert.NilError(t, err)
	desc := pushRandom(t, repo.Tag("v1"))
	r, err := referrer.New(*desc, referrer.CycloneDX([]byte(`{"bomFormat":"CycloneDX"}`)), time.Unix(1, 0))
	assert.NilError(t, err)
	ctx := context.Background()
	dest := NewRegistry(Target{Repo: repo}, Options{})
	assert.NilError(t, dest.AttachReferrers(ctx, *desc, r))
	d, err := r.Digest()
	assert.NilError(t, err)

	listed := func() []v1.Descriptor {
		idx, err := remote.Referrers(repo.Digest(desc.Digest.String()))
		assert.NilError(t, err)
		im, err := idx.IndexManifest()
		assert.NilError(t, err)
		return im.Manifests
	}
	assert.Equal(t, len(listed()), 1)
	fallback := repo.Tag("sha256-" + desc.Digest.Hex)
	assert.NilError(t, remote.WriteIndex(fallback, mutate.IndexMediaType(empty.Index, types.OCIImageIndex)))
	assert.Equal(t, len(listed()), 0)

	assert.NilError(t, dest.AttachReferrers(ctx, *desc, r))
	got := listed()
	assert.Equal(t, len(got), 1)
	assert.Equal(t, got[0].Digest, d)
	assert.Equal(t, got[0].ArtifactType, referrer.CycloneDXMediaType)
}
