package main

import (
	"bytes"
	"path/filepath"
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
	assert.Check(t, is.Contains(note, "ignoring mode "))
	ref, _, err = cacheFromRef("ghcr.io/o/x:v1")
	assert.NilError(t, err)
	assert.Equal(t, ref, "ghcr.io/o/x:v1")

	code, _, stderr := runCLI(t, "build", "--nixpkgs", "path:/nonexistent", "--output", "oci:"+t.TempDir()+"/o", "--cache-from", "type=gha", "hello")
	assert.Equal(t, code, 2, stderr)
	assert.Check(t, is.Contains(stderr, `--cache-from type=gha (keys type): nixery's cache-from takes image references`), stderr)
}

// A --cache-from value may hold another cache's credentials: messages name
// its type and keys, never their values, and a reference's user and
// password are refused without being shown.
func TestCacheFromHidesSecrets(t *testing.T) {
	_, _, err := cacheFromRef("type=s3,region=us-east-1,bucket=b,access_key_id=AKIAEXAMPLE,secret_access_key=S3SecretKey99")
	assert.ErrorContains(t, err, "--cache-from type=s3 (keys type,region,bucket,access_key_id,secret_access_key)")
	assert.Check(t, !strings.Contains(err.Error(), "S3SecretKey99") && !strings.Contains(err.Error(), "AKIAEXAMPLE"), err)

	_, _, err = cacheFromRef("mode=max,secret_access_key=S3SecretKey97")
	assert.ErrorContains(t, err, "with keys mode,secret_access_key names no image")
	assert.Check(t, !strings.Contains(err.Error(), "S3SecretKey97"), err)

	ref, note, err := cacheFromRef("type=registry,ref=R:latest,secret_access_key=S3SecretKey98")
	assert.NilError(t, err)
	assert.Equal(t, ref, "R:latest")
	assert.Equal(t, note, "cache-from R:latest: ignoring secret_access_key (nixery reuses the layers of the image, nothing else)")

	for _, in := range []string{"type=registry,ref=u:RefTok1@reg.example/x:v1,mode=max", "u:RefTok1@reg.example/x:v1", "https://u:RefTok1@reg.example/x"} {
		_, _, err = cacheFromRef(in)
		assert.ErrorContains(t, err, "REDACTED@reg.example/x", in)
		assert.Check(t, !strings.Contains(err.Error(), "RefTok1"), "%s: %v", in, err)
	}
	for _, in := range []string{"reg.example/x@sha256:" + strings.Repeat("a", 64), "x@sha256:" + strings.Repeat("a", 64)} {
		ref, _, err = cacheFromRef(in)
		assert.NilError(t, err, in)
		assert.Equal(t, ref, in)
	}

	code, _, stderr := runCLI(t, "build", "--nixpkgs", "path:/nonexistent", "--output", "oci:"+t.TempDir()+"/o", "--cache-from", "type=s3,region=us-east-1,bucket=b,secret_access_key=S3SecretKey99", "hello")
	assert.Equal(t, code, 2, stderr)
	assert.Check(t, !strings.Contains(stderr, "S3SecretKey99"), stderr)
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

// A merge whose digests came out empty (a missing artifact: cat digests/*
// prints nothing) with no packages is told both inputs are empty, not
// only that packages is.
func TestActionEmptyMergeDigests(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{
		"GITHUB_OUTPUT": filepath.Join(dir, "output"), "GITHUB_STEP_SUMMARY": filepath.Join(dir, "summary"),
		"HOME": dir, "RUNNER_TEMP": dir,
		"INPUT_IMAGE": "127.0.0.1:1/ok/img", "INPUT_TAGS": "v1", "INPUT_MERGE-DIGESTS": "", "INPUT_PACKAGES": "",
	}
	var stdout bytes.Buffer
	err := runAction(envOf(env), &stdout)
	assert.ErrorContains(t, err, "the packages and merge-digests inputs are both empty: one is needed")
	assert.ErrorContains(t, err, "if merge-digests was set, it came out empty")
	assert.Check(t, is.Contains(stdout.String(), "::error title=nixery::the packages and merge-digests inputs are both empty"))
}
