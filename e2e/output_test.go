//go:build integration

package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gotest.tools/v3/assert"

	"github.com/nixery-action/nixery-action/internal/testenv"
)

// TestBuildOCILayout is the README's first command: no registry, an OCI
// layout on disk, read by skopeo and unpacked by umoci.
func TestBuildOCILayout(t *testing.T) {
	testenv.Require(t, "nix", "skopeo", "umoci")
	dir := filepath.Join(t.TempDir(), "image")
	r := run(t, nil, "build", "--nixpkgs", standIn(), "--platforms", "linux/amd64,linux/arm64",
		"--output", "oci:"+dir, "--tags", "v1", "shell", "hello")
	assert.Equal(t, r.code, 0, r.stderr)

	raw := testenv.Run(t, "skopeo", "inspect", "--raw", "oci:"+dir+":v1")
	var index struct {
		Manifests []struct{ Digest string } `json:"manifests"`
	}
	assert.NilError(t, json.Unmarshal([]byte(raw), &index))
	assert.Equal(t, len(index.Manifests), 2)

	config := testenv.Run(t, "skopeo", "inspect", "--override-arch", "amd64", "--config", "oci:"+dir+":v1")
	var cfg struct {
		Config struct {
			Cmd []string
			Env []string
		} `json:"config"`
	}
	assert.NilError(t, json.Unmarshal([]byte(config), &cfg))
	assert.DeepEqual(t, cfg.Config.Cmd, []string{"bash"}) // the shell meta-package
	assert.Assert(t, strings.Contains(strings.Join(cfg.Config.Env, " "), "SSL_CERT_FILE="), cfg.Config.Env)

	// umoci picks the manifest by platform from a copy with one platform.
	single := filepath.Join(t.TempDir(), "single")
	testenv.Run(t, "skopeo", "copy", "--override-arch", "amd64", "oci:"+dir+":v1", "oci:"+single+":v1")
	bundle := filepath.Join(t.TempDir(), "bundle")
	testenv.Run(t, "umoci", "unpack", "--rootless", "--image", single+":v1", bundle)
	for _, prog := range []string{"bash", "hello"} {
		_, err := os.Stat(filepath.Join(bundle, "rootfs", "bin", prog))
		assert.NilError(t, err, "bin/%s missing from the image", prog)
	}
}

// TestBuildDockerArchive loads a single-platform archive into podman and
// runs a program from it; the image is named by --image and --tags.
func TestBuildDockerArchive(t *testing.T) {
	testenv.Require(t, "nix", "podman", "runc")
	file := filepath.Join(t.TempDir(), "hello.tar")
	r := run(t, nil, "build", "--nixpkgs", standIn(), "--output", "docker:"+file,
		"--image", "registry.example/team/hello", "--tags", "v1", "hello")
	assert.Equal(t, r.code, 0, r.stderr)

	base := podmanBase(t)
	loaded := testenv.Run(t, "podman", append(base, "load", "-i", file)...)
	assert.Assert(t, strings.Contains(loaded, "Loaded image: registry.example/team/hello:v1"), loaded)
	image := strings.TrimSpace(loaded[strings.LastIndex(loaded, " ")+1:])
	out := testenv.Run(t, "podman", append(base, "run", "--rm", "--network=none",
		"--ulimit", "nofile=20000:20000", "--ulimit", "nproc=1000:1000", image, "hello")...)
	assert.Equal(t, strings.TrimSpace(out), "Hello, world!")
}

// TestBuildDockerArchiveNames: a :TAG on --image adds a tag to the
// archive, as it does to a push; each layer file is named by its
// compression, and skopeo reads the archive in both.
func TestBuildDockerArchiveNames(t *testing.T) {
	testenv.Require(t, "nix", "skopeo", "umoci", "tar")
	for _, tc := range []struct{ compression, ext string }{{"gzip", ".tar.gz"}, {"zstd", ".tar.zst"}} {
		file := filepath.Join(t.TempDir(), "hi.tar")
		r := run(t, nil, "build", "--nixpkgs", standIn(), "--output", "docker:"+file,
			"--compression", tc.compression, "--image", "example/hi:v1", "--tags", "extra", "hello")
		assert.Equal(t, r.code, 0, r.stderr)

		var manifest []struct{ RepoTags, Layers []string }
		assert.NilError(t, json.Unmarshal([]byte(testenv.Run(t, "tar", "-xOf", file, "manifest.json")), &manifest))
		assert.Equal(t, len(manifest), 1)
		assert.DeepEqual(t, manifest[0].RepoTags, []string{"example/hi:v1", "example/hi:extra"})
		assert.Assert(t, len(manifest[0].Layers) > 1)
		for _, l := range manifest[0].Layers {
			assert.Assert(t, strings.HasSuffix(l, tc.ext), "%s layer file %s", tc.compression, l)
		}

		layout := filepath.Join(t.TempDir(), "layout")
		testenv.Run(t, "skopeo", "copy", "docker-archive:"+file, "oci:"+layout+":v1")
		bundle := filepath.Join(t.TempDir(), "bundle")
		testenv.Run(t, "umoci", "unpack", "--rootless", "--image", layout+":v1", bundle)
		_, err := os.Stat(filepath.Join(bundle, "rootfs", "bin", "hello"))
		assert.NilError(t, err, "%s: bin/hello missing from the image", tc.compression)
	}
}
