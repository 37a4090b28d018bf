//go:build integration

package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/nixery-action/nixery-action/internal/testenv"
)

// pushResult is the part of `nixery build --json` the tests read.
type pushResult struct {
	Packed    int      `json:"packed"`
	Reused    int      `json:"reused"`
	Image     string   `json:"image"`
	Digest    string   `json:"digest"`
	Tags      []string `json:"tags"`
	Manifests []struct {
		Platform string `json:"platform"`
		Digest   string `json:"digest"`
		Layers   []struct {
			Digest   string   `json:"digest"`
			Size     int64    `json:"size"`
			Uploaded bool     `json:"uploaded"`
			Packages []string `json:"packages"`
		} `json:"layers"`
	} `json:"manifests"`
}

func decodeResult(t *testing.T, r result) pushResult {
	t.Helper()
	assert.Equal(t, r.code, 0, "nixery failed: %s", r.stderr)
	var res pushResult
	assert.NilError(t, json.Unmarshal([]byte(r.stdout), &res), "stdout: %s", r.stdout)
	return res
}

// TestBuildPushTwoPlatforms is the main job end to end: two platforms of
// real Nix closures pushed to a real registry, then read back by skopeo,
// umoci, podman and go-containerregistry's validator.
func TestBuildPushTwoPlatforms(t *testing.T) {
	testenv.Require(t, "nix", "docker-registry", "skopeo", "umoci", "podman", "runc")
	host := testenv.StartRegistry(t)
	repo := host + "/e2e/hello"

	first := decodeResult(t, run(t, nil, "build", "--nixpkgs", standIn(),
		"--platforms", "linux/amd64,linux/arm64", "--image", repo, "--tags", "v1,latest",
		"--json", "hello", "busybox"))
	assert.Assert(t, strings.HasPrefix(first.Digest, "sha256:"))
	assert.Equal(t, len(first.Manifests), 2)

	// skopeo reads one index with both platforms under each tag.
	for _, tag := range []string{"v1", "latest"} {
		raw := testenv.Run(t, "skopeo", "inspect", "--tls-verify=false", "--raw", "docker://"+repo+":"+tag)
		var index struct {
			MediaType string `json:"mediaType"`
			Manifests []struct {
				Digest   string `json:"digest"`
				Platform struct {
					OS, Architecture, Variant string
				} `json:"platform"`
			} `json:"manifests"`
		}
		assert.NilError(t, json.Unmarshal([]byte(raw), &index))
		assert.Equal(t, index.MediaType, "application/vnd.oci.image.index.v1+json")
		var platforms []string
		for _, m := range index.Manifests {
			platforms = append(platforms, m.Platform.OS+"/"+m.Platform.Architecture+"/"+m.Platform.Variant)
		}
		assert.DeepEqual(t, platforms, []string{"linux/amd64/", "linux/arm64/v8"})
	}

	// go-containerregistry's validator reads every blob back.
	ref, err := name.ParseReference(repo+":v1", name.Insecure)
	assert.NilError(t, err)
	idx, err := remote.Index(ref)
	assert.NilError(t, err)
	digest, err := idx.Digest()
	assert.NilError(t, err)
	assert.Equal(t, digest.String(), first.Digest)
	assert.NilError(t, validate.Index(idx))

	// umoci unpacks the amd64 image into the expected file tree.
	layout := filepath.Join(t.TempDir(), "oci")
	testenv.Run(t, "skopeo", "copy", "--src-tls-verify=false", "--override-arch", "amd64",
		"docker://"+repo+":v1", "oci:"+layout+":v1")
	bundle := filepath.Join(t.TempDir(), "bundle")
	testenv.Run(t, "umoci", "unpack", "--rootless", "--image", layout+":v1", bundle)
	rootfs := filepath.Join(bundle, "rootfs")
	target, err := os.Readlink(filepath.Join(rootfs, "bin", "hello"))
	assert.NilError(t, err)
	assert.Assert(t, strings.HasPrefix(target, "/nix/store/") && strings.HasSuffix(target, "-hello/bin/hello"), target)
	info, err := os.Stat(filepath.Join(rootfs, target))
	assert.NilError(t, err)
	assert.Assert(t, info.Mode()&0o111 != 0, "hello is not executable: %v", info.Mode())
	tmp, err := os.Stat(filepath.Join(rootfs, "tmp"))
	assert.NilError(t, err)
	assert.Equal(t, tmp.Mode()&(os.ModeSticky|os.ModePerm), os.ModeSticky|0o777)
	certs, err := os.Readlink(filepath.Join(rootfs, "etc", "ssl", "certs", "ca-certificates.crt"))
	assert.NilError(t, err)
	assert.Assert(t, is.Contains(certs, "-cacert"))

	// podman runs a program of the closure.
	out := podmanRun(t, repo+":v1", "hello")
	assert.Equal(t, strings.TrimSpace(out), "Hello, world!")

	// The same inputs in another order give the same index, and nothing is
	// uploaded again.
	second := decodeResult(t, run(t, nil, "build", "--nixpkgs", standIn(),
		"--platforms", "linux/arm64,linux/amd64", "--image", repo, "--tags", "v2",
		"--json", "busybox", "hello"))
	assert.Equal(t, second.Digest, first.Digest)
	for _, m := range second.Manifests {
		for _, l := range m.Layers {
			assert.Assert(t, !l.Uploaded, "%s layer %s uploaded again", m.Platform, l.Digest)
		}
	}

	// With the registry as the cache, a rebuild packs nothing at all, and
	// a cache that is not there changes nothing but the time.
	warm := decodeResult(t, run(t, nil, "build", "--nixpkgs", standIn(),
		"--platforms", "linux/amd64,linux/arm64", "--image", repo, "--tags", "v1",
		"--cache-from", host+"/e2e/nothing-here:v1", "--json", "hello", "busybox"))
	assert.Equal(t, warm.Digest, first.Digest)
	assert.Equal(t, warm.Packed, 0)
	assert.Equal(t, warm.Reused, first.Packed)
	cold := decodeResult(t, run(t, nil, "build", "--nixpkgs", standIn(),
		"--platforms", "linux/amd64,linux/arm64", "--image", repo, "--tags", "v1",
		"--no-cache", "--json", "hello", "busybox"))
	assert.Equal(t, cold.Digest, first.Digest)
	assert.Equal(t, cold.Reused, 0)
}

// podmanRun runs a command in an image with podman, in a private store.
func podmanRun(t *testing.T, image string, args ...string) string {
	t.Helper()
	base := podmanBase(t)
	runArgs := append(base, "run", "--rm", "--tls-verify=false", "--network=none",
		"--ulimit", "nofile=20000:20000", "--ulimit", "nproc=1000:1000", image)
	return testenv.Run(t, "podman", append(runArgs, args...)...)
}

// podmanBase gives podman a store of its own, removed after the test. Its
// run root must be a short path (podman refuses more than 50 characters).
func podmanBase(t *testing.T) []string {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "pm")
	assert.NilError(t, err)
	base := []string{
		"--root", filepath.Join(dir, "root"), "--runroot", filepath.Join(dir, "run"),
		"--runtime", "/usr/sbin/runc", "--cgroup-manager=cgroupfs", "--storage-driver=vfs",
		"--events-backend=none",
	}
	t.Cleanup(func() {
		testenv.Run(t, "podman", append(base, "system", "reset", "--force")...)
		os.RemoveAll(dir)
	})
	return base
}
