//go:build integration

package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gotest.tools/v3/assert"

	"github.com/nixery-action/nixery-action/internal/testenv"
)

const zstdLayer = "application/vnd.oci.image.layer.v1.tar+zstd"

// manifestLayers reads the media types of a manifest's layers.
func manifestLayers(t *testing.T, raw []byte) []string {
	t.Helper()
	var m struct {
		Layers []struct {
			MediaType string `json:"mediaType"`
		} `json:"layers"`
	}
	assert.NilError(t, json.Unmarshal(raw, &m))
	var out []string
	for _, l := range m.Layers {
		out = append(out, l.MediaType)
	}
	return out
}

// allZstd fails unless every one of at least two layers is zstd's.
func allZstd(t *testing.T, types []string) {
	t.Helper()
	assert.Assert(t, len(types) >= 2, "%v", types)
	for _, mt := range types {
		assert.Equal(t, mt, zstdLayer, "%v", types)
	}
}

// TestBuildZstdPullAndRun: an image of zstd layers, pushed to a real
// registry, is what real clients take: skopeo copies it (checking every
// blob's digest) and keeps its layers zstd, podman pulls it and runs a
// program of its closure. A rebuild reuses every layer; the action's
// compression input gives zstd layers too.
func TestBuildZstdPullAndRun(t *testing.T) {
	testenv.Require(t, "nix", "docker-registry", "skopeo", "podman", "runc")
	host := testenv.StartRegistry(t)
	repo := host + "/e2e/zstd"
	first := decodeResult(t, run(t, nil, "build", "--nixpkgs", standIn(),
		"--image", repo, "--tags", "v1", "--compression", "zstd", "--json", "hello", "busybox"))
	assert.Equal(t, len(first.Manifests), 1)
	m := first.Manifests[0]
	raw := testenv.Run(t, "skopeo", "inspect", "--tls-verify=false", "--raw", "docker://"+repo+"@"+m.Digest)
	allZstd(t, manifestLayers(t, []byte(raw)))

	// skopeo copies it into a layout, as it is.
	layout := filepath.Join(t.TempDir(), "oci")
	testenv.Run(t, "skopeo", "copy", "--src-tls-verify=false", "docker://"+repo+"@"+m.Digest, "oci:"+layout+":v1")
	copied := testenv.Run(t, "skopeo", "inspect", "--raw", "oci:"+layout+":v1")
	assert.Equal(t, "sha256:"+sha256Hex([]byte(copied)), m.Digest)

	// And into another repository of the registry, which podman pulls.
	testenv.Run(t, "skopeo", "copy", "--src-tls-verify=false", "--dest-tls-verify=false",
		"docker://"+repo+":v1", "docker://"+host+"/e2e/zstd-copy:v1")
	for _, image := range []string{repo + ":v1", host + "/e2e/zstd-copy:v1"} {
		out := podmanRun(t, image, "hello")
		assert.Equal(t, strings.TrimSpace(out), "Hello, world!", image)
	}

	// A rebuild packs nothing.
	warm := decodeResult(t, run(t, nil, "build", "--nixpkgs", standIn(),
		"--image", repo, "--tags", "v1", "--compression", "zstd:3", "--json", "hello", "busybox"))
	assert.Equal(t, warm.Digest, first.Digest)
	assert.Equal(t, warm.Packed, 0)

	// The action's input.
	dir := t.TempDir()
	env := runnerEnv(dir, "INPUT_PACKAGES=hello", "INPUT_NIXPKGS="+standIn(), "INPUT_COMPRESSION=zstd",
		"INPUT_OUTPUT=oci:"+filepath.Join(dir, "image"), "INPUT_SBOM=false")
	r := run(t, env, "action")
	assert.Equal(t, r.code, 0, "%s%s", r.stdout, r.stderr)
	// index.json → the image index → the platform's manifest.
	data, err := os.ReadFile(filepath.Join(dir, "image", "index.json"))
	assert.NilError(t, err)
	for range 2 {
		var index struct {
			Manifests []struct {
				Digest string `json:"digest"`
			} `json:"manifests"`
		}
		assert.NilError(t, json.Unmarshal(data, &index))
		assert.Assert(t, len(index.Manifests) > 0, "%s", data)
		data, err = os.ReadFile(filepath.Join(dir, "image", "blobs", "sha256", strings.TrimPrefix(index.Manifests[0].Digest, "sha256:")))
		assert.NilError(t, err)
	}
	allZstd(t, manifestLayers(t, data))
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
