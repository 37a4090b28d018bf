//go:build integration

package flaketest

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// releaseWorkflow is what these tests read of release.yml.
type releaseWorkflow struct {
	Concurrency struct {
		Group            string `yaml:"group"`
		CancelInProgress bool   `yaml:"cancel-in-progress"`
	} `yaml:"concurrency"`
	Jobs map[string]struct {
		Permissions map[string]string `yaml:"permissions"`
		Steps       []struct {
			Name string            `yaml:"name"`
			Uses string            `yaml:"uses"`
			With map[string]string `yaml:"with"`
			Run  string            `yaml:"run"`
			Env  map[string]string `yaml:"env"`
		} `yaml:"steps"`
	} `yaml:"jobs"`
}

// The release job attests each binary it publishes, by the lines of
// SHA256SUMS (signed SLSA provenance, by a pinned
// actions/attest-build-provenance) before the release is made, with the
// permissions that takes.
func TestReleaseAttested(t *testing.T) {
	job := readReleaseWorkflow(t).Jobs["release"]
	assert.Check(t, is.Equal(job.Permissions["id-token"], "write"))
	assert.Check(t, is.Equal(job.Permissions["attestations"], "write"))
	attest, create := -1, -1
	var subjects string
	for i, s := range job.Steps {
		switch {
		case strings.HasPrefix(s.Uses, "actions/attest-build-provenance@"):
			attest = i
			assert.Check(t, regexp.MustCompile(`@[0-9a-f]{40}$`).MatchString(s.Uses), "not pinned to a commit: %s", s.Uses)
			subjects = s.With["subject-checksums"]
		case s.Name == "Create the release with the binaries":
			create = i
		}
	}
	assert.Assert(t, attest >= 0, "the release job attests nothing")
	assert.Check(t, attest < create, "the attestation comes after the release")
	// Every binary SHA256SUMS lists (the release's assets), as checked.
	assert.Check(t, is.Equal(subjects, "dist/SHA256SUMS"))
}

// Runs of different tags never share a concurrency group: GitHub keeps
// one pending run per group and cancels the others, which would lose a
// tag's release when three are pushed together.
func TestReleaseConcurrencyPerTag(t *testing.T) {
	wf := readReleaseWorkflow(t)
	assert.Check(t, is.Contains(wf.Concurrency.Group, "${{ github.ref_name }}"))
	assert.Check(t, !wf.Concurrency.CancelInProgress)
}

// The release step, run again after a later step failed, replaces the
// assets of the release it made rather than failing on it; run the
// first time, it creates the release. gh is a stand-in that records its
// arguments.
func TestReleaseStepRerun(t *testing.T) {
	wf := readReleaseWorkflow(t)
	script := ""
	for _, s := range wf.Jobs["release"].Steps {
		if s.Name == "Create the release with the binaries" {
			script = s.Run
		}
	}
	assert.Assert(t, script != "", "release.yml has no step \"Create the release with the binaries\" in job release")

	dir := t.TempDir()
	for _, f := range []string{"nixery-linux-amd64", "nixery-linux-arm64", "nixery-darwin-amd64", "nixery-darwin-arm64", "SHA256SUMS"} {
		assert.NilError(t, os.MkdirAll(filepath.Join(dir, "dist"), 0o755))
		assert.NilError(t, os.WriteFile(filepath.Join(dir, "dist", f), []byte(f+"\n"), 0o644))
	}
	assert.NilError(t, os.MkdirAll(filepath.Join(dir, "release"), 0o755))
	assert.NilError(t, os.WriteFile(filepath.Join(dir, "release", "SHA256SUMS"), []byte("SHA256SUMS\n"), 0o644))
	bin := tools(t, "bash", "cmp", "cat")
	log := filepath.Join(dir, "gh.log")
	exists := filepath.Join(dir, "exists")
	// gh release view succeeds once the release exists.
	gh := `#!/bin/bash
echo "$*" >> ` + log + `
if [ "$1 $2" = "release view" ]; then [ -e ` + exists + ` ]; exit; fi
if [ "$1 $2" = "release create" ]; then : > ` + exists + `; fi
`
	assert.NilError(t, os.WriteFile(filepath.Join(bin, "gh"), []byte(gh), 0o755))
	env := []string{"PATH=" + bin, "TAG=v1.2.3", "GH_TOKEN=x"}
	assets := "dist/nixery-linux-amd64 dist/nixery-linux-arm64 dist/nixery-darwin-amd64 dist/nixery-darwin-arm64 dist/SHA256SUMS"

	run(t, dir, env, "bash", "-e", "-c", script)
	run(t, dir, env, "bash", "-e", "-c", script)
	calls := strings.Split(strings.TrimSpace(readFile(t, log)), "\n")
	assert.DeepEqual(t, calls, []string{
		"release view v1.2.3",
		"release create v1.2.3 --verify-tag --generate-notes --title v1.2.3 " + assets,
		"release view v1.2.3",
		"release upload v1.2.3 --clobber " + assets,
	})

	// Assets other than the committed checksums' are never published.
	assert.NilError(t, os.WriteFile(filepath.Join(dir, "dist", "SHA256SUMS"), []byte("other\n"), 0o644))
	_, _, err := runErr(dir, env, "bash", "-e", "-c", script)
	assert.Check(t, err != nil)
	assert.Check(t, is.Len(strings.Split(strings.TrimSpace(readFile(t, log)), "\n"), 4))
}

func readReleaseWorkflow(t *testing.T) releaseWorkflow {
	t.Helper()
	var wf releaseWorkflow
	data, err := os.ReadFile(filepath.Join(repoRoot(t), ".github", "workflows", "release.yml"))
	assert.NilError(t, err)
	assert.NilError(t, yaml.Unmarshal(data, &wf))
	return wf
}
