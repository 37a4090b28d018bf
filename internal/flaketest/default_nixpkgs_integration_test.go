//go:build integration

package flaketest

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/nixery-action/nixery-action/internal/testenv"
	"github.com/nixery-action/nixery-action/pkg/storepath"
)

// The same inputs give the same image whichever way nixery was obtained:
// the flake's package (nix run, the action on a branch or after a failed
// download) and the release binary (scripts/build-release.sh, the
// action's @v1) both take flake.lock's github pin as their default
// nixpkgs and record it, with its revision; both read its tree from the
// store, offline.
func TestDefaultNixpkgsSameEitherWay(t *testing.T) {
	testenv.Require(t, "nix", "git", "go", "jq", "bash")
	f := newFlake(t)
	narHash, lastModified := f.standInWithImages(t)
	pin := f.pinGitHub(t, narHash, lastModified)

	out := f.build(t, ".#nixery")
	flakeBin := filepath.Join(out, "bin", "nixery")
	// The package keeps the pinned tree in its closure, so the default
	// works offline wherever nixery is installed.
	src, ok := storepath.Source(pin.narHash)
	assert.Assert(t, ok, pin.narHash)
	assert.Assert(t, is.Contains(strings.Fields(f.nix(t, "path-info", "--recursive", out)), src))

	cmd := []string{"bash", "scripts/build-release.sh", filepath.Join(t.TempDir(), "dist")}
	stdout, stderr, err := runErr(f.dir, []string{"RELEASE_TARGETS=linux/" + runtime.GOARCH}, cmd[0], cmd[1:]...)
	assert.NilError(t, err, "scripts/build-release.sh:\n%s", tail(stderr, 30))
	assert.Assert(t, is.Contains(stdout, "nixery-linux-"+runtime.GOARCH))
	releaseBin := filepath.Join(cmd[2], "nixery-linux-"+runtime.GOARCH)

	want := "github:NixOS/nixpkgs/" + pin.rev + "?narHash=" + strings.ReplaceAll(url.QueryEscape(pin.narHash), "%2F", "/")
	var digests []string
	for _, bin := range []string{flakeBin, releaseBin} {
		digest, annots := buildDefault(t, bin)
		assert.Equal(t, annots["org.nixery-action.nixpkgs"], want, bin)
		assert.Equal(t, annots["org.nixery-action.nixpkgs.revision"], pin.rev, bin)
		digests = append(digests, digest)
	}
	assert.Equal(t, digests[0], digests[1], "the flake's nixery and the release binary built different indexes")
}

// pin is a nixpkgs as flake.lock pins it.
type pin struct{ rev, narHash string }

// standInWithImages is a copy of the flake's stand-in nixpkgs that also
// has the packages images are made of (testdata/nixpkgs), in the store;
// it returns the copy's narHash and lastModified.
func (f *flake) standInWithImages(t *testing.T) (narHash string, lastModified int64) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "nixpkgs")
	copyDir(t, strings.TrimPrefix(f.nixpkgs, "path:"), dir)
	copyDir(t, filepath.Join(repoRoot(t), "testdata", "nixpkgs"), filepath.Join(dir, "images"))
	flakeNix := readFile(t, filepath.Join(dir, "flake.nix"))
	const packagesFor = "packagesFor = system: import ./packages.nix { inherit system host; };"
	assert.Assert(t, is.Contains(flakeNix, packagesFor), "testdata/flake-nixpkgs/flake.nix changed: update this test")
	withImages := `packagesFor = system: import ./packages.nix { inherit system host; }
        // (if builtins.elem system [ "x86_64-linux" "aarch64-linux" ] then import ./images/packages.nix { inherit system; } else { });`
	assert.NilError(t, os.WriteFile(filepath.Join(dir, "flake.nix"), []byte(strings.Replace(flakeNix, packagesFor, withImages, 1)), 0o644))

	var meta struct {
		Locked struct {
			NarHash      string `json:"narHash"`
			LastModified int64  `json:"lastModified"`
		} `json:"locked"`
	}
	assert.NilError(t, json.Unmarshal([]byte(f.nix(t, "flake", "metadata", "--json", "path:"+dir)), &meta))
	return meta.Locked.NarHash, meta.Locked.LastModified
}

// pinGitHub locks the repository's nixpkgs to a github commit whose tree
// is the one with narHash, as flake.lock pins the real one, and commits
// it. Nix takes the tree from the store: the commit is made up.
func (f *flake) pinGitHub(t *testing.T, narHash string, lastModified int64) pin {
	t.Helper()
	p := pin{rev: "0123456789abcdef0123456789abcdef01234567", narHash: narHash}
	lock := fmt.Sprintf(`{
  "nodes": {
    "nixpkgs": {
      "locked": {"lastModified": %d, "narHash": %q, "owner": "NixOS", "repo": "nixpkgs", "rev": %q, "type": "github"},
      "original": {"owner": "NixOS", "ref": "nixos-26.05", "repo": "nixpkgs", "type": "github"}
    },
    "root": {"inputs": {"nixpkgs": "nixpkgs"}}
  },
  "root": "root",
  "version": 7
}
`, lastModified, narHash, p.rev)
	assert.NilError(t, os.WriteFile(filepath.Join(f.dir, "flake.lock"), []byte(lock), 0o644))
	run(t, f.dir, nil, "git", "-c", "user.name=flaketest", "-c", "user.email=flaketest@localhost", "-c", "commit.gpgsign=false",
		"commit", "-q", "-m", "github nixpkgs", "flake.lock")
	return p
}

// buildDefault builds hello with nixery's default nixpkgs into an OCI
// layout and returns the index's digest and annotations.
func buildDefault(t *testing.T, nixery string) (string, map[string]string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "layout")
	_, stderr, err := runErr(t.TempDir(), []string{"NIX_CONFIG=" + testenv.NixConfig}, nixery, "build", "--output", "oci:"+dir, "hello")
	assert.NilError(t, err, "%s build:\n%s", nixery, tail(stderr, 30))
	var top struct {
		Manifests []struct{ Digest string }
	}
	assert.NilError(t, json.Unmarshal([]byte(readFile(t, filepath.Join(dir, "index.json"))), &top))
	assert.Assert(t, is.Len(top.Manifests, 1))
	digest := top.Manifests[0].Digest
	var idx struct{ Annotations map[string]string }
	blob := filepath.Join(dir, "blobs", strings.Replace(digest, ":", "/", 1))
	assert.NilError(t, json.Unmarshal([]byte(readFile(t, blob)), &idx))
	return digest, idx.Annotations
}
