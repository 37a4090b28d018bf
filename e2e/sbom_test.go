//go:build integration

package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/nixery-action/nixery-action/internal/cdxvalidate"
	"github.com/nixery-action/nixery-action/internal/testenv"
)

// sbomResult is the part of `nixery build --json` about SBOMs.
type sbomResult struct {
	Digest    string `json:"digest"`
	Manifests []struct {
		Platform string `json:"platform"`
		Digest   string `json:"digest"`
	} `json:"manifests"`
	SBOMs []struct {
		Platform   string       `json:"platform"`
		Manifest   string       `json:"manifest"`
		SBOM       sbomReferrer `json:"sbom"`
		Provenance sbomReferrer `json:"provenance"`
		File       string       `json:"file"`
	} `json:"sboms"`
}

type sbomReferrer struct {
	ArtifactType string `json:"artifactType"`
	Digest       string `json:"digest"`
	Document     string `json:"document"`
	Attached     bool   `json:"attached"`
}

func decodeSBOMResult(t *testing.T, r result) sbomResult {
	t.Helper()
	assert.Equal(t, r.code, 0, "nixery failed: %s", r.stderr)
	var res sbomResult
	assert.NilError(t, json.Unmarshal([]byte(r.stdout), &res), "stdout: %s", r.stdout)
	return res
}

// runnerEnv is the environment of an action step, inputs first, whose
// runner files (outputs, summary, temporary directory, home) are in dir.
func runnerEnv(dir string, inputs ...string) []string {
	env := append(inputs, "GITHUB_OUTPUT="+filepath.Join(dir, "output"), "GITHUB_STEP_SUMMARY="+filepath.Join(dir, "summary"),
		"RUNNER_TEMP="+dir, "HOME="+dir)
	return append(env, githubEnv...)
}

// githubEnv is a GitHub Actions run, as the runner describes it.
var githubEnv = []string{
	"GITHUB_ACTIONS=true", "GITHUB_SERVER_URL=https://github.com", "GITHUB_REPOSITORY=me/tools",
	"GITHUB_SHA=" + strings.Repeat("b", 40), "GITHUB_REF=refs/heads/main", "GITHUB_RUN_ID=7",
	"GITHUB_RUN_ATTEMPT=2", "GITHUB_WORKFLOW_REF=me/tools/.github/workflows/image.yml@refs/heads/main",
	"SOURCE_DATE_EPOCH=1700000000",
}

// TestBuildSBOM pushes two platforms with their SBOMs and provenance to a
// registry without the referrers API, and reads them back with skopeo
// from the fallback tags: the documents are the files --sbom-file wrote,
// the SBOMs are valid CycloneDX, the provenance names the GitHub run. The
// same build again gives the same referrers; --sbom=false makes none.
func TestBuildSBOM(t *testing.T) {
	testenv.Require(t, "nix", "docker-registry", "skopeo")
	host := testenv.StartRegistry(t)
	repo := host + "/e2e/sbom"
	files := t.TempDir()
	build := func(tag string, extra ...string) sbomResult {
		t.Helper()
		args := append([]string{"build", "--nixpkgs", standIn(), "--platforms", "linux/amd64,linux/arm64",
			"--image", repo, "--tags", tag, "--json"}, extra...)
		return decodeSBOMResult(t, run(t, githubEnv, append(args, "hello")...))
	}
	res := build("v1", "--sbom-file", filepath.Join(files, "sbom.cdx.json"))
	assert.Assert(t, is.Len(res.SBOMs, 2))

	var docs [][]byte
	for i, s := range res.SBOMs {
		assert.Equal(t, s.Manifest, res.Manifests[i].Digest)
		assert.Check(t, s.SBOM.Attached && s.Provenance.Attached)
		want := filepath.Join(files, "sbom."+strings.ReplaceAll(s.Platform, "/", "-")+".cdx.json")
		assert.Equal(t, s.File, want)
		file, err := os.ReadFile(want)
		assert.NilError(t, err)

		// The fallback tag lists the two referrers of this platform image.
		var index v1.IndexManifest
		raw := testenv.Run(t, "skopeo", "inspect", "--tls-verify=false", "--raw", "docker://"+repo+":sha256-"+strings.TrimPrefix(s.Manifest, "sha256:"))
		assert.NilError(t, json.Unmarshal([]byte(raw), &index))
		byType := map[string]string{}
		for _, m := range index.Manifests {
			byType[m.ArtifactType] = m.Digest.String()
		}
		assert.DeepEqual(t, byType, map[string]string{
			"application/vnd.cyclonedx+json": s.SBOM.Digest,
			"application/vnd.in-toto+json":   s.Provenance.Digest,
		})

		sbom := copyReferrer(t, repo, s.SBOM.Digest)
		assert.Assert(t, bytes.Equal(sbom, file), "%s: the attached SBOM is not the file written", s.Platform)
		docs = append(docs, sbom)

		var st struct {
			Subject []struct {
				Name   string
				Digest map[string]string
			}
			Predicate struct {
				RunDetails struct {
					Metadata struct{ InvocationID string }
				}
			}
		}
		assert.NilError(t, json.Unmarshal(copyReferrer(t, repo, s.Provenance.Digest), &st))
		assert.Equal(t, st.Subject[0].Name, repo)
		assert.Equal(t, "sha256:"+st.Subject[0].Digest["sha256"], s.Manifest)
		assert.Equal(t, st.Predicate.RunDetails.Metadata.InvocationID, "https://github.com/me/tools/actions/runs/7/attempts/2")
	}
	cdxvalidate.Validate(t, docs...)

	// Reproducible: the same inputs give the same referrers.
	again := build("v2")
	assert.Equal(t, again.Digest, res.Digest)
	for i, s := range again.SBOMs {
		assert.Check(t, is.Equal(s.SBOM.Digest, res.SBOMs[i].SBOM.Digest))
		assert.Check(t, is.Equal(s.Provenance.Digest, res.SBOMs[i].Provenance.Digest))
	}

	// Off: no SBOM in the result and no referrers in the registry.
	off := decodeSBOMResult(t, run(t, githubEnv, "build", "--nixpkgs", standIn(), "--image", host+"/e2e/nosbom",
		"--tags", "v1", "--sbom=false", "--json", "hello"))
	assert.Check(t, is.Len(off.SBOMs, 0))
	tags := testenv.Run(t, "skopeo", "list-tags", "--tls-verify=false", "docker://"+host+"/e2e/nosbom")
	assert.Check(t, !strings.Contains(tags, "sha256-"), tags)
}

// copyReferrer copies a referrer out of the registry with skopeo and
// returns its one document.
func copyReferrer(t *testing.T, repo, digest string) []byte {
	t.Helper()
	dir := t.TempDir()
	testenv.Run(t, "skopeo", "copy", "--src-tls-verify=false", "docker://"+repo+"@"+digest, "oci:"+dir+":r")
	var m v1.Manifest
	raw := testenv.Run(t, "skopeo", "inspect", "--raw", "oci:"+dir+":r")
	assert.NilError(t, json.Unmarshal([]byte(raw), &m))
	assert.Assert(t, is.Len(m.Layers, 1))
	data, err := os.ReadFile(filepath.Join(dir, "blobs", "sha256", m.Layers[0].Digest.Hex))
	assert.NilError(t, err)
	return data
}

// TestBuildSBOMLayout writes an OCI layout that the usual commands take
// as they did before SBOMs: skopeo inspects and copies it, and umoci
// lists it, without a reference. Each platform's SBOM and provenance are
// in its referrers layout, with the platform manifest as their subject,
// found and pulled by oras as the README shows; the SBOM is valid
// CycloneDX.
func TestBuildSBOMLayout(t *testing.T) {
	testenv.Require(t, "nix", "skopeo", "umoci", "oras")
	dir := filepath.Join(t.TempDir(), "image")
	res := decodeSBOMResult(t, run(t, nil, "build", "--nixpkgs", standIn(), "--platforms", "linux/amd64,linux/arm64",
		"--output", "oci:"+dir, "--tags", "v1", "--json", "hello"))

	// The habits: no reference needed.
	var inspected struct{ Digest string }
	assert.NilError(t, json.Unmarshal([]byte(testenv.Run(t, "skopeo", "inspect", "--raw", "oci:"+dir)), new(v1.IndexManifest)))
	assert.NilError(t, json.Unmarshal([]byte(testenv.Run(t, "skopeo", "inspect", "--override-arch", "amd64", "oci:"+dir)), &inspected))
	assert.Equal(t, inspected.Digest, res.Digest)
	copied := t.TempDir()
	testenv.Run(t, "skopeo", "copy", "--all", "oci:"+dir, "oci:"+copied+":v1")
	assert.Check(t, is.Contains(testenv.Run(t, "umoci", "ls", "--layout", dir), "v1"))

	side := filepath.Join(dir, "referrers")
	var top v1.IndexManifest
	raw, err := os.ReadFile(filepath.Join(side, "index.json"))
	assert.NilError(t, err)
	assert.NilError(t, json.Unmarshal(raw, &top))
	blob := func(d v1.Hash) []byte {
		b, err := os.ReadFile(filepath.Join(side, "blobs", d.Algorithm, d.Hex))
		assert.NilError(t, err)
		return b
	}
	subjects := map[string]bool{}
	var docs [][]byte
	for _, d := range top.Manifests {
		if d.ArtifactType != "application/vnd.cyclonedx+json" {
			continue
		}
		var m v1.Manifest
		assert.NilError(t, json.Unmarshal(blob(d.Digest), &m))
		subjects[m.Subject.Digest.String()] = true
		docs = append(docs, blob(m.Layers[0].Digest))
	}
	var want []string
	for _, m := range res.Manifests {
		want = append(want, m.Digest)
	}
	var got []string
	for s := range subjects {
		got = append(got, s)
	}
	sort.Strings(want)
	sort.Strings(got)
	assert.DeepEqual(t, got, want)
	cdxvalidate.Validate(t, docs...)

	// oras, as the README shows it.
	var found struct {
		Referrers []struct {
			Digest       string `json:"digest"`
			ArtifactType string `json:"artifactType"`
		} `json:"referrers"`
	}
	assert.NilError(t, json.Unmarshal([]byte(testenv.Run(t, "oras", "discover", "--oci-layout", side+":v1", "--platform", "linux/arm64", "--format", "json")), &found))
	assert.Assert(t, is.Len(found.Referrers, 2))
	for _, r := range found.Referrers {
		if r.ArtifactType != "application/vnd.cyclonedx+json" {
			continue
		}
		out := t.TempDir()
		testenv.Run(t, "oras", "pull", "--oci-layout", side+"@"+r.Digest, "-o", out)
		data, err := os.ReadFile(filepath.Join(out, "sbom.cdx.json"))
		assert.NilError(t, err)
		assert.Check(t, slices.ContainsFunc(docs, func(d []byte) bool { return bytes.Equal(d, data) }), "oras pulled another SBOM")
	}
}

// TestActionSBOM runs the action mode: the sbom output is the SBOM file,
// written in the runner's temporary directory; the sbom input false
// turns it off.
func TestActionSBOM(t *testing.T) {
	testenv.Require(t, "nix", "docker-registry", "skopeo")
	host := testenv.StartRegistry(t)
	repo := host + "/e2e/action-sbom"
	action := func(sbom string) (map[string]string, string) {
		t.Helper()
		dir := t.TempDir()
		out := filepath.Join(dir, "output")
		env := runnerEnv(dir, "INPUT_PACKAGES=hello", "INPUT_IMAGE="+repo, "INPUT_NIXPKGS="+standIn(), "INPUT_SBOM="+sbom)
		r := run(t, env, "action")
		assert.Equal(t, r.code, 0, "%s%s", r.stdout, r.stderr)
		return actionOutputs(t, out), dir
	}

	outputs, runnerTemp := action("true")
	path := outputs["sbom"]
	assert.Assert(t, path != "", "no sbom output in %v", outputs)
	assert.Assert(t, strings.HasPrefix(path, runnerTemp+string(filepath.Separator)), "%s is not in RUNNER_TEMP", path)
	summary, err := os.ReadFile(filepath.Join(runnerTemp, "summary"))
	assert.NilError(t, err)
	assert.Check(t, regexp.MustCompile("\\| linux/amd64 \\| `sha256:[0-9a-f]{64}` \\| `sha256:[0-9a-f]{64}` \\| yes \\|").Match(summary), "%s", summary)
	doc, err := os.ReadFile(path)
	assert.NilError(t, err)
	var sboms map[string]string
	assert.NilError(t, json.Unmarshal([]byte(outputs["sboms"]), &sboms))
	assert.DeepEqual(t, sboms, map[string]string{"linux/amd64": path})
	var manifests map[string]string
	assert.NilError(t, json.Unmarshal([]byte(outputs["manifests"]), &manifests))

	// The file is what the registry holds as the image's SBOM.
	var index v1.IndexManifest
	raw := testenv.Run(t, "skopeo", "inspect", "--tls-verify=false", "--raw", "docker://"+repo+":sha256-"+strings.TrimPrefix(manifests["linux/amd64"], "sha256:"))
	assert.NilError(t, json.Unmarshal([]byte(raw), &index))
	var attached []byte
	for _, m := range index.Manifests {
		if m.ArtifactType == "application/vnd.cyclonedx+json" {
			attached = copyReferrer(t, repo, m.Digest.String())
		}
	}
	assert.Assert(t, bytes.Equal(attached, doc))
	cdxvalidate.Validate(t, doc)

	off, _ := action("false")
	_, ok := off["sbom"]
	assert.Check(t, !ok, "sbom output with the sbom input false: %v", off)
}

// actionOutputs reads a GITHUB_OUTPUT file (name<<DELIMITER lines).
func actionOutputs(t *testing.T, file string) map[string]string {
	t.Helper()
	raw, err := os.ReadFile(file)
	assert.NilError(t, err)
	out := map[string]string{}
	lines := strings.Split(string(raw), "\n")
	for i := 0; i < len(lines); i++ {
		key, delim, ok := strings.Cut(lines[i], "<<")
		if !ok {
			continue
		}
		var value []string
		for i++; i < len(lines) && lines[i] != delim; i++ {
			value = append(value, lines[i])
		}
		out[key] = strings.Join(value, "\n")
	}
	assert.Assert(t, len(out) > 0, "no outputs in %q", raw)
	return out
}

// A requested package's SBOM component has the pname and version Nix
// evaluated (font-adobe-100dpi, 1.0.4), which its store path's name alone
// would split after "font-adobe"; so has its purl.
func TestBuildSBOMEvaluatedName(t *testing.T) {
	testenv.Require(t, "nix", "docker-registry")
	host := testenv.StartRegistry(t)
	file := filepath.Join(t.TempDir(), "sbom.cdx.json")
	res := decodeSBOMResult(t, run(t, nil, "build", "--nixpkgs", standIn(), "--image", host+"/e2e/sbomname",
		"--tags", "v1", "--json", "--sbom-file", file, "fontadobe100dpi"))
	assert.Assert(t, is.Len(res.SBOMs, 1))
	data, err := os.ReadFile(res.SBOMs[0].File)
	assert.NilError(t, err)
	cdxvalidate.Validate(t, data)

	var bom struct {
		Components []struct {
			Name, Version, Purl string
			Properties          []struct{ Name, Value string }
		}
	}
	assert.NilError(t, json.Unmarshal(data, &bom))
	var found []string
	for _, c := range bom.Components {
		for _, p := range c.Properties {
			if p.Name == "nixery:attribute" && p.Value == "fontadobe100dpi" {
				found = append(found, c.Name+" "+c.Version+" "+strings.Split(c.Purl, "?")[0])
			}
		}
	}
	assert.DeepEqual(t, found, []string{"font-adobe-100dpi 1.0.4 pkg:generic/font-adobe-100dpi@1.0.4"})
}
