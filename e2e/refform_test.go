//go:build integration

package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// TestImageRefForm: a repository written as a URL, with a transport, or
// as a registry alone is refused before any work, in one line that says
// what to write, wherever a repository is given. Before, a URL's scheme
// was taken for the registry's host: --push=false printed
// https://ghcr.io/...@sha256:..., and a docker archive got a name that
// podman load refuses.
func TestImageRefForm(t *testing.T) {
	dir := t.TempDir()
	archive := filepath.Join(dir, "d.tar")
	layout := filepath.Join(dir, "layout")
	digest := "sha256:" + strings.Repeat("0", 64)
	nixpkgs := standIn()
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"URL, not pushed", []string{"build", "--nixpkgs", nixpkgs, "--push=false", "--image", "https://ghcr.io/me/tools", "hello"},
			`nixery build: --image "https://ghcr.io/me/tools": give REGISTRY/NAME, not a URL: drop "https://"`},
		{"URL for a docker archive", []string{"build", "--nixpkgs", nixpkgs, "--output", "docker:" + archive, "--image", "https://ghcr.io/me/tools", "hello"},
			`nixery build: --image "https://ghcr.io/me/tools": give REGISTRY/NAME, not a URL: drop "https://"`},
		{"URL pushed", []string{"build", "--nixpkgs", nixpkgs, "--image", "http://127.0.0.1:5000/me/tools", "hello"},
			`nixery build: --image "http://127.0.0.1:5000/me/tools": give REGISTRY/NAME, not a URL: drop "http://"`},
		{"layout as the image", []string{"build", "--nixpkgs", nixpkgs, "--image", "oci:" + layout, "hello"},
			`nixery build: --image "oci:` + layout + `": give REGISTRY/NAME, not a transport (oci:); --output takes oci:DIR`},
		{"archive as the image", []string{"build", "--nixpkgs", nixpkgs, "--image", "docker-archive:" + archive, "hello"},
			`--output takes docker:FILE.tar`},
		{"URL in the tags", []string{"build", "--nixpkgs", nixpkgs, "--tags", "docker://ghcr.io/me/tools:v1", "hello"},
			`nixery build: --tags "docker://ghcr.io/me/tools:v1": give REGISTRY/NAME, not a URL: drop "docker://"`},
		{"URL as a cache", []string{"build", "--nixpkgs", nixpkgs, "--push=false", "--cache-from", "https://ghcr.io/me/tools:v1", "hello"},
			`nixery build: --cache-from "https://ghcr.io/me/tools:v1": give REGISTRY/NAME, not a URL: drop "https://"`},
		{"registry alone", []string{"build", "--nixpkgs", nixpkgs, "--image", "127.0.0.1:5000", "hello"},
			`nixery build: bad image reference "127.0.0.1:5000" names a registry but no repository: add the repository: 127.0.0.1:5000/NAME`},
		{"merge into a URL", []string{"merge", "--image", "https://ghcr.io/me/tools", digest},
			`nixery merge: --image "https://ghcr.io/me/tools": give REGISTRY/NAME, not a URL: drop "https://"`},
		{"merge into a registry alone", []string{"merge", "--image", "ghcr.io", digest},
			`add the repository: ghcr.io/NAME`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, nil, tc.args...)
			assert.Equal(t, r.code, 2, "stdout: %s\nstderr: %s", r.stdout, r.stderr)
			assert.Check(t, is.Contains(errorLine(r.stderr), tc.want), r.stderr)
			assert.Check(t, is.Equal(r.stdout, ""))
			_, err := os.Stat(archive)
			assert.Check(t, os.IsNotExist(err), "a docker archive was written")
		})
	}

	// The action's image input goes through the same check, named as the
	// input.
	runner := t.TempDir()
	r := run(t, runnerEnv(runner, "INPUT_PACKAGES=hello", "INPUT_NIXPKGS="+standIn(), "INPUT_PUSH=false",
		"INPUT_IMAGE=https://ghcr.io/me/tools"), "action")
	assert.Check(t, r.code != 0)
	assert.Check(t, is.Contains(r.stdout+r.stderr, `the image input "https://ghcr.io/me/tools": give REGISTRY/NAME, not a URL: drop "https://"`))
}
