//go:build integration

package e2e

import (
	"path/filepath"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/nixery-action/nixery-action/internal/hostile"
	"github.com/nixery-action/nixery-action/internal/testenv"
	"github.com/nixery-action/nixery-action/pkg/image"
)

// TestHostileCacheRegistries builds against an authenticated registry
// while reading --cache-from images from hostile registries on other
// ports: the password (given on standard input) reaches none of them, and
// each misbehaviour costs the build nothing but a note.
func TestHostileCacheRegistries(t *testing.T) {
	testenv.Require(t, "nix", "docker-registry", "htpasswd")
	host, user, password := testenv.StartAuthRegistry(t)
	askAuth := testenv.StartHostile(t, hostile.Behaviour{RequireAuth: true})
	loop := testenv.StartHostile(t, hostile.Behaviour{RedirectLoop: true})
	big := testenv.StartHostile(t, hostile.Behaviour{HugeConfig: 1 << 40, EndlessManifest: true})
	big.ManifestList("c/list", "big", 4000, image.AnnotationLayerCache)
	evil := testenv.StartHostile(t, hostile.Behaviour{ErrorMessage: "no\n::set-output name=digest::sha256:evil"})

	r := runStdin(t, password+"\n", []string{"DOCKER_CONFIG=" + t.TempDir()}, "build", "--nixpkgs", standIn(),
		"--image", host+"/sec/app", "--tags", "v1", "--username", user, "--password-stdin",
		"--cache-from", askAuth.Host+"/c/img:v1", "--cache-from", loop.Host+"/c/img:v1",
		"--cache-from", big.Host+"/c/img:huge", "--cache-from", big.Host+"/c/img:endless",
		"--cache-from", big.Host+"/c/list:big", "--cache-from", evil.Host+"/c/img:v1", "hello")
	assert.Equal(t, r.code, 0, r.stderr)
	for _, reg := range []*hostile.Registry{askAuth, loop, big, evil} {
		for _, a := range reg.Authorizations() {
			assert.Assert(t, !strings.Contains(a, password), "%s was sent %q", reg.Host, a)
		}
	}
	assert.Assert(t, askAuth.Requests() > 0)
	assert.Assert(t, is.Contains(r.stderr, "cache "+askAuth.Host+"/c/img:v1: 401 Unauthorized"))
	assert.Assert(t, is.Contains(r.stderr, "redirected more than 10 times"))
	assert.Assert(t, is.Contains(r.stderr, "declares 1099511627776 bytes"))
	assert.Assert(t, is.Contains(r.stderr, "more than the 4194304 bytes allowed"))
	assert.Assert(t, is.Contains(r.stderr, "cache "+big.Host+"/c/list:big: 64 layers"))
	for _, line := range strings.Split(r.stderr+r.stdout, "\n") {
		assert.Assert(t, !strings.HasPrefix(strings.TrimSpace(line), "::"), "line %q", line)
	}
	assert.Assert(t, !strings.Contains(r.stdout+r.stderr, password))
}

// TestNixeryPasswordWithoutRegistry: NIXERY_PASSWORD set in the
// environment does not stop a build that uses no registry; with one, a
// missing --username is named.
func TestNixeryPasswordWithoutRegistry(t *testing.T) {
	testenv.Require(t, "nix")
	env := []string{"NIXERY_PASSWORD=some-secret-value"}
	dir := filepath.Join(t.TempDir(), "oci")
	r := run(t, env, "build", "--nixpkgs", standIn(), "--output", "oci:"+dir, "hello")
	assert.Equal(t, r.code, 0, r.stderr)

	r = run(t, env, "build", "--nixpkgs", standIn(), "--image", "127.0.0.1:1/x", "hello")
	assert.Equal(t, r.code, 2, r.stderr)
	assert.Assert(t, is.Contains(r.stderr, "NIXERY_PASSWORD is set but --username is not"))
	assert.Assert(t, !strings.Contains(r.stderr, "some-secret-value"))
}
