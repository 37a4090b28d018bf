package e2e

import (
	"path/filepath"
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

	bundle := filepath.Join(t.TempDir(), "bundle")
	mustRun(t, "umoci", "unpack", "--rootless", "--image", dir+":v1", bundle)
}
