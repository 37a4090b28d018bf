//go:build integration

package build

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/nixery-action/nixery-action/internal/cdxvalidate"
	"github.com/nixery-action/nixery-action/internal/testenv"
	"github.com/nixery-action/nixery-action/pkg/archive"
	"github.com/nixery-action/nixery-action/pkg/cache"
	"github.com/nixery-action/nixery-action/pkg/layers"
	"github.com/nixery-action/nixery-action/pkg/popularity"
	"github.com/nixery-action/nixery-action/pkg/provenance"
	"github.com/nixery-action/nixery-action/pkg/publish"
	"github.com/nixery-action/nixery-action/pkg/referrer"
	"github.com/nixery-action/nixery-action/pkg/sbom"
)

// sbomCreated stands for SOURCE_DATE_EPOCH.
var sbomCreated = time.Unix(1700000000, 0).UTC()

// sbomRequest is request with SBOMs asked for, named the same whatever
// the destination, in a GitHub run.
func sbomRequest(t *testing.T, dest publish.Destination) Request {
	req := request(t, dest, 6)
	req.Image.Created = sbomCreated
	req.SBOM = &SBOMOptions{Name: "example.org/hello", ToolVersion: "1.2.3", GitHub: &provenance.GitHub{
		ServerURL: "https://github.com", Repository: "me/tools", SHA: strings.Repeat("a", 40),
		Ref: "refs/heads/main", WorkflowRef: "me/tools/.github/workflows/image.yml@refs/heads/main",
		RunID: "42", RunAttempt: "1",
	}}
	return req
}

// TestBuildSBOMRegistry pushes to the CNCF registry (no referrers API):
// each platform manifest gets its SBOM and provenance in the fallback
// tag, which skopeo reads back with the documents byte for byte and oras
// finds and pulls as the README shows; the SBOM
// is valid CycloneDX; building again, to a layout, or to nowhere gives
// the same referrer digests.
func TestBuildSBOMRegistry(t *testing.T) {
	testenv.Require(t, "skopeo", "oras")
	ctx := context.Background()
	host := testenv.StartRegistry(t)
	target := mustTarget(t, host+"/build/sbom", "v1")
	res, err := Build(ctx, sbomRequest(t, publish.NewRegistry(target, publish.Options{})), Options{})
	assert.NilError(t, err)
	defer res.Close()
	assert.Assert(t, is.Len(res.SBOMs, 2))

	var docs [][]byte
	for i, s := range res.SBOMs {
		assert.Equal(t, s.Platform, res.Manifests[i].Platform)
		assert.Equal(t, s.Manifest, res.Manifests[i].Digest)
		assert.Check(t, s.SBOM.Attached && s.Provenance.Attached)
		assert.Equal(t, s.SBOM.ArtifactType, sbom.MediaType)
		assert.Equal(t, s.Provenance.ArtifactType, referrer.InTotoMediaType)
		docs = append(docs, s.SBOM.Data)

		// The fallback tag lists exactly these two referrers.
		fallback := "docker://" + host + "/build/sbom:sha256-" + strings.TrimPrefix(s.Manifest, "sha256:")
		var index v1.IndexManifest
		assert.NilError(t, json.Unmarshal([]byte(testenv.Run(t, "skopeo", "inspect", "--tls-verify=false", "--raw", fallback)), &index))
		listed := map[string]string{}
		for _, m := range index.Manifests {
			listed[m.Digest.String()] = m.ArtifactType
		}
		assert.DeepEqual(t, listed, map[string]string{s.SBOM.Digest: sbom.MediaType, s.Provenance.Digest: referrer.InTotoMediaType})

		for _, r := range []Referrer{s.SBOM, s.Provenance} {
			var m v1.Manifest
			ref := "docker://" + host + "/build/sbom@" + r.Digest
			assert.NilError(t, json.Unmarshal([]byte(testenv.Run(t, "skopeo", "inspect", "--tls-verify=false", "--raw", ref)), &m))
			assert.Equal(t, m.Subject.Digest.String(), s.Manifest)
			assert.Equal(t, m.Annotations["org.opencontainers.image.created"], "2023-11-14T22:13:20Z")
			dir := t.TempDir()
			testenv.Run(t, "skopeo", "copy", "--src-tls-verify=false", ref, "oci:"+dir+":x")
			data, err := os.ReadFile(filepath.Join(dir, "blobs", "sha256", m.Layers[0].Digest.Hex))
			assert.NilError(t, err)
			assert.Assert(t, bytes.Equal(data, r.Data), "%s changed on the way", r.ArtifactType)
			assert.Equal(t, m.Layers[0].Digest.String(), r.Document)
		}

		// The README's oras commands, against the fallback tag we wrote:
		// discover lists the SBOM, pull writes it as sbom.cdx.json.
		var found struct {
			Referrers []struct{ Digest string }
		}
		assert.NilError(t, json.Unmarshal([]byte(testenv.Run(t, "oras", "discover", "--plain-http", "--format", "json",
			"--artifact-type", sbom.MediaType, host+"/build/sbom@"+s.Manifest)), &found))
		assert.Assert(t, is.Len(found.Referrers, 1))
		assert.Equal(t, found.Referrers[0].Digest, s.SBOM.Digest)
		pulled := t.TempDir()
		testenv.Run(t, "oras", "pull", "--plain-http", "-o", pulled, host+"/build/sbom@"+s.SBOM.Digest)
		data, err := os.ReadFile(filepath.Join(pulled, "sbom.cdx.json"))
		assert.NilError(t, err)
		assert.Assert(t, bytes.Equal(data, s.SBOM.Data), "oras pulled another SBOM")

		var bom struct {
			Metadata struct {
				Timestamp string
				Component struct{ Name string }
			}
		}
		assert.NilError(t, json.Unmarshal(s.SBOM.Data, &bom))
		assert.Equal(t, bom.Metadata.Timestamp, "2023-11-14T22:13:20Z")
		assert.Equal(t, bom.Metadata.Component.Name, "example.org/hello")

		var st provenance.Statement
		assert.NilError(t, json.Unmarshal(s.Provenance.Data, &st))
		assert.Equal(t, "sha256:"+st.Subject[0].Digest["sha256"], s.Manifest)
		assert.Equal(t, st.Predicate.BuildDefinition.ExternalParameters.Nixpkgs, res.Nixpkgs)
		assert.Equal(t, st.Predicate.BuildDefinition.ExternalParameters.Platform, s.Platform)
		assert.Equal(t, st.Predicate.RunDetails.Metadata.InvocationID, "https://github.com/me/tools/actions/runs/42/attempts/1")
		assert.Equal(t, st.Predicate.RunDetails.Builder.Version["nixery"], "1.2.3")
		assert.Equal(t, "sha256:"+st.Predicate.RunDetails.Byproducts[0].Digest["sha256"], s.SBOM.Document)
	}
	cdxvalidate.Validate(t, docs...)

	// The same inputs give the same referrers, wherever they go.
	again, err := Build(ctx, sbomRequest(t, publish.NewRegistry(target, publish.Options{})), Options{})
	assert.NilError(t, err)
	again.Close()
	layoutDir := filepath.Join(t.TempDir(), "layout")
	inLayout, err := Build(ctx, sbomRequest(t, publish.NewLayout(publish.Output{Kind: publish.OCILayout, Path: layoutDir}, publish.WriteOptions{})), Options{})
	assert.NilError(t, err)
	inLayout.Close()
	nowhere, err := Build(ctx, sbomRequest(t, nil), Options{})
	assert.NilError(t, err)
	nowhere.Close()
	for _, other := range []*Result{again, inLayout, nowhere} {
		assert.Equal(t, len(other.SBOMs), len(res.SBOMs))
		for i, s := range other.SBOMs {
			assert.Check(t, is.Equal(s.SBOM.Digest, res.SBOMs[i].SBOM.Digest))
			assert.Check(t, is.Equal(s.Provenance.Digest, res.SBOMs[i].Provenance.Digest))
			assert.Check(t, bytes.Equal(s.SBOM.Data, res.SBOMs[i].SBOM.Data))
		}
	}
	for _, s := range nowhere.SBOMs {
		assert.Check(t, !s.SBOM.Attached && !s.Provenance.Attached, "attached without a destination")
	}
	// Pushing again added nothing to the fallback tag.
	for _, s := range res.SBOMs {
		idx, err := remote.Referrers(mustDigest(t, host+"/build/sbom@"+s.Manifest))
		assert.NilError(t, err)
		im, err := idx.IndexManifest()
		assert.NilError(t, err)
		assert.Check(t, is.Len(im.Manifests, 2))
	}
	// Every tag, fallback tags included, names a complete index; the
	// cache record a complete image.
	assert.Equal(t, testenv.CheckTags(t, host, "build/sbom"), 1+len(res.SBOMs)+1)
}

// TestBuildSBOMLayout writes an OCI layout: index.json names the image
// alone, and the referrers layout inside it lists each platform's
// referrers beside the image; their subjects are the index's platform
// manifests.
func TestBuildSBOMLayout(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "layout")
	res, err := Build(context.Background(), sbomRequest(t, publish.NewLayout(publish.Output{Kind: publish.OCILayout, Path: dir}, publish.WriteOptions{Tags: []string{"v1"}})), Options{})
	assert.NilError(t, err)
	defer res.Close()
	var outer, top v1.IndexManifest
	raw, err := os.ReadFile(filepath.Join(dir, "index.json"))
	assert.NilError(t, err)
	assert.NilError(t, json.Unmarshal(raw, &outer))
	assert.Assert(t, is.Len(outer.Manifests, 1))
	assert.Equal(t, outer.Manifests[0].Digest.String(), res.Digest)
	raw, err = os.ReadFile(filepath.Join(dir, publish.ReferrersDir, "index.json"))
	assert.NilError(t, err)
	assert.NilError(t, json.Unmarshal(raw, &top))
	assert.Assert(t, is.Len(top.Manifests, 1+2*len(res.SBOMs)))
	assert.Equal(t, top.Manifests[0].Digest.String(), res.Digest)
	subjects := map[string]string{}
	for _, d := range top.Manifests[1:] {
		var m v1.Manifest
		raw, err := os.ReadFile(filepath.Join(dir, publish.ReferrersDir, "blobs", "sha256", d.Digest.Hex))
		assert.NilError(t, err)
		assert.NilError(t, json.Unmarshal(raw, &m))
		assert.Equal(t, m.ArtifactType, d.ArtifactType)
		subjects[d.Digest.String()] = m.Subject.Digest.String()
	}
	for _, s := range res.SBOMs {
		assert.Check(t, s.SBOM.Attached && s.Provenance.Attached)
		assert.Check(t, is.Equal(subjects[s.SBOM.Digest], s.Manifest))
		assert.Check(t, is.Equal(subjects[s.Provenance.Digest], s.Manifest))
	}
}

// TestBuildNoSBOM: without SBOMOptions nothing is made or attached: the
// registry holds no fallback tag, the layout no referrer.
func TestBuildNoSBOM(t *testing.T) {
	ctx := context.Background()
	host := testenv.StartRegistry(t)
	target := mustTarget(t, host+"/build/nosbom", "v1")
	res, err := Build(ctx, request(t, publish.NewRegistry(target, publish.Options{}), 6), Options{})
	assert.NilError(t, err)
	res.Close()
	assert.Check(t, is.Len(res.SBOMs, 0))
	tags, err := remote.List(target.Repo)
	assert.NilError(t, err)
	slices.Sort(tags)
	assert.DeepEqual(t, tags, []string{cache.RecordTag, "v1"}) // the image and the cache record
	for _, m := range res.Manifests {
		idx, err := remote.Referrers(mustDigest(t, host+"/build/nosbom@"+m.Digest))
		assert.NilError(t, err)
		im, err := idx.IndexManifest()
		assert.NilError(t, err)
		assert.Check(t, is.Len(im.Manifests, 0))
	}

	dir := filepath.Join(t.TempDir(), "layout")
	res, err = Build(ctx, request(t, publish.NewLayout(publish.Output{Kind: publish.OCILayout, Path: dir}, publish.WriteOptions{}), 6), Options{})
	assert.NilError(t, err)
	res.Close()
	var top v1.IndexManifest
	raw, err := os.ReadFile(filepath.Join(dir, "index.json"))
	assert.NilError(t, err)
	assert.NilError(t, json.Unmarshal(raw, &top))
	assert.Check(t, is.Len(top.Manifests, 1))
	_, err = os.Stat(filepath.Join(dir, publish.ReferrersDir))
	assert.Check(t, os.IsNotExist(err), "a referrers layout without referrers: %v", err)
}

// TestBuildSBOMDockerArchive: a docker archive has no place for
// referrers; the build says so and succeeds, with the SBOM in the result.
func TestBuildSBOMDockerArchive(t *testing.T) {
	req := sbomRequest(t, publish.NewLayout(publish.Output{Kind: publish.DockerArchive, Path: filepath.Join(t.TempDir(), "a.tar")}, publish.WriteOptions{}))
	req.Platforms = req.Platforms[:1]
	var log bytes.Buffer
	res, err := Build(context.Background(), req, Options{Log: logTo(&log)})
	assert.NilError(t, err)
	defer res.Close()
	assert.Assert(t, is.Len(res.SBOMs, 1))
	assert.Check(t, !res.SBOMs[0].SBOM.Attached)
	assert.Check(t, len(res.SBOMs[0].SBOM.Data) > 0)
	assert.Check(t, is.Contains(log.String(), "cannot hold referrers"))
}

func mustDigest(t *testing.T, ref string) name.Digest {
	t.Helper()
	d, err := name.NewDigest(ref, name.Insecure)
	assert.NilError(t, err)
	return d
}

// TestBuildSBOMAttachFails: a registry that refuses the referrers fails
// the build with one line saying what failed, and the tag is not
// written: it never names an image without its referrers.
func TestBuildSBOMAttachFails(t *testing.T) {
	host := testenv.StartRegistry(t)
	front := testenv.Front(t, host, func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodPut || !strings.Contains(r.URL.Path, "/manifests/") {
			return false
		}
		body, err := io.ReadAll(r.Body)
		assert.Check(t, err)
		if bytes.Contains(body, []byte(`"subject"`)) {
			testenv.RegistryError(w, http.StatusForbidden, "DENIED", "no referrers here")
			return true
		}
		r.Body = io.NopCloser(bytes.NewReader(body)) // put back for the registry
		return false
	})

	target := mustTarget(t, front+"/build/refused", "v1")
	_, err := Build(context.Background(), sbomRequest(t, publish.NewRegistry(target, publish.Options{})), Options{})
	assert.ErrorContains(t, err, "attaching the SBOM and provenance of linux/")
	assert.ErrorContains(t, err, "to "+front+"/build/refused failed, so no tag was written (run again to finish the push)")
	assert.ErrorContains(t, err, "no referrers here")
	assert.Check(t, !strings.Contains(err.Error(), "\n"), err.Error())
	_, err = remote.Index(mustTarget(t, host+"/build/refused", "v1").Tags[0])
	assert.ErrorContains(t, err, "MANIFEST_UNKNOWN", "the tag was written without the referrers")
}

// The provenance records the choices that shaped the image beyond its
// packages, as built: the config (environment variable names only), the
// layering and the compression; the same data gives the same digest.
func TestProvenanceSettings(t *testing.T) {
	statement := func(req Request) provenance.Statement {
		t.Helper()
		res, err := Build(context.Background(), req, Options{})
		assert.NilError(t, err)
		defer res.Close()
		var st provenance.Statement
		assert.NilError(t, json.Unmarshal(res.SBOMs[0].Provenance.Data, &st))
		assert.Assert(t, !strings.Contains(string(res.SBOMs[0].Provenance.Data), "s3cr3t-value"))
		return st
	}

	st := statement(sbomRequest(t, nil))
	got := st.Predicate.BuildDefinition.ExternalParameters.Settings
	assert.Assert(t, got != nil)
	assert.Equal(t, got.Strategy, layers.DefaultStrategy)
	assert.Equal(t, got.LayerBudget, 6)
	assert.Equal(t, got.Compression, fmt.Sprintf("gzip:%d", archive.DefaultLevel))
	assert.Equal(t, got.Created, "2023-11-14T22:13:20Z")
	assert.Equal(t, got.Popularity, "")

	req := sbomRequest(t, nil)
	req.Image.Entrypoint = []string{"/bin/hello", "--greeting"}
	req.Image.Env = []string{"API_KEY=s3cr3t-value", "MODE=prod"}
	req.Image.Labels = map[string]string{"org.example.team": "tools"}
	req.Image.Annotations = map[string]string{"org.example.tier": "backend"}
	req.Layers.Strategy = "autolayer"
	req.Layers.Popularity = popularity.Data{"glibc": 10, "hello": 1}
	req.Pack.Compression, req.Pack.Level = archive.Zstd, 7
	got = statement(req).Predicate.BuildDefinition.ExternalParameters.Settings
	assert.DeepEqual(t, got.Entrypoint, []string{"/bin/hello", "--greeting"})
	assert.Assert(t, slices.Contains(got.EnvNames, "API_KEY") && slices.Contains(got.EnvNames, "MODE") && slices.Contains(got.EnvNames, "PATH"), "%v", got.EnvNames)
	assert.Equal(t, got.Labels["org.example.team"], "tools")
	assert.DeepEqual(t, got.Annotations, map[string]string{"org.example.tier": "backend"})
	assert.Equal(t, got.Strategy, "autolayer")
	assert.Equal(t, got.Compression, "zstd:7")
	want, err := popularity.Digest(popularity.Data{"hello": 1, "glibc": 10})
	assert.NilError(t, err)
	assert.Equal(t, got.Popularity, want)
	assert.Assert(t, strings.HasPrefix(want, "sha256:") && len(want) == 71, want)
}
