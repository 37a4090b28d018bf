//go:build integration

package flaketest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/nixery-action/nixery-action/internal/testenv"
)

// TestAction runs action.yml as a runner would, against the stand-in
// nixpkgs and a real registry, and checks its outputs and step summary.
func TestAction(t *testing.T) {
	testenv.Require(t, "nix", "git", "go", "docker-registry", "skopeo")
	f := newFlake(t)
	host := testenv.StartRegistry(t)
	repo := host + "/action/tools"
	standIn := "path:" + filepath.Join(repoRoot(t), "testdata", "nixpkgs")
	password := "s3cret-password-that-must-not-leak"

	r := newRunner(t, f.dir, map[string]string{
		"packages":  "hello\nbusybox",
		"platforms": "linux/amd64,linux/arm64",
		"image":     repo,
		"tags":      "v1\nlatest",
		"nixpkgs":   standIn,
		"labels":    "org.example.team=tools",
		"username":  "ci",
		"password":  password,
	}, []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "NIX_CONFIG=" + testenv.NixConfig})
	err := r.run(t)
	assert.NilError(t, err, r.stdout)
	outputs := r.outputs(t)

	// One SBOM file per platform, in the runner's temporary directory
	// (RUNNER_TEMP, which this runner sets).
	var sboms map[string]string
	assert.NilError(t, json.Unmarshal([]byte(outputs["sboms"]), &sboms), outputs["sboms"])
	assert.Equal(t, len(sboms), 2)
	for p, file := range sboms {
		assert.Assert(t, strings.Contains(file, "/nixery-sbom-"), "%s: %s", p, file)
		doc, err := os.ReadFile(file)
		assert.NilError(t, err)
		assert.Assert(t, is.Contains(string(doc), `"bomFormat": "CycloneDX"`), "%s: %s", p, file)
	}
	assert.Equal(t, outputs["sbom"], "") // several platforms: see sboms

	// The digest output is the digest of what the registry serves.
	raw := run(t, "", nil, "skopeo", "inspect", "--tls-verify=false", "--raw", "docker://"+repo+":v1")
	sum := sha256.Sum256([]byte(raw))
	assert.Equal(t, outputs["digest"], "sha256:"+hex.EncodeToString(sum[:]))
	assert.Equal(t, outputs["image"], repo+"@"+outputs["digest"])

	var manifests map[string]string
	assert.NilError(t, json.Unmarshal([]byte(outputs["manifests"]), &manifests), outputs["manifests"])
	var platforms []string
	for p := range manifests {
		platforms = append(platforms, p)
	}
	sort.Strings(platforms)
	assert.DeepEqual(t, platforms, []string{"linux/amd64", "linux/arm64"}) // as requested
	for p, d := range manifests {
		assert.Assert(t, strings.Contains(raw, d), "%s manifest %s not in the index", p, d)
	}

	var metadata struct {
		SchemaVersion int      `json:"schemaVersion"`
		Digest        string   `json:"digest"`
		Tags          []string `json:"tags"`
	}
	assert.NilError(t, json.Unmarshal([]byte(outputs["metadata"]), &metadata))
	assert.Equal(t, metadata.SchemaVersion, 1)
	assert.Equal(t, metadata.Digest, outputs["digest"])
	assert.DeepEqual(t, metadata.Tags, []string{"v1", "latest"})

	// The step summary has a layer table per platform and the timings.
	for _, want := range []string{"#### linux/amd64", "#### linux/arm64", "| # | size | packages | upload |", "hello", "uploaded", "| phase | platform | seconds |", "| nix | linux/arm64 |", "(customisation: symlinks, /tmp, CA bundle)",
		" compressed, ", " unpacked)", "Largest packages: ", "Created: 1970-01-01T00:00:00Z"} {
		assert.Assert(t, is.Contains(r.summary, want))
	}
	// The log is grouped per platform, and the secrets are masked, never printed.
	assert.Assert(t, is.Contains(r.stdout, "::group::Build linux/amd64"))
	assert.Assert(t, is.Contains(r.stdout, "::add-mask::"+password))
	withoutMask := strings.ReplaceAll(r.stdout, "::add-mask::"+password, "")
	for _, text := range []string{withoutMask, r.summary, fmt.Sprint(outputs)} {
		assert.Assert(t, !strings.Contains(text, password), "password leaked")
	}
}

// TestActionRemovesItsCopy: an action at a path Nix cannot read as a
// flake reference (act and runners put it at …/owner-repo@ref) is built
// from a copy in RUNNER_TEMP, which is gone once nixery runs.
func TestActionRemovesItsCopy(t *testing.T) {
	testenv.Require(t, "nix", "git", "go")
	f := newFlake(t)
	at := filepath.Join(t.TempDir(), "org-nixery-action@v1")
	assert.NilError(t, os.Rename(f.dir, at))
	r := newRunner(t, at, map[string]string{
		"packages": "hello",
		"nixpkgs":  "path:" + filepath.Join(repoRoot(t), "testdata", "nixpkgs"),
		"push":     "false",
		"sbom":     "false",
	}, []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "NIX_CONFIG=" + testenv.NixConfig})
	assert.NilError(t, r.run(t), r.stdout)
	assert.Assert(t, is.Contains(r.stdout, "as a flake reference; running the copy "+r.temp+"/nixery-action."))
	assert.Assert(t, strings.HasPrefix(r.outputs(t)["digest"], "sha256:"), r.stdout)
	left, err := filepath.Glob(filepath.Join(r.temp, "nixery-action.*"))
	assert.NilError(t, err)
	assert.Check(t, is.Len(left, 0), "the copy was left: %v", left)

	// Nor is it left when nixery cannot be built.
	assert.NilError(t, os.WriteFile(filepath.Join(at, "flake.nix"), []byte(`{ outputs = _: throw "no nixery here"; }`), 0o644))
	assert.ErrorContains(t, r.run(t), `step "Build and push"`)
	assert.Assert(t, is.Contains(r.stdout, "no nixery here"))
	left, err = filepath.Glob(filepath.Join(r.temp, "nixery-action.*"))
	assert.NilError(t, err)
	assert.Check(t, is.Len(left, 0), "the copy was left: %v", left)
}
