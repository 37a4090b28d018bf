//go:build integration

package publish

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
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
	_, err = pushArtifact(ctx, target.Repo, imgs[0], nil, Options{}.remoteOptions(ctx, l)...)
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

// Builds that attach to one image at once (a push and a tag of one
// commit) each find their referrers listed at the end, and each says so:
// a registry without the referrers API lists them in one tag, read,
// extended and written back by each build, so a write that lost to
// another's must be seen and merged again. The proxy holds each write of
// the tag a while: every build reads the tag before any writes it back,
// and the last write alone would win.
func TestAttachConcurrentlyListsEveryReferrer(t *testing.T) {
	testenv.Require(t, "docker-registry")
	host := slowFallbackWrites(t, testenv.StartRegistry(t), 100*time.Millisecond)
	repo, err := name.NewRepository(host+"/race", name.Insecure)
	assert.NilError(t, err)
	subject := pushRandom(t, repo.Tag("v1"))
	ctx := context.Background()

	const builds = 8
	sbom, err := referrer.New(*subject, referrer.CycloneDX([]byte(`{"bomFormat":"CycloneDX"}`)), time.Unix(1, 0))
	assert.NilError(t, err)
	want := map[v1.Hash]bool{}
	attach := make([][]v1.Image, builds)
	for i := range attach {
		// The same SBOM, a provenance of its own (each run has its id).
		prov, err := referrer.New(*subject, referrer.InToto([]byte(fmt.Sprintf(`{"run":%d}`, i)), "https://slsa.dev/provenance/v1"), time.Unix(1, 0))
		assert.NilError(t, err)
		attach[i] = []v1.Image{sbom, prov}
		for _, img := range attach[i] {
			d, err := img.Digest()
			assert.NilError(t, err)
			want[d] = true
		}
	}
	errs := make([]error, builds)
	var wg sync.WaitGroup
	for i := range builds {
		wg.Go(func() {
			dest := NewRegistry(Target{Repo: repo}, Options{})
			defer dest.Close()
			errs[i] = dest.AttachReferrers(ctx, *subject, attach[i]...)
		})
	}
	wg.Wait()
	for i, err := range errs {
		assert.Check(t, err, "build %d", i)
	}

	idx, err := remote.Referrers(repo.Digest(subject.Digest.String()))
	assert.NilError(t, err)
	im, err := idx.IndexManifest()
	assert.NilError(t, err)
	got := map[v1.Hash]bool{}
	var order []string
	for _, m := range im.Manifests {
		got[m.Digest] = true
		order = append(order, m.Digest.String())
	}
	assert.DeepEqual(t, got, want)
	assert.Check(t, sort.StringsAreSorted(order), "the tag lists by digest, whoever wrote last")
	for _, i := range []int{0, builds - 1} {
		dest := NewRegistry(Target{Repo: repo}, Options{})
		assert.Check(t, dest.Attached(ctx, *subject, attach[i]...), "build %d", i)
		dest.Close()
	}
}

// A build whose referrers keep vanishing from the fallback tag (here: a
// proxy that answers its writes but never passes them on) does not say
// they are attached: it fails naming the tag and what to do.
func TestAttachFailsWhenTheTagKeepsLosingThem(t *testing.T) {
	testenv.Require(t, "docker-registry")
	host := fallbackWrites(t, testenv.StartRegistry(t), 0, true)
	idx := testIndex(t, "lost", amd64)
	subject, imgs, _ := referrers(t, idx)
	dest := NewRegistry(mustTarget(t, host+"/referrers/lost", "v1"), Options{})
	defer dest.Close()
	ctx := context.Background()
	_, err := dest.Write(ctx, idx, Attachments{subject.Digest: imgs})
	var aerr *AttachError
	assert.Assert(t, errors.As(err, &aerr), "%v", err)
	assert.ErrorContains(t, err, fmt.Sprintf("the referrers tag %s/referrers/lost:sha256-%s lost 2 of this build's referrers", host, subject.Digest.Hex))
	assert.ErrorContains(t, err, "run again when the other builds of this image are done")
	assert.Check(t, !dest.Attached(ctx, subject, imgs...))
	_, found, err := dest.head(ctx, dest.target.Tags[0])
	assert.NilError(t, err)
	assert.Check(t, !found, "no tag names the image")
}

// slowFallbackWrites proxies registry (host:port), holding each write of
// a referrers fallback tag (sha256-<hex>) for d, and returns its host:port.
func slowFallbackWrites(t *testing.T, registry string, d time.Duration) string {
	return fallbackWrites(t, registry, d, false)
}

// fallbackWrites proxies registry (host:port), holding each write of a
// referrers fallback tag (sha256-<hex>) for hold, and with drop answering
// it as done without passing it on; it returns the proxy's host:port.
func fallbackWrites(t *testing.T, registry string, hold time.Duration, drop bool) string {
	t.Helper()
	return testenv.Front(t, registry, func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodPut || !strings.Contains(r.URL.Path, "/manifests/sha256-") {
			return false
		}
		time.Sleep(hold)
		if drop {
			w.WriteHeader(http.StatusCreated)
		}
		return drop
	})
}

// A registry without the referrers API is not asked for it again by the
// later rounds of the fallback tag, which read the tag alone: once the
// tag is written, the API is asked no more.
func TestAttachAsksReferrersAPIOnce(t *testing.T) {
	testenv.Require(t, "docker-registry")
	up, err := url.Parse("http://" + testenv.StartRegistry(t))
	assert.NilError(t, err)
	proxy := httputil.NewSingleHostReverseProxy(up)
	var written atomic.Bool
	var askedAfter atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.Contains(r.URL.Path, "/referrers/sha256:") && written.Load():
			askedAfter.Add(1)
		case r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/manifests/sha256-"):
			defer written.Store(true)
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	idx := testIndex(t, "once", amd64)
	subject, imgs, _ := referrers(t, idx)
	dest := NewRegistry(mustTarget(t, host+"/referrers/once", "v1"), Options{})
	defer dest.Close()
	_, err = dest.Write(context.Background(), idx, Attachments{subject.Digest: imgs})
	assert.NilError(t, err)
	assert.Check(t, written.Load(), "no fallback tag was written")
	assert.Check(t, askedAfter.Load() == 0, "the referrers API was asked %d times after the tag was written", askedAfter.Load())
}
