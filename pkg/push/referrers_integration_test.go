//go:build integration

package push

import (
	"context"
	"encoding/json"
	"sort"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"gotest.tools/v3/assert"

	"github.com/nixery-action/nixery-action/internal/testenv"
	"github.com/nixery-action/nixery-action/pkg/sbom"
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

	reg := NewRegistry(mustTarget(t, host+"/referrers/good", "v1"), Options{Credentials: Credentials{Username: user, Password: password}})
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

	bad := NewRegistry(mustTarget(t, host+"/referrers/good", "v1"), Options{Credentials: Credentials{Username: user, Password: password + "-wrong"}, Backoff: fastBackoff})
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

	l, err := Options{}.Credentials.resolve(target.Repo)
	assert.NilError(t, err)
	_, err = sbom.Push(ctx, target.Repo, imgs[0], Options{}.remoteOptions(ctx, l)...)
	assert.ErrorContains(t, err, noFallback)
}
