package main

import (
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/nixery-action/nixery-action/pkg/build"
	"github.com/nixery-action/nixery-action/pkg/publish"
	"github.com/nixery-action/nixery-action/pkg/registry"
)

// Registry hints are added once, in the action's words in action mode.
func TestHintsOnceInActionWords(t *testing.T) {
	plain := &registry.RegistryError{Registry: "r.example", Kind: registry.PlainHTTP}
	none := func(string) bool { return false }
	once := withHints(withHints(plain, actionInput, true), none, false)
	assert.Equal(t, once.Error(), "; set insecure: true to allow that")
	denied := &registry.RegistryError{Registry: "ghcr.io", Kind: registry.Denied, PullRequestToken: true}
	assert.Check(t, is.ErrorContains(withHints(denied, actionInput, true), "; build pull requests without pushing: push: ${{ github.event_name != 'pull_request' }}"))
	assert.Check(t, is.ErrorContains(withHints(denied, func(f string) bool { return f == "push" }, false), "(--push=false)"))
	assert.Check(t, is.ErrorContains(inputWords(plainError("--push=false writes nothing, --output too, --level 3, --username/--password")),
		"push: false writes nothing, the output input too, --level 3, the username and password inputs"))
}

type plainError string

func (e plainError) Error() string { return string(e) }

// build-push-action's cache-from syntax gives its ref; other cache types
// are refused in one line.
func TestCacheFromRef(t *testing.T) {
	ref, note, err := cacheFromRef("type=registry,ref=ghcr.io/o/x:v1")
	assert.NilError(t, err)
	assert.Equal(t, ref, "ghcr.io/o/x:v1")
	assert.Equal(t, note, "")
	ref, note, err = cacheFromRef("type=registry,ref=ghcr.io/o/x:v1,mode=max")
	assert.NilError(t, err)
	assert.Equal(t, ref, "ghcr.io/o/x:v1")
	assert.Check(t, is.Contains(note, "ignoring mode=max"))
	ref, _, err = cacheFromRef("ghcr.io/o/x:v1")
	assert.NilError(t, err)
	assert.Equal(t, ref, "ghcr.io/o/x:v1")

	code, _, stderr := runCLI(t, "build", "--nixpkgs", "path:/nonexistent", "--output", "oci:"+t.TempDir()+"/o", "--cache-from", "type=gha", "hello")
	assert.Equal(t, code, 2, stderr)
	assert.Check(t, is.Contains(stderr, `--cache-from "type=gha": nixery's cache-from takes image references`), stderr)
}

// Not pushed, the summary says so, claims no layer was in the registry,
// and without an image is headed by the packages; the image output is
// then empty.
func TestSummaryNotPushed(t *testing.T) {
	res := &build.Result{Result: &publish.Result{
		Digest: "sha256:" + strings.Repeat("1", 64), Tags: []string{"latest"},
		Manifests: []publish.ManifestResult{{Platform: "linux/amd64", Layers: []publish.LayerResult{{Size: 10, Packages: []string{"hello"}}}}},
	}}
	md := summary(res, packageNames("hello,\ngit"))
	assert.Check(t, strings.HasPrefix(md, "### hello git\n"), md)
	assert.Check(t, is.Contains(md, "not pushed (push: false)"))
	assert.Check(t, !strings.Contains(md, "already present"), md)
	assert.Check(t, !strings.Contains(md, "@sha256"), md)
	assert.Equal(t, imageRef(res.Result), "")

	// Written to an output, the image is no NAME@DIGEST either.
	for _, out := range []string{"oci:/tmp/x/layout", "docker:/tmp/x/img.tar"} {
		written := &publish.Result{Image: out, Digest: res.Digest, Pushed: true}
		assert.Equal(t, imageRef(written), "", out)
	}
	pushed := &publish.Result{Image: "ghcr.io/me/app", Digest: res.Digest, Reference: "ghcr.io/me/app@" + res.Digest, Pushed: true}
	assert.Equal(t, imageRef(pushed), pushed.Reference)
}
