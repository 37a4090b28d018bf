//go:build integration

package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gotest.tools/v3/assert"

	"github.com/nixery-action/nixery-action/internal/testenv"
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
	checkBlobs(t, dir)
}
