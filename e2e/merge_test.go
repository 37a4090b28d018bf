//go:build integration

package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/nixery-action/nixery-action/internal/testenv"
)

// TestScaleOutMerge is the scale-out mode: each platform pushed by digest
// on its own, then merged under tags. The merged index is the one a single
// build of both platforms pushes, byte for byte.
func TestScaleOutMerge(t *testing.T) {
	testenv.Require(t, "nix", "docker-registry", "skopeo")
	host := testenv.StartRegistry(t)
	repo := host + "/e2e/merged"
	build := func(args ...string) pushResult {
		t.Helper()
		// Annotations at every level a registry holds: the merge keeps
		// the descriptors' with their images.
		annots := "manifest-descriptor:org.example.team=tools\nindex:org.example.tier=backend\norg.example.built-by=nixery"
		return decodeResult(t, run(t, nil, append([]string{"build", "--nixpkgs", standIn(), "--image", repo, "--json", "--annotations", annots}, append(args, "hello")...)...))
	}

	amd := build("--platforms", "linux/amd64", "--push-by-digest")
	arm := build("--platforms", "linux/arm64", "--push-by-digest")
	assert.Equal(t, len(amd.Tags), 0)
	out, _ := runOutput("skopeo", "list-tags", "--tls-verify=false", "docker://"+repo)
	assert.Assert(t, !strings.Contains(out, `"latest"`), "a push by digest left a tag: %s", out)

	// A bare digest and NAME@DIGEST (the action's image output) both do.
	merged := decodeResult(t, run(t, nil, "merge", "--image", repo, "--tags", "v1,stable", "--json", amd.Digest, repo+"@"+arm.Digest))
	assert.DeepEqual(t, merged.Tags, []string{"v1", "stable"})
	raw := testenv.Run(t, "skopeo", "inspect", "--tls-verify=false", "--raw", "docker://"+repo+":stable")
	assert.Assert(t, strings.Contains(raw, amd.Manifests[0].Digest) && strings.Contains(raw, arm.Manifests[0].Digest), raw)

	both := build("--platforms", "linux/amd64,linux/arm64", "--tags", "together")
	assert.Equal(t, merged.Digest, both.Digest)
	// The merge lists the layers of each platform, none uploaded by it.
	for i, built := range []pushResult{amd, arm} {
		m := merged.Manifests[i]
		assert.Assert(t, len(m.Layers) > 0 && len(m.Layers) == len(built.Manifests[0].Layers), "%s: %d layers", m.Platform, len(m.Layers))
		for j, l := range m.Layers {
			assert.Check(t, l.Digest == built.Manifests[0].Layers[j].Digest && !l.Uploaded, "%s layer %d", m.Platform, j)
		}
	}

	// The action's merge: its summary counts the layers and lists them.
	dir := t.TempDir()
	r := run(t, runnerEnv(dir, "INPUT_IMAGE="+repo, "INPUT_TAGS=v2", "INPUT_MERGE_DIGESTS="+amd.Digest+"\n"+arm.Digest), "action")
	assert.Equal(t, r.code, 0, "%s%s", r.stdout, r.stderr)
	summary, err := os.ReadFile(filepath.Join(dir, "summary"))
	assert.NilError(t, err)
	for _, built := range []pushResult{amd, arm} {
		heading := fmt.Sprintf("#### %s (%d layers, ", built.Manifests[0].Platform, len(built.Manifests[0].Layers))
		assert.Check(t, is.Contains(string(summary), heading), "%s", summary)
	}
	assert.Check(t, is.Contains(string(summary), "| 1 | "), "%s", summary)
	assert.Check(t, !strings.Contains(string(summary), "0 layers"), "%s", summary)

	// Merging what is not there fails and tags nothing.
	r = run(t, nil, "merge", "--image", repo, "--tags", "broken", "sha256:"+strings.Repeat("0", 64))
	assert.Assert(t, r.code != 0)
	assert.Assert(t, strings.Contains(errorLine(r.stderr), "sha256:0000"), r.stderr)
	// So does a digest of another repository, a usage error found
	// before the registry is asked.
	r = run(t, nil, "merge", "--image", repo, "--tags", "broken", amd.Digest, host+"/e2e/elsewhere@"+arm.Digest)
	assert.Equal(t, r.code, 2)
	assert.Assert(t, strings.Contains(errorLine(r.stderr), "e2e/elsewhere, not in "+repo), r.stderr)
	out, _ = runOutput("skopeo", "list-tags", "--tls-verify=false", "docker://"+repo)
	assert.Assert(t, !strings.Contains(out, `"broken"`), out)

	// The referrers fallback tag of the amd64 image is no tag to merge
	// under: it would replace that image's list of SBOMs.
	fallback := "sha256-" + strings.TrimPrefix(amd.Manifests[0].Digest, "sha256:")
	before := testenv.Run(t, "skopeo", "inspect", "--tls-verify=false", "--raw", "docker://"+repo+":"+fallback)
	r = run(t, nil, "merge", "--image", repo, "--tags", fallback, amd.Digest, arm.Digest)
	assert.Equal(t, r.code, 2, r.stderr)
	assert.Assert(t, strings.Contains(errorLine(r.stderr), "is the OCI referrers fallback tag of the image "+amd.Manifests[0].Digest), r.stderr)
	after := testenv.Run(t, "skopeo", "inspect", "--tls-verify=false", "--raw", "docker://"+repo+":"+fallback)
	assert.Equal(t, after, before)
}

// TestMergeMissingBlob: a merge of an image one of whose layer blobs the
// registry no longer holds fails, naming the platform and the blob, and
// tags nothing; the platform's build run again pushes the blob back, and
// the merge then gives a tag that skopeo copies.
func TestMergeMissingBlob(t *testing.T) {
	testenv.Require(t, "nix", "docker-registry", "skopeo")
	host := testenv.StartRegistry(t)
	repo := host + "/e2e/mm"
	build := func() pushResult {
		t.Helper()
		return decodeResult(t, run(t, nil, "build", "--nixpkgs", standIn(), "--image", repo, "--json", "--platforms", "linux/amd64", "--push-by-digest", "hello"))
	}
	built := build()
	layer := built.Manifests[0].Layers[0].Digest
	registryDelete(t, "http://"+host+"/v2/e2e/mm/blobs/"+layer)

	r := run(t, nil, "merge", "--image", repo, "--tags", "release", built.Digest)
	assert.Assert(t, r.code != 0, "%s%s", r.stdout, r.stderr)
	line := errorLine(r.stderr)
	assert.Assert(t, strings.Contains(line, "linux/amd64") && strings.Contains(line, layer) && strings.Contains(line, "build again"), r.stderr)
	out, _ := runOutput("skopeo", "list-tags", "--tls-verify=false", "docker://"+repo)
	assert.Assert(t, !strings.Contains(out, `"release"`), out)

	again := build()
	assert.Equal(t, again.Digest, built.Digest)
	decodeResult(t, run(t, nil, "merge", "--image", repo, "--tags", "release", "--json", again.Digest))
	testenv.Run(t, "skopeo", "copy", "--src-tls-verify=false", "docker://"+repo+":release", "oci:"+filepath.Join(t.TempDir(), "oci")+":release")
}

// TestMergeRefusesCacheRecord: the repository's cache record (the tag
// nixery-cache) is an OCI artifact, no platform's image; given to merge by
// its digest it is refused, and nothing is tagged.
func TestMergeRefusesCacheRecord(t *testing.T) {
	testenv.Require(t, "nix", "docker-registry", "skopeo")
	host := testenv.StartRegistry(t)
	repo := host + "/e2e/m"
	built := decodeResult(t, run(t, nil, "build", "--nixpkgs", standIn(), "--image", repo, "--json", "--platforms", "linux/amd64", "--push-by-digest", "hello"))
	record := manifestDigest(t, "http://"+host+"/v2/e2e/m/manifests/nixery-cache")

	r := run(t, nil, "merge", "--image", repo, "--tags", "withrec", built.Digest, record)
	assert.Assert(t, r.code != 0, "%s%s", r.stdout, r.stderr)
	assert.Assert(t, strings.Contains(errorLine(r.stderr), record+" is nixery's cache record"), r.stderr)
	out, _ := runOutput("skopeo", "list-tags", "--tls-verify=false", "docker://"+repo)
	assert.Assert(t, !strings.Contains(out, `"withrec"`), out)
}

// registryDelete sends DELETE to url, a registry's blob or manifest.
func registryDelete(t *testing.T, url string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodDelete, url, nil)
	assert.NilError(t, err)
	resp, err := http.DefaultClient.Do(req)
	assert.NilError(t, err)
	resp.Body.Close()
	assert.Equal(t, resp.StatusCode, http.StatusAccepted)
}

// manifestDigest is the digest of the OCI manifest at url, as the
// registry says it.
func manifestDigest(t *testing.T, url string) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodHead, url, nil)
	assert.NilError(t, err)
	req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json")
	resp, err := http.DefaultClient.Do(req)
	assert.NilError(t, err)
	resp.Body.Close()
	assert.Equal(t, resp.StatusCode, http.StatusOK)
	d := resp.Header.Get("Docker-Content-Digest")
	assert.Assert(t, strings.HasPrefix(d, "sha256:"), "digest %q", d)
	return d
}

// TestMergeDisagreeingSources: images built from different nixpkgs merge
// (as buildx imagetools create merges them), but the index annotations
// they disagree on, which the index leaves out, are each named in a
// warning with both platforms' values; the action makes it a warning
// annotation. The same image given as its index and as its manifest is
// merged once, and a platform manifest gone from the registry is named,
// with its platform and what to do, by a merge that reads, not "pushes".
func TestMergeDisagreeingSources(t *testing.T) {
	testenv.Require(t, "nix", "docker-registry", "skopeo")
	host := testenv.StartRegistry(t)
	repo := host + "/e2e/mixed"
	dir := t.TempDir()
	np1, np2 := filepath.Join(dir, "np1"), filepath.Join(dir, "np2")
	testenv.Run(t, "cp", "-r", filepath.Join(repoRoot, "testdata", "nixpkgs"), np1)
	testenv.Run(t, "cp", "-r", filepath.Join(repoRoot, "testdata", "nixpkgs"), np2)
	f, err := os.OpenFile(filepath.Join(np2, "packages.nix"), os.O_APPEND|os.O_WRONLY, 0)
	assert.NilError(t, err)
	_, err = f.WriteString("# another revision\n")
	assert.NilError(t, err)
	assert.NilError(t, f.Close())
	build := func(nixpkgs, platform string) pushResult {
		t.Helper()
		return decodeResult(t, run(t, nil, "build", "--nixpkgs", "path:"+nixpkgs, "--image", repo, "--json", "--platforms", platform, "--push-by-digest", "hello"))
	}
	amd := build(np1, "linux/amd64")
	arm := build(np2, "linux/arm64")

	r := run(t, nil, "merge", "--image", repo, "--tags", "t", amd.Digest, arm.Digest)
	assert.Equal(t, r.code, 0, r.stderr)
	var warning string
	for _, l := range strings.Split(r.stderr, "\n") {
		if strings.HasPrefix(l, "warning: the images disagree on org.nixery-action.nixpkgs ") {
			warning = l
		}
	}
	assert.Assert(t, warning != "", r.stderr)
	assert.Check(t, is.Regexp(`\(linux/amd64: path:\S*/np1\?narHash=\S+, linux/arm64: path:\S*/np2\?narHash=\S+\)`, warning))
	assert.Check(t, is.Contains(warning, "the index leaves it out; build every platform from the same sources"))
	raw := testenv.Run(t, "skopeo", "inspect", "--tls-verify=false", "--raw", "docker://"+repo+":t")
	assert.Check(t, !strings.Contains(raw, "org.nixery-action.nixpkgs"), raw)

	out := run(t, runnerEnv(t.TempDir(), "INPUT_IMAGE="+repo, "INPUT_TAGS=t2", "INPUT_MERGE_DIGESTS="+amd.Digest+"\n"+arm.Digest), "action")
	assert.Equal(t, out.code, 0, "%s%s", out.stdout, out.stderr)
	assert.Check(t, is.Contains(out.stdout, "::warning title=nixery::the images disagree on org.nixery-action.nixpkgs ("), out.stdout)

	// The amd64 image as its index and as its manifest: one image.
	r = run(t, nil, "merge", "--image", repo, "--push=false", amd.Digest, amd.Manifests[0].Digest, arm.Digest)
	assert.Equal(t, r.code, 0, r.stderr)
	assert.Check(t, is.Contains(r.stderr, "merging 2 images (linux/amd64, linux/arm64) for "+repo), r.stderr)

	// The arm64 platform manifest gone: the merge names it.
	registryDelete(t, "http://"+host+"/v2/e2e/mixed/manifests/"+arm.Manifests[0].Digest)
	for _, push := range []string{"--push=true", "--push=false"} {
		r = run(t, nil, "merge", "--image", repo, "--tags", "gone", push, amd.Digest, arm.Digest)
		assert.Assert(t, r.code != 0, "%s%s", r.stdout, r.stderr)
		line := errorLine(r.stderr)
		assert.Check(t, is.Contains(line, "read the linux/arm64 image "+arm.Manifests[0].Digest+" (in index "+arm.Digest+") from "+repo+": registry answered 404"), r.stderr)
		assert.Check(t, is.Contains(line, "run the linux/arm64 build again"), r.stderr)
		assert.Check(t, !strings.Contains(line, "push to"), r.stderr)
	}
}

// TestMergeIntoTwoRegistries is the scale-out mode with
// docker/metadata-action's tags for two images on two registries: the
// per-platform builds push to the first, and the merge, given the full
// references, puts the same index in both, copying the images and their
// SBOMs to the second. The action's merge takes metadata-action's output
// as it is, one reference per line.
func TestMergeIntoTwoRegistries(t *testing.T) {
	testenv.Require(t, "nix", "docker-registry", "skopeo")
	reg1, reg2 := testenv.StartRegistry(t), testenv.StartRegistry(t)
	a, b := reg1+"/e2e/a", reg2+"/e2e/b"
	build := func(platform string) pushResult {
		t.Helper()
		return decodeResult(t, run(t, nil, "build", "--nixpkgs", standIn(), "--image", a, "--json", "--platforms", platform, "--push-by-digest", "hello"))
	}
	amd, arm := build("linux/amd64"), build("linux/arm64")

	r := run(t, nil, "merge", "--tags", a+":v1,"+b+":v1", "--json", amd.Digest, arm.Digest)
	assert.Equal(t, r.code, 0, r.stderr)
	merged := decodeResult(t, r)
	var repos struct {
		Repositories []struct {
			Image     string   `json:"image"`
			Reference string   `json:"reference"`
			Tags      []string `json:"tags"`
		} `json:"repositories"`
	}
	assert.NilError(t, json.Unmarshal([]byte(r.stdout), &repos))
	assert.Assert(t, is.Len(repos.Repositories, 2), r.stdout)
	assert.Check(t, is.Equal(repos.Repositories[1].Reference, b+"@"+merged.Digest))
	rawA := testenv.Run(t, "skopeo", "inspect", "--tls-verify=false", "--raw", "docker://"+a+":v1")
	rawB := testenv.Run(t, "skopeo", "inspect", "--tls-verify=false", "--raw", "docker://"+b+":v1")
	assert.Equal(t, rawB, rawA)
	assert.Assert(t, strings.Contains(rawB, amd.Manifests[0].Digest) && strings.Contains(rawB, arm.Manifests[0].Digest), rawB)
	testenv.Run(t, "skopeo", "copy", "--all", "--src-tls-verify=false", "docker://"+b+":v1", "oci:"+filepath.Join(t.TempDir(), "b")+":v1")
	// Each image's referrers (its SBOM and provenance) are listed in b as
	// in a, by the fallback tag a registry without the referrers API needs.
	for _, built := range []pushResult{amd, arm} {
		fallback := ":sha256-" + strings.TrimPrefix(built.Manifests[0].Digest, "sha256:")
		inA := testenv.Run(t, "skopeo", "inspect", "--tls-verify=false", "--raw", "docker://"+a+fallback)
		inB := testenv.Run(t, "skopeo", "inspect", "--tls-verify=false", "--raw", "docker://"+b+fallback)
		assert.Check(t, is.Equal(inB, inA), "the referrers of %s", built.Manifests[0].Platform)
		assert.Check(t, strings.Count(inB, `"digest"`) >= 2, "%s", inB)
	}

	// The action: --image the first repository, the tags
	// metadata-action's output for both.
	dir := t.TempDir()
	tags := strings.Join(testenv.MetadataActionTags(a, b), "\n")
	r = run(t, runnerEnv(dir, "INPUT_IMAGE="+a, "INPUT_TAGS="+tags, "INPUT_MERGE_DIGESTS="+amd.Digest+"\n"+arm.Digest), "action")
	assert.Equal(t, r.code, 0, "%s%s", r.stdout, r.stderr)
	for _, tag := range testenv.MetadataActionTags(a, b) {
		raw := testenv.Run(t, "skopeo", "inspect", "--tls-verify=false", "--raw", "docker://"+tag)
		assert.Check(t, is.Equal(raw, rawA), tag)
	}
	summary, err := os.ReadFile(filepath.Join(dir, "summary"))
	assert.NilError(t, err)
	for _, repo := range []string{a, b} {
		assert.Check(t, is.Contains(string(summary), "- `"+repo+"@"+merged.Digest+"`: `1.2.3`, `1.2`, `latest`\n"), "%s", summary)
	}
}

// A merge logs in to each registry as a build does: --username and
// --password go to the registry the images are read from only (here
// wrong for the second registry, which needs a login), the second's
// login comes from the docker config. Without it the merge fails naming
// that repository, before it writes anything in either.
func TestMergeIntoLockedRegistry(t *testing.T) {
	testenv.Require(t, "nix", "docker-registry", "skopeo")
	open := testenv.StartRegistry(t)
	locked, user, password := testenv.StartAuthRegistry(t)
	a, b := open+"/e2e/a", locked+"/e2e/b"
	amd := decodeResult(t, run(t, nil, "build", "--nixpkgs", standIn(), "--image", a, "--json", "--platforms", "linux/amd64", "--push-by-digest", "hello"))

	env := []string{"NIXERY_PASSWORD=not-" + password}
	r := run(t, append(env, "DOCKER_CONFIG="+t.TempDir()), "merge", "--username", user, "--tags", a+":v1,"+b+":v1", amd.Digest)
	assert.Assert(t, r.code != 0)
	line := errorLine(r.stderr)
	assert.Check(t, is.Contains(line, "authentication failed for registry "+locked+": no credentials found"), r.stderr)
	assert.Check(t, is.Contains(line, b+": "), r.stderr)
	assert.Check(t, !strings.Contains(r.stderr, password), r.stderr)
	// Found before anything was written: no tag moved, in either.
	assert.Check(t, !strings.Contains(line, "tags moved"), r.stderr)
	_, err := runOutput("skopeo", "inspect", "--tls-verify=false", "--creds", user+":"+password, "--raw", "docker://"+b+":v1")
	assert.Check(t, err != nil, "%s:v1 was written", b)
	_, err = runOutput("skopeo", "inspect", "--tls-verify=false", "--raw", "docker://"+a+":v1")
	assert.Check(t, err != nil, "%s:v1 was written", a)

	env = append(env, "DOCKER_CONFIG="+testenv.DockerConfig(t, locked, user, password))
	merged := decodeResult(t, run(t, env, "merge", "--username", user, "--tags", a+":v1,"+b+":v1", "--json", amd.Digest))
	rawA := testenv.Run(t, "skopeo", "inspect", "--tls-verify=false", "--raw", "docker://"+a+":v1")
	rawB := testenv.Run(t, "skopeo", "inspect", "--tls-verify=false", "--creds", user+":"+password, "--raw", "docker://"+b+":v1")
	assert.Equal(t, rawB, rawA)
	assert.Check(t, strings.Contains(rawB, merged.Manifests[0].Digest), rawB)
}

// A merge tells each retry as it comes, as a build does: here the
// registry answers 503 to the first write of the index under its tag.
func TestMergeTellsRetries(t *testing.T) {
	testenv.Require(t, "nix", "docker-registry")
	upstream := testenv.StartRegistry(t)
	repo := upstream + "/e2e/retried"
	var digests []string
	for _, p := range []string{"linux/amd64", "linux/arm64"} {
		res := decodeResult(t, run(t, nil, "build", "--nixpkgs", standIn(), "--image", repo, "--platforms", p, "--push-by-digest", "--json", "hello"))
		digests = append(digests, res.Digest)
	}
	var refused atomic.Bool
	host := testenv.Front(t, upstream, func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, "/manifests/v1") && refused.CompareAndSwap(false, true) {
			testenv.RegistryError(w, http.StatusServiceUnavailable, "UNAVAILABLE", "busy")
			return true
		}
		return false
	})

	r := run(t, nil, append([]string{"merge", "--image", host + "/e2e/retried", "--tags", "v1"}, digests...)...)
	assert.Equal(t, r.code, 0, r.stderr)
	assert.Check(t, refused.Load())
	assert.Check(t, is.Contains(r.stderr, "push to "+host+"/e2e/retried: "), r.stderr)
	assert.Check(t, is.Contains(r.stderr, "503 Service Unavailable"), r.stderr)
	assert.Check(t, is.Contains(r.stderr, "retrying in"), r.stderr)
}
