//go:build integration

package publish

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/nixery-action/nixery-action/internal/testenv"
	"github.com/nixery-action/nixery-action/pkg/referrer"
	"github.com/nixery-action/nixery-action/pkg/registry"
)

// proxyTo starts a proxy to the registry host that logs each request in
// log and answers those refuse picks itself (403 DENIED); it returns the
// proxy's host.
func proxyTo(t *testing.T, host string, log *requestLog, refuse func(*http.Request) bool) string {
	t.Helper()
	return testenv.Front(t, host, func(w http.ResponseWriter, r *http.Request) bool {
		log.add(r)
		if refuse == nil || !refuse(r) {
			return false
		}
		testenv.RegistryError(w, http.StatusForbidden, "DENIED", "refused for the test")
		return true
	})
}

// pushWithReferrer pushes an image of platform p to repo, attaches an
// SBOM to it as a build does, and returns the image's and the SBOM's
// digests.
func pushWithReferrer(t *testing.T, repo string, p v1.Platform) (image, sbom string) {
	t.Helper()
	image = pushImage(t, repo, p)
	desc, err := partial.Descriptor(readImage(t, repo+"@"+image))
	assert.NilError(t, err)
	r, err := referrer.New(*desc, referrer.CycloneDX([]byte(`{"bomFormat":"CycloneDX","platform":"`+PlatformName(p)+`"}`)), time.Unix(1, 0))
	assert.NilError(t, err)
	reg := NewRegistry(mustTarget(t, repo), anonMerge)
	defer reg.Close()
	assert.NilError(t, reg.AttachReferrers(context.Background(), *desc, r))
	d, err := r.Digest()
	assert.NilError(t, err)
	return image, d.String()
}

// headDigest is the digest ref names in its registry.
func headDigest(t *testing.T, ref string) string {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	assert.NilError(t, err)
	d, err := remote.Head(r, remote.WithAuthFromKeychain(noCreds))
	assert.NilError(t, err, ref)
	return d.Digest.String()
}

// readerOf is the project's reader of repo, anonymous.
func readerOf(t *testing.T, repo string) *registry.Reader {
	t.Helper()
	r, err := name.NewRepository(repo, name.Insecure)
	assert.NilError(t, err)
	l, err := anonMerge.Credentials.Login(context.Background(), r, true)
	assert.NilError(t, err)
	rd, err := registry.NewReader(context.Background(), r, l, anonMerge.Options)
	assert.NilError(t, err)
	return rd
}

// Tags naming three repositories (a, where the per-platform images are;
// b on its registry; c on another) get one index, the same bytes under
// every tag. b and c hold every platform manifest, config and layer
// (pulled and checked here) and list each image's SBOM, through the
// fallback tag the CNCF registry needs. b's blobs are mounted from a:
// a's layers are downloaded once each, for c, and b is sent no blob.
// Running the merge again changes nothing.
func TestMergeIntoOtherRepositories(t *testing.T) {
	testenv.Require(t, "docker-registry")
	var log requestLog
	reg1 := proxyTo(t, testenv.StartRegistry(t), &log, nil)
	reg2 := testenv.StartRegistry(t)
	a, b, c := reg1+"/merge/a", reg1+"/merge/b", reg2+"/merge/c"
	amd, amdSBOM := pushWithReferrer(t, a, linuxAMD)
	arm, armSBOM := pushWithReferrer(t, a, linuxARM)
	sboms := map[string]string{amd: amdSBOM, arm: armSBOM}

	tags := []string{a + ":v1", b + ":v1", b + ":stable", c + ":v1"}
	targets, err := NewTargets("", tags, false)
	assert.NilError(t, err)
	assert.Assert(t, is.Len(targets, 3))
	log.reqs = nil
	res, err := Merge(context.Background(), targets, []string{amd, arm}, anonMerge, true)
	assert.NilError(t, err)

	assert.DeepEqual(t, res.Repositories, []RepositoryResult{
		{Image: a, Reference: a + "@" + res.Digest, Tags: []string{"v1"}},
		{Image: b, Reference: b + "@" + res.Digest, Tags: []string{"v1", "stable"}},
		{Image: c, Reference: c + "@" + res.Digest, Tags: []string{"v1"}},
	})
	for _, tag := range tags {
		assert.Check(t, is.Equal(headDigest(t, tag), res.Digest), tag)
	}
	for _, repo := range []string{b, c} {
		for _, m := range res.Manifests {
			img := readImage(t, repo+"@"+m.Digest)
			_, err := img.ConfigFile()
			assert.NilError(t, err)
			layers, err := img.Layers()
			assert.NilError(t, err)
			for _, l := range layers {
				rc, err := l.Compressed() // checked against its digest as read
				assert.NilError(t, err)
				_, err = io.Copy(io.Discard, rc)
				assert.NilError(t, err, "%s layer of %s", repo, m.Digest)
				rc.Close()
			}
			subject, err := v1.NewHash(m.Digest)
			assert.NilError(t, err)
			rd := readerOf(t, repo)
			listed, api, err := rd.Referrers(context.Background(), subject)
			assert.NilError(t, err)
			assert.Check(t, !api, "the CNCF registry 2.x has no referrers API: the fallback tag lists them")
			assert.Assert(t, is.Len(listed.Manifests, 1), "%s: the referrers of %s", repo, m.Digest)
			assert.Check(t, is.Equal(listed.Manifests[0].Digest.String(), sboms[m.Digest]))
			sbom, err := v1.NewHash(sboms[m.Digest])
			assert.NilError(t, err)
			assert.Check(t, rd.ManifestExists(context.Background(), sbom), "%s lacks the SBOM %s", repo, sbom)
		}
	}

	gets := map[string]int{}
	for _, r := range log.list() {
		if strings.HasPrefix(r, "GET /v2/merge/a/blobs/") {
			gets[strings.TrimPrefix(r, "GET /v2/merge/a/blobs/")]++
		}
		assert.Check(t, !strings.HasPrefix(r, "PATCH /v2/merge/b/blobs/uploads/"), "a blob was uploaded to b, not mounted: %s", r)
	}
	for _, m := range res.Manifests {
		for _, l := range m.Layers {
			assert.Check(t, is.Equal(gets[l.Digest], 1), "layer %s of %s: downloaded for c only", l.Digest, m.Platform)
		}
	}

	again, err := Merge(context.Background(), targets, []string{amd, arm}, anonMerge, true)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(again.Digest, res.Digest))
}

// A dry run copies nothing and writes nothing, and lists every
// repository as a build's dry run does.
func TestMergeIntoOtherRepositoriesUnpushed(t *testing.T) {
	testenv.Require(t, "docker-registry")
	reg1, reg2 := testenv.StartRegistry(t), testenv.StartRegistry(t)
	var log requestLog
	reg2 = proxyTo(t, reg2, &log, nil)
	a, c := reg1+"/merge/a", reg2+"/merge/c"
	amd := pushImage(t, a, linuxAMD)
	targets, err := NewTargets(a, []string{"v1", c + ":v2"}, false)
	assert.NilError(t, err)
	res, err := Merge(context.Background(), targets, []string{amd}, anonMerge, false)
	assert.NilError(t, err)
	assert.Check(t, !res.Pushed)
	assert.DeepEqual(t, res.Repositories, []RepositoryResult{{Image: a, Tags: []string{"v1"}}, {Image: c, Tags: []string{"v2"}}})
	assert.Check(t, is.Len(log.list(), 0), "c was asked: %v", log.list())
}

// A failure in the second repository (here its registry refuses the
// referrers' fallback tag, which comes after the images and before the
// tags) stops there: the error names it, says the first repository's
// tags moved and its own did not, and no tag there names the index.
func TestMergeIntoOtherRepositoryFails(t *testing.T) {
	testenv.Require(t, "docker-registry")
	reg1 := testenv.StartRegistry(t)
	var log requestLog
	reg2 := proxyTo(t, testenv.StartRegistry(t), &log, func(r *http.Request) bool {
		return r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/manifests/sha256-")
	})
	a, c, d := reg1+"/merge/a", reg2+"/merge/c", reg1+"/merge/d"
	amd, _ := pushWithReferrer(t, a, linuxAMD)
	targets, err := NewTargets(a, []string{"v1", c + ":v1", c + ":v2", d + ":v1"}, false)
	assert.NilError(t, err)
	o := anonMerge
	o.Backoff = fastBackoff
	_, err = Merge(context.Background(), targets, []string{amd}, o, true)
	assert.ErrorContains(t, err, c)
	assert.ErrorContains(t, err, "DENIED")
	assert.ErrorContains(t, err, "; tags moved: "+a+":v1; not moved: "+c+":v1, "+c+":v2, "+d+":v1 (run the merge again)")
	for _, tag := range []string{c + ":v1", c + ":v2", d + ":v1"} {
		r, err := name.ParseReference(tag, name.Insecure)
		assert.NilError(t, err)
		_, err = remote.Head(r, remote.WithAuthFromKeychain(noCreds))
		assert.Check(t, err != nil, "%s names an image whose referrers are missing", tag)
	}
}

// A layer the source registry sends wrong (other bytes of its size, or
// more bytes than its size) when read for a repository on another
// registry fails the merge there, naming the blob and the repository,
// and tags nothing there: a copy is checked against its digest.
func TestMergeIntoOtherRegistryChecksBlobs(t *testing.T) {
	testenv.Require(t, "docker-registry")
	for _, tc := range []struct {
		name   string
		mangle func([]byte) []byte
		want   string
	}{
		{"other bytes", func(b []byte) []byte { return bytes.Repeat([]byte{'x'}, len(b)) }, "the registry sent content whose digest is"},
		{"more bytes", func(b []byte) []byte { return append(b, "more"...) }, "the registry sent more than its"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			host := testenv.StartRegistry(t)
			target, err := url.Parse("http://" + host)
			assert.NilError(t, err)
			upstream := httputil.NewSingleHostReverseProxy(target)
			var layer string // the blob to mangle
			upstream.ModifyResponse = func(resp *http.Response) error {
				if resp.Request.Method != http.MethodGet || layer == "" || !strings.HasSuffix(resp.Request.URL.Path, "/blobs/"+layer) {
					return nil
				}
				body, err := io.ReadAll(resp.Body)
				if err != nil {
					return err
				}
				resp.Body.Close()
				body = tc.mangle(body)
				resp.Body = io.NopCloser(bytes.NewReader(body))
				resp.ContentLength = -1
				resp.Header.Del("Content-Length")
				return nil
			}
			srv := httptest.NewServer(upstream)
			t.Cleanup(srv.Close)
			a := strings.TrimPrefix(srv.URL, "http://") + "/merge/a"
			c := testenv.StartRegistry(t) + "/merge/c"
			amd := pushImage(t, a, linuxAMD)
			layers, err := readImage(t, a+"@"+amd).Manifest()
			assert.NilError(t, err)
			layer = layers.Layers[0].Digest.String()

			targets, err := NewTargets(a, []string{"v1", c + ":v1"}, false)
			assert.NilError(t, err)
			o := anonMerge
			o.Backoff = fastBackoff
			_, err = Merge(context.Background(), targets, []string{amd}, o, true)
			assert.ErrorContains(t, err, c)
			assert.ErrorContains(t, err, c+": read the blob "+layer+" from "+a+": "+tc.want)
			assert.Check(t, !strings.Contains(err.Error(), "Patch"), err)
			assert.ErrorContains(t, err, "; not moved: "+c+":v1 (run the merge again)")
			r, err := name.ParseReference(c+":v1", name.Insecure)
			assert.NilError(t, err)
			_, err = remote.Head(r, remote.WithAuthFromKeychain(noCreds))
			assert.Check(t, err != nil, "%s:v1 names an image with a mangled layer", c)
		})
	}
}

// What is to be copied is read before any tag moves: a referrer the
// source lists but no longer holds fails the merge naming it, with no
// tag written in either repository.
func TestMergeIntoOtherRepositoryReadsFirst(t *testing.T) {
	testenv.Require(t, "docker-registry")
	host := testenv.StartRegistry(t)
	a, b := host+"/merge/a", host+"/merge/b"
	amd, sbom := pushWithReferrer(t, a, linuxAMD)
	req, err := http.NewRequest(http.MethodDelete, "http://"+host+"/v2/merge/a/manifests/"+sbom, nil)
	assert.NilError(t, err)
	resp, err := http.DefaultClient.Do(req)
	assert.NilError(t, err)
	resp.Body.Close()
	assert.Equal(t, resp.StatusCode, http.StatusAccepted)

	targets, err := NewTargets(a, []string{"v1", b + ":v1"}, false)
	assert.NilError(t, err)
	_, err = Merge(context.Background(), targets, []string{amd}, anonMerge, true)
	assert.ErrorContains(t, err, "the referrer "+sbom+" of the linux/amd64 image")
	assert.ErrorContains(t, err, a)
	assert.Check(t, !strings.Contains(err.Error(), "tags moved"), err)
	for _, tag := range []string{a + ":v1", b + ":v1"} {
		r, err := name.ParseReference(tag, name.Insecure)
		assert.NilError(t, err)
		_, err = remote.Head(r, remote.WithAuthFromKeychain(noCreds))
		assert.Check(t, err != nil, "%s was written", tag)
	}
}

// A referrers list is no digest's: a referrer the source lists under an
// image whose subject is another image is not copied as the first one's
// (a warning says so), while the right ones are.
func TestMergeCopiesOnlyTrueReferrers(t *testing.T) {
	testenv.Require(t, "docker-registry")
	reg1, reg2 := testenv.StartRegistry(t), testenv.StartRegistry(t)
	a, c := reg1+"/merge/a", reg2+"/merge/c"
	amd, amdSBOM := pushWithReferrer(t, a, linuxAMD)
	arm, armSBOM := pushWithReferrer(t, a, linuxARM)

	// a's fallback tag for amd64 lists arm64's SBOM too.
	amdHash, err := v1.NewHash(amd)
	assert.NilError(t, err)
	listed, _, err := readerOf(t, a).Referrers(context.Background(), amdHash)
	assert.NilError(t, err)
	armDesc, err := partial.Descriptor(readImage(t, a+"@"+armSBOM))
	assert.NilError(t, err)
	listed.Manifests = append(listed.Manifests, *armDesc)
	raw, err := json.Marshal(listed)
	assert.NilError(t, err)
	fallback, err := name.NewTag(a+":sha256-"+amdHash.Hex, name.Insecure)
	assert.NilError(t, err)
	assert.NilError(t, remote.Put(fallback, putAsIs{raw}, remote.WithAuthFromKeychain(noCreds)))

	targets, err := NewTargets("", []string{a + ":v1", c + ":v1"}, false)
	assert.NilError(t, err)
	var warnings []string
	o := anonMerge
	o.OnWarning = func(w string) { warnings = append(warnings, w) }
	_, err = Merge(context.Background(), targets, []string{amd, arm}, o, true)
	assert.NilError(t, err)
	got, _, err := readerOf(t, c).Referrers(context.Background(), amdHash)
	assert.NilError(t, err)
	var digests []string
	for _, m := range got.Manifests {
		digests = append(digests, m.Digest.String())
	}
	assert.DeepEqual(t, digests, []string{amdSBOM})
	assert.Assert(t, is.Len(warnings, 1), "%v", warnings)
	assert.Check(t, is.Contains(warnings[0], armSBOM))
}

// putAsIs is an index manifest put as it is.
type putAsIs struct{ raw []byte }

func (r putAsIs) RawManifest() ([]byte, error)        { return r.raw, nil }
func (r putAsIs) MediaType() (types.MediaType, error) { return types.OCIImageIndex, nil }

// Two repositories on a registry other than the source's: the first is
// sent the blobs, the second mounts them from it (as a build's do), and
// each blob and platform manifest is read from the source once.
func TestMergeMountsFromTheFirstCopy(t *testing.T) {
	testenv.Require(t, "docker-registry")
	var log1, log2 requestLog
	reg1 := proxyTo(t, testenv.StartRegistry(t), &log1, nil)
	reg2 := proxyTo(t, testenv.StartRegistry(t), &log2, nil)
	a, c, d := reg1+"/merge/a", reg2+"/merge/c", reg2+"/merge/d"
	amd, _ := pushWithReferrer(t, a, linuxAMD)
	arm, _ := pushWithReferrer(t, a, linuxARM)
	log1.reqs, log2.reqs = nil, nil
	targets, err := NewTargets("", []string{a + ":v1", c + ":v1", d + ":v1"}, false)
	assert.NilError(t, err)
	res, err := Merge(context.Background(), targets, []string{amd, arm}, anonMerge, true)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(headDigest(t, d+":v1"), res.Digest))
	gets := map[string]int{}
	for _, r := range log1.list() {
		gets[r]++
	}
	for _, img := range []string{amd, arm} {
		n := gets["GET /v2/merge/a/manifests/"+img]
		assert.Check(t, n == 1, "platform manifest %s read %d times", img, n)
		layers, err := readImage(t, a+"@"+img).Layers()
		assert.NilError(t, err)
		for _, l := range layers {
			d, err := l.Digest()
			assert.NilError(t, err)
			n := gets["GET /v2/merge/a/blobs/"+d.String()]
			assert.Check(t, n == 1, "layer %s read %d times", d, n)
		}
	}
	for _, r := range log2.list() {
		assert.Check(t, !strings.HasPrefix(r, "PATCH /v2/merge/d/blobs/uploads/"), "a blob was uploaded to d, not mounted from c: %s", r)
	}
}
