//go:build integration

package e2e

import (
	"regexp"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/nixery-action/nixery-action/internal/testenv"
)

// retryLine is a retry the CLI tells: which blob, and which try is next.
var retryLine = regexp.MustCompile(`push to [^ ]+: blob (sha256:[0-9a-f]{12})…: registry answered 500 Internal Server Error \(UNKNOWN: unknown error\); retrying in \d+s \((\d)/5\)`)

// TestPushToFullRegistry: a registry that answers 500 to every blob
// upload (as one whose disk is full does), with the default backoff:
// the build fails within 30 s, having told each retry as it came; each
// blob's upload is opened at most 5 times; the error says how many tries
// failed and what to check; no tag is written.
func TestPushToFullRegistry(t *testing.T) {
	testenv.Require(t, "nix", "docker-registry")
	host, upstream, opened := testenv.StartFullRegistry(t)

	start := time.Now()
	r := run(t, nil, "build", "--nixpkgs", standIn(), "--image", host+"/me/y", "--tags", "v1", "hello")
	took := time.Since(start)
	t.Logf("failed after %s, %d uploads opened; stderr:\n%s", took, opened.Load(), r.stderr)
	assert.Equal(t, r.code, 1, r.stderr)
	assert.Check(t, took < 30*time.Second, "took %s", took)
	assert.Check(t, is.Contains(r.stderr, "nixery build: push to "+host+"/me/y: registry answered 500 Internal Server Error (UNKNOWN: unknown error) 5 times; check the registry (its logs, its free disk space)\n"))

	retries := map[string]int{} // blob: lines
	for _, m := range retryLine.FindAllStringSubmatch(r.stderr, -1) {
		retries[m[1]]++
	}
	assert.Assert(t, len(retries) > 0, "no retry told: %s", r.stderr)
	for blob, n := range retries {
		assert.Check(t, n <= 4, "blob %s: %d retries", blob, n)
	}
	assert.Check(t, opened.Load() <= int32(5*len(retries)), "%d uploads opened for %d blobs", opened.Load(), len(retries))
	assert.Check(t, is.Equal(testenv.CheckTags(t, upstream, "me/y"), 0), "the failed push left a tag")
}

// TestPushToSilentRegistry: a registry that takes the connection and
// never answers is reported within --registry-timeout, saying so and
// what to check.
func TestPushToSilentRegistry(t *testing.T) {
	testenv.Require(t, "nix")
	image := testenv.SilentListener(t) + "/me/x"
	start := time.Now()
	r := run(t, nil, "build", "--nixpkgs", standIn(), "--image", image, "--registry-timeout", "2s", "hello")
	took := time.Since(start)
	assert.Equal(t, r.code, 1, r.stderr)
	assert.Check(t, is.Contains(r.stderr, "nixery build: push to "+image+": the registry did not answer within 2s; check --image, and any proxy or firewall in between (the wait is --registry-timeout, at most 20s)\n"))
	assert.Check(t, took < 15*time.Second, "took %s", took)
}
