//go:build integration

package e2e

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"gotest.tools/v3/assert"

	"github.com/nixery-action/nixery-action/internal/testenv"
	"github.com/nixery-action/nixery-action/pkg/cache"
	"github.com/nixery-action/nixery-action/pkg/publish"
)

// TestCacheFromAnotherImage reuses the layers of an image in the registry
// for an OCI layout on disk: nothing is packed, the blobs are copied from
// the registry, and the result is the image a cold build writes.
func TestCacheFromAnotherImage(t *testing.T) {
	testenv.Require(t, "nix", "docker-registry", "skopeo", "umoci")
	host := testenv.StartRegistry(t)
	build := func(args ...string) pushResult {
		t.Helper()
		return decodeResult(t, run(t, nil, append([]string{"build", "--nixpkgs", standIn(), "--json"}, append(args, "hello")...)...))
	}
	pushed := build("--image", host+"/e2e/source", "--tags", "v1")
	assert.Assert(t, pushed.Packed > 0)

	dir := filepath.Join(t.TempDir(), "oci")
	warm := build("--output", "oci:"+dir, "--tags", "v1", "--cache-from", host+"/e2e/source:v1")
	assert.Equal(t, warm.Packed, 0)
	cold := build("--output", "oci:"+filepath.Join(t.TempDir(), "cold"), "--tags", "v1")
	assert.Equal(t, warm.Digest, cold.Digest)
	// build-push-action's way of writing it reads the same image.
	written := build("--output", "oci:"+filepath.Join(t.TempDir(), "bpa"), "--tags", "v1",
		"--cache-from", "type=registry,ref="+host+"/e2e/source:v1,mode=max")
	assert.Equal(t, written.Packed, 0)
	assert.Equal(t, written.Digest, cold.Digest)

	bundle := filepath.Join(t.TempDir(), "bundle")
	testenv.Run(t, "umoci", "unpack", "--rootless", "--image", dir+":v1", bundle)
}

// TestCacheRecordNewTag rebuilds under a tag never pushed: the
// repository's cache record (tag nixery-cache) lists the first build's
// layers, so nothing is packed or uploaded again, and the image is the
// same. --no-cache still packs everything.
func TestCacheRecordNewTag(t *testing.T) {
	testenv.Require(t, "nix", "docker-registry")
	host := testenv.StartRegistry(t)
	build := func(args ...string) pushResult {
		t.Helper()
		return decodeResult(t, run(t, nil, append([]string{"build", "--nixpkgs", standIn(), "--json",
			"--platforms", "linux/amd64,linux/arm64", "--image", host + "/e2e/record"}, append(args, "hello")...)...))
	}
	v1 := build("--tags", "v1")
	assert.Assert(t, v1.Packed > 0)

	v2 := build("--tags", "v2,latest")
	assert.Equal(t, v2.Packed, 0)
	assert.Equal(t, v2.Reused, v1.Packed)
	assert.Equal(t, v2.Digest, v1.Digest)
	for _, m := range v2.Manifests {
		for _, l := range m.Layers {
			assert.Check(t, !l.Uploaded, "layer %s uploaded again", l.Digest)
		}
	}

	v3 := build("--tags", "v3", "--no-cache")
	assert.Equal(t, v3.Packed, v1.Packed)
	assert.Equal(t, v3.Digest, v1.Digest)
}

// TestCacheRecordNotAnImage: the cache record is an OCI artifact (its
// artifactType, the empty config), which the registry accepts and
// podman refuses to pull, rather than an image of no platform that
// podman pulls and runs with a mix of every platform's layers.
func TestCacheRecordNotAnImage(t *testing.T) {
	testenv.Require(t, "nix", "docker-registry", "skopeo", "podman", "runc")
	host := testenv.StartRegistry(t)
	repo := host + "/e2e/artifact"
	decodeResult(t, run(t, nil, "build", "--nixpkgs", standIn(), "--json",
		"--platforms", "linux/amd64,linux/arm64", "--image", repo, "--tags", "v1", "hello"))

	raw := testenv.Run(t, "skopeo", "inspect", "--tls-verify=false", "--raw", "docker://"+repo+":"+cache.RecordTag)
	var m v1.Manifest
	assert.NilError(t, json.Unmarshal([]byte(raw), &m))
	assert.Equal(t, m.ArtifactType, cache.RecordArtifactType)
	assert.Equal(t, string(m.Config.MediaType), "application/vnd.oci.empty.v1+json")
	assert.Assert(t, len(m.Layers) > 0)

	base := podmanBase(t)
	out, err := runOutput("podman", append(base, "pull", "--tls-verify=false", repo+":"+cache.RecordTag)...)
	assert.Assert(t, err != nil, "podman pulled the cache record: %s", out)
	t.Logf("podman pull: %s", strings.TrimSpace(out))
	out, err = runOutput("podman", append(base, "run", "--rm", "--network=none", "--tls-verify=false",
		"--ulimit", "nofile=20000:20000", "--ulimit", "nproc=1000:1000", repo+":"+cache.RecordTag, "hello")...)
	assert.Assert(t, err != nil, "podman ran the cache record: %s", out)
	// The image itself still pulls: the record did not break it.
	testenv.Run(t, "podman", append(base, "pull", "--tls-verify=false", repo+":v1")...)
}

// TestLayoutRebuild builds the same image twice into one OCI layout: the
// second build reuses every layer the layout holds (their content checked)
// and writes the same index; --no-cache packs them all again.
func TestLayoutRebuild(t *testing.T) {
	testenv.Require(t, "nix", "skopeo")
	dir := filepath.Join(t.TempDir(), "oci")
	build := func(args ...string) pushResult {
		t.Helper()
		return decodeResult(t, run(t, nil, append([]string{"build", "--nixpkgs", standIn(), "--json",
			"--platforms", "linux/amd64,linux/arm64", "--output", "oci:" + dir}, append(args, "hello")...)...))
	}
	first := build("--tags", "v1")
	assert.Assert(t, first.Packed > 0)
	assert.Equal(t, first.Reused, 0)

	again := build("--tags", "v2")
	assert.Equal(t, again.Packed, 0)
	assert.Equal(t, again.Reused, first.Packed)
	assert.Equal(t, again.Digest, first.Digest)

	cold := build("--tags", "v3", "--no-cache")
	assert.Equal(t, cold.Packed, first.Packed)
	assert.Equal(t, cold.Reused, 0)
	assert.Equal(t, cold.Digest, first.Digest)
	testenv.Run(t, "skopeo", "inspect", "--raw", "oci:"+dir+":v2")

	// A layer blob whose bytes went bad (same size) is not reused: it is
	// packed again and the layout mended, so that every blob holds its
	// digest's bytes.
	layer := first.Manifests[0].Layers[0].Digest
	file := filepath.Join(dir, "blobs", "sha256", strings.TrimPrefix(layer, "sha256:"))
	data, err := os.ReadFile(file)
	assert.NilError(t, err)
	data[len(data)/2] ^= 0xff
	assert.NilError(t, os.WriteFile(file, data, 0o644))
	mended := build("--tags", "v4")
	assert.Equal(t, mended.Packed, 1)
	assert.Equal(t, mended.Digest, first.Digest)
	checkLayoutBlobs(t, dir)
}

// checkLayoutBlobs checks that each blob of the OCI layout dir, and of
// the referrers layout in it, holds its digest's bytes and has mode 0644
// like every blob a layout write makes.
func checkLayoutBlobs(t *testing.T, dir string) {
	t.Helper()
	for _, d := range []string{dir, filepath.Join(dir, publish.ReferrersDir)} {
		checkBlobs(t, d)
		entries, err := os.ReadDir(filepath.Join(d, "blobs", "sha256"))
		assert.NilError(t, err)
		for _, e := range entries {
			info, err := e.Info()
			assert.NilError(t, err)
			assert.Check(t, info.Mode().Perm() == 0o644, "blob %s of %s has mode %v, not 0644", e.Name(), d, info.Mode().Perm())
		}
	}
}

// TestLayoutMendsBadBlobs: blobs of an OCI layout gone bad are written
// again, each with mode 0644 like every other blob, in the layout and in
// its referrers layout (whose layer blobs are links to the same files):
// a layer cut short (another size), and, with --no-cache, which trusts
// nothing already there, a layer and a config whose bytes changed but
// not their size. umoci, which checks every blob's digest, then unpacks
// the image.
func TestLayoutMendsBadBlobs(t *testing.T) {
	testenv.Require(t, "nix", "umoci")
	dir := filepath.Join(t.TempDir(), "oci")
	build := func(args ...string) pushResult {
		t.Helper()
		return decodeResult(t, run(t, nil, append([]string{"build", "--nixpkgs", standIn(), "--json", "--output", "oci:" + dir}, append(args, "hello")...)...))
	}
	blobFile := func(digest string) string {
		return filepath.Join(dir, "blobs", "sha256", strings.TrimPrefix(digest, "sha256:"))
	}
	first := build("--tags", "v1")
	layer := blobFile(first.Manifests[0].Layers[0].Digest)
	assert.NilError(t, os.Truncate(layer, 100))
	cut := build("--tags", "v2")
	assert.Equal(t, cut.Digest, first.Digest)
	checkLayoutBlobs(t, dir)

	var manifest struct {
		Config struct{ Digest string } `json:"config"`
	}
	raw, err := os.ReadFile(blobFile(first.Manifests[0].Digest))
	assert.NilError(t, err)
	assert.NilError(t, json.Unmarshal(raw, &manifest))
	for _, file := range []string{layer, blobFile(manifest.Config.Digest)} {
		flipByte(t, file)
	}
	cold := build("--tags", "v3", "--no-cache")
	assert.Equal(t, cold.Digest, first.Digest)
	checkLayoutBlobs(t, dir)
	testenv.Run(t, "umoci", "unpack", "--rootless", "--image", dir+":v3", filepath.Join(t.TempDir(), "bundle"))
}

// flipByte changes a byte in the middle of file, in place: the file
// keeps its size and its inode (and so its other links).
func flipByte(t *testing.T, file string) {
	t.Helper()
	f, err := os.OpenFile(file, os.O_RDWR, 0)
	assert.NilError(t, err)
	defer f.Close()
	info, err := f.Stat()
	assert.NilError(t, err)
	b := make([]byte, 1)
	_, err = f.ReadAt(b, info.Size()/2)
	assert.NilError(t, err)
	b[0] ^= 0xff
	_, err = f.WriteAt(b, info.Size()/2)
	assert.NilError(t, err)
}

// TestCommitsShareLayers is a workflow building the same packages at two
// commits of different dates, each under its own tag (the reviewer's
// case): the creation time follows the commit, in the config and the
// JSON, but the layers do not, so the second build packs nothing and
// uploads no layer; nor does a third with SOURCE_DATE_EPOCH set.
func TestCommitsShareLayers(t *testing.T) {
	testenv.Require(t, "nix", "docker-registry", "git", "skopeo")
	host := testenv.StartRegistry(t)
	repo := t.TempDir()
	dates := []string{"2024-01-02T03:04:05Z", "2025-06-07T08:09:10Z"}
	var shas []string
	git := func(date string, args ...string) string {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-c", "user.email=ci@example.org", "-c", "user.name=CI", "-c", "init.defaultBranch=main"}, args...)...)
		cmd.Dir = repo
		cmd.Env = append(os.Environ(), "GIT_COMMITTER_DATE="+date, "GIT_AUTHOR_DATE="+date)
		out, err := cmd.CombinedOutput()
		assert.NilError(t, err, "git %v: %s", args, out)
		return strings.TrimSpace(string(out))
	}
	git("", "init", "-q")
	for _, d := range dates {
		git(d, "commit", "-q", "--allow-empty", "-m", "at "+d)
		shas = append(shas, git("", "rev-parse", "HEAD"))
	}

	type buildResult struct {
		pushResult
		Created string `json:"created"`
	}
	build := func(env []string, tag string) buildResult {
		t.Helper()
		r := run(t, env, "build", "--nixpkgs", standIn(), "--json", "--image", host+"/e2e/gh", "--tags", tag, "hello")
		var res buildResult
		assert.NilError(t, json.Unmarshal([]byte(r.stdout), &res), "nixery failed: %s", r.stderr)
		assert.Equal(t, r.code, 0, r.stderr)
		created := testenv.Run(t, "skopeo", "inspect", "--tls-verify=false", "--override-arch", "amd64", "--config", "docker://"+host+"/e2e/gh:"+tag)
		var cfg struct{ Created string }
		assert.NilError(t, json.Unmarshal([]byte(created), &cfg), created)
		assert.Check(t, cfg.Created == res.Created, "config created %s, --json says %s", cfg.Created, res.Created)
		return res
	}
	workflow := func(sha string) []string {
		return []string{"GITHUB_ACTIONS=true", "GITHUB_WORKSPACE=" + repo, "GITHUB_SHA=" + sha, "SOURCE_DATE_EPOCH="}
	}
	first := build(workflow(shas[0]), shas[0][:7])
	assert.Equal(t, first.Created, dates[0])
	assert.Assert(t, first.Packed > 0)

	// The reviewer's case: the next commit, a new tag.
	second := build(workflow(shas[1]), shas[1][:7])
	assert.Equal(t, second.Created, dates[1])
	assert.Check(t, second.Digest != first.Digest, "the same index for two commit times")
	assertSameLayersNotUploaded(t, first.pushResult, second.pushResult)

	// Another SOURCE_DATE_EPOCH: another creation time, the same layers.
	third := build([]string{"GITHUB_ACTIONS=", "SOURCE_DATE_EPOCH=1800000000"}, "sde")
	assert.Equal(t, third.Created, "2027-01-15T08:00:00Z")
	assertSameLayersNotUploaded(t, first.pushResult, third.pushResult)
}

// assertSameLayersNotUploaded checks that again packed nothing and sent
// no layer, every one of them being first's.
func assertSameLayersNotUploaded(t *testing.T, first, again pushResult) {
	t.Helper()
	assert.Check(t, again.Packed == 0, "%d layers packed again", again.Packed)
	assert.Check(t, again.Reused == first.Packed, "%d layers reused of %d", again.Reused, first.Packed)
	assert.Equal(t, len(again.Manifests), len(first.Manifests))
	for i, m := range again.Manifests {
		assert.Equal(t, len(m.Layers), len(first.Manifests[i].Layers))
		for j, l := range m.Layers {
			assert.Check(t, l.Digest == first.Manifests[i].Layers[j].Digest, "%s layer %d: %s, not %s", m.Platform, j, l.Digest, first.Manifests[i].Layers[j].Digest)
			assert.Check(t, !l.Uploaded, "%s layer %s uploaded again", m.Platform, l.Digest)
		}
	}
}

// TestCacheRecordSharedBlob: a cache record rewritten so that the
// customisation layer's entry names the blob of another layer of the same
// image. The build neither fails nor pushes an image with one blob for
// two layers: the entry is dropped and the layer packed, whether the
// other layer's entry names the blob too or that layer is packed.
func TestCacheRecordSharedBlob(t *testing.T) {
	testenv.Require(t, "nix", "docker-registry", "skopeo")
	host := testenv.StartRegistry(t)
	repo := host + "/e2e/shared"
	build := func(tag string) pushResult {
		t.Helper()
		r := run(t, nil, "build", "--nixpkgs", standIn(), "--json", "--image", repo, "--tags", tag, "hello")
		res := decodeResult(t, r)
		assert.Assert(t, strings.Contains(r.stderr, "packing it"), "no word of the dropped entry: %s", r.stderr)
		return res
	}
	first := decodeResult(t, run(t, nil, "build", "--nixpkgs", standIn(), "--json", "--image", repo, "--tags", "v1", "hello"))
	layers := first.Manifests[0].Layers
	custom := len(layers) - 1
	other := 0 // the smallest other layer: its blob passes for the customisation layer's by size
	for i := range layers[:custom] {
		if layers[i].Size < layers[other].Size {
			other = i
		}
	}

	// Both entries name the other layer's blob.
	rewriteRecord(t, host, "e2e/shared", func(m *v1.Manifest) {
		m.Layers[custom].Digest, m.Layers[custom].Size = m.Layers[other].Digest, m.Layers[other].Size
	})
	v2 := build("v2")
	assert.Equal(t, v2.Digest, first.Digest)
	assert.Equal(t, v2.Packed, 2)

	// Only the customisation layer's entry names it: the other layer's
	// entry gives another size, so the cache finds no such blob and that
	// layer is packed, to the blob the customisation entry names.
	rewriteRecord(t, host, "e2e/shared", func(m *v1.Manifest) {
		m.Layers[custom].Digest, m.Layers[custom].Size = m.Layers[other].Digest, m.Layers[other].Size
		m.Layers[other].Size++
	})
	v3 := build("v3")
	assert.Equal(t, v3.Digest, first.Digest)
	assert.Equal(t, v3.Packed, 2)
	testenv.Run(t, "skopeo", "copy", "--src-tls-verify=false", "docker://"+repo+":v3", "oci:"+filepath.Join(t.TempDir(), "oci")+":v3")
}

// rewriteRecord changes the cache record of host/repo with change and
// puts it back under its tag.
func rewriteRecord(t *testing.T, host, repo string, change func(*v1.Manifest)) {
	t.Helper()
	url := "http://" + host + "/v2/" + repo + "/manifests/nixery-cache"
	raw := testenv.Run(t, "skopeo", "inspect", "--tls-verify=false", "--raw", "docker://"+host+"/"+repo+":nixery-cache")
	var m v1.Manifest
	assert.NilError(t, json.Unmarshal([]byte(raw), &m))
	change(&m)
	body, err := json.Marshal(m)
	assert.NilError(t, err)
	req, err := http.NewRequest(http.MethodPut, url, bytes.NewReader(body))
	assert.NilError(t, err)
	req.Header.Set("Content-Type", string(m.MediaType))
	resp, err := http.DefaultClient.Do(req)
	assert.NilError(t, err)
	resp.Body.Close()
	assert.Equal(t, resp.StatusCode, http.StatusCreated)
}
