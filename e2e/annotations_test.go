//go:build integration

package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"gotest.tools/v3/assert"

	"github.com/nixery-action/nixery-action/internal/testenv"
)

// metadata-action's labels and annotations outputs, as they are, land
// where build-push-action would put them: the labels in each config, the
// annotations on the manifests, their descriptors, the index and its
// entry in the layout's index.json.
func TestMetadataActionOutputs(t *testing.T) {
	testenv.Require(t, "nix", "skopeo")
	dir := filepath.Join(t.TempDir(), "layout")
	r := run(t, nil, "build", "--nixpkgs", standIn(), "--platforms", "linux/amd64,linux/arm64", "--output", "oci:"+dir, "--tags", "dev",
		"--labels", strings.Join(testenv.MetadataActionLabels(), "\n"),
		"--annotations", strings.Join(testenv.MetadataActionAnnotations("manifest", "index", "manifest-descriptor", "index-descriptor"), "\n"), "hello")
	assert.Equal(t, r.code, 0, r.stderr)

	want := map[string]string{}
	for _, l := range testenv.MetadataActionLabels() {
		k, v, _ := strings.Cut(l, "=")
		want[k] = v
	}
	has := func(where string, got map[string]string) {
		t.Helper()
		for k, v := range want {
			assert.Check(t, got[k] == v, "%s: %s is %q, not %q", where, k, got[k], v)
		}
	}
	var idx v1.IndexManifest
	assert.NilError(t, json.Unmarshal([]byte(testenv.Run(t, "skopeo", "inspect", "--raw", "oci:"+dir+":dev")), &idx))
	has("index", idx.Annotations)
	for _, d := range idx.Manifests {
		has("descriptor of "+d.Platform.Architecture, d.Annotations)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "index.json"))
	assert.NilError(t, err)
	var top v1.IndexManifest
	assert.NilError(t, json.Unmarshal(raw, &top))
	has("index.json's entry", top.Manifests[0].Annotations)
	assert.Equal(t, top.Manifests[0].Annotations["org.opencontainers.image.ref.name"], "dev")
	c := inspectConfig(t, "oci:"+dir+":dev")
	has("config labels", c.Config.Labels)

	// A platform's manifest carries the manifest level.
	var m v1.Manifest
	blob, err := os.ReadFile(filepath.Join(dir, "blobs", "sha256", idx.Manifests[0].Digest.Hex))
	assert.NilError(t, err)
	assert.NilError(t, json.Unmarshal(blob, &m))
	has("manifest", m.Annotations)

	// index-descriptor has no place in a registry: said at once.
	r = run(t, nil, "build", "--nixpkgs", standIn(), "--image", "127.0.0.1:1/x", "--annotations", "index-descriptor:a=b", "hello")
	assert.Equal(t, r.code, 2, r.stderr)
	assert.Check(t, strings.Contains(errorLine(r.stderr), "index-descriptor annotations go on the index's entry in an OCI layout's index.json"), r.stderr)
}
