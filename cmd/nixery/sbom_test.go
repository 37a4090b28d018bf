package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestSBOMFileName(t *testing.T) {
	for _, tc := range []struct {
		file, platform string
		n              int
		want           string
	}{
		{"out/sbom.cdx.json", "linux/amd64", 1, "out/sbom.cdx.json"},
		{"out/sbom.cdx.json", "linux/amd64", 2, "out/sbom.linux-amd64.cdx.json"},
		{"out/sbom.cdx.json", "linux/arm64/v8", 2, "out/sbom.linux-arm64-v8.cdx.json"},
		{"sbom.json", "linux/arm/v7", 3, "sbom.linux-arm-v7.json"},
		{"a.b/sbom", "linux/386", 2, "a.b/sbom.linux-386"},
		{".sbom.json", "linux/amd64", 2, ".sbom.linux-amd64.json"},
		{".sbom", "linux/amd64", 2, ".sbom.linux-amd64"},
	} {
		assert.Check(t, is.Equal(sbomFileName(tc.file, tc.platform, tc.n), tc.want), "%+v", tc)
	}
}

// Bad --sbom and --sbom-file combinations fail before any work, as
// usage errors of one line.
func TestSBOMFlagErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--sbom=false", "--sbom-file", filepath.Join(dir, "x.json")}, "--sbom-file needs the SBOM that --sbom=false turns off"},
		{[]string{"--sbom-file", filepath.Join(dir, "missing", "x.json")}, "the directory " + filepath.Join(dir, "missing") + " does not exist"},
		{[]string{"--sbom-file", dir}, "is a directory: name a file in it"},
	} {
		args := append([]string{"build", "--nixpkgs", "nixpkgs", "--push=false"}, tc.args...)
		code, _, stderr := runCLI(t, append(args, "hello")...)
		assert.Check(t, is.Equal(code, 2), "%v: %s", tc.args, stderr)
		assert.Check(t, is.Contains(stderr, tc.want))
	}
}

// A --sbom-file in a directory that cannot be written in fails before
// any build, not after the image is pushed.
func TestSBOMFileNotWritable(t *testing.T) {
	// /proc takes no new files, even from root.
	code, _, stderr := runCLI(t, "build", "--nixpkgs", "nixpkgs", "--push=false", "--sbom-file", "/proc/sbom.json", "hello")
	assert.Check(t, is.Equal(code, 1), stderr)
	assert.Check(t, is.Contains(stderr, "nixery build: --sbom-file /proc/sbom.json: cannot write in /proc ("), stderr)
	assert.Check(t, is.Contains(stderr, "): name a file in a directory you can write to"), stderr)
}

// A failed action run leaves no SBOM directory in RUNNER_TEMP: it sets
// no outputs, so nothing would name it. (The successful run's outputs
// name the file in it: e2e's TestActionSBOM reads it.)
func TestActionFailureRemovesSBOMDir(t *testing.T) {
	temp := t.TempDir()
	var stdout bytes.Buffer
	// No nixpkgs input: refused after the directory is made, before Nix.
	err := runAction(envOf(map[string]string{
		"RUNNER_TEMP":    temp,
		"GITHUB_OUTPUT":  filepath.Join(t.TempDir(), "output"),
		"INPUT_PACKAGES": "hello",
		"INPUT_IMAGE":    "127.0.0.1:1/me/x",
		"INPUT_SBOM":     "true",
	}), &stdout)
	assert.ErrorContains(t, err, "no nixpkgs to take packages from")
	left, readErr := os.ReadDir(temp)
	assert.NilError(t, readErr)
	assert.Check(t, is.Len(left, 0), "left in RUNNER_TEMP: %v", left)
}
