//go:build integration

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"gotest.tools/v3/assert"

	"github.com/nixery-action/nixery-action/internal/testenv"
	"github.com/nixery-action/nixery-action/pkg/layers"
)

// wideFlake writes a flake whose default package references n leaves of
// its own: a closure of n+1 store paths, more than a budget of n can give
// each a layer.
func wideFlake(t *testing.T, n int) string {
	t.Helper()
	dir := t.TempDir()
	flake := fmt.Sprintf(`{
  outputs = { self }: let
    leaf = i: builtins.derivation {
      name = "wide-leaf-${toString i}";
      system = "x86_64-linux";
      builder = "/bin/sh";
      args = [ "-c" "echo ${toString i} > $out" ];
    };
    leaves = builtins.genList leaf %d;
  in {
    packages.x86_64-linux.default = builtins.derivation {
      name = "wide";
      system = "x86_64-linux";
      builder = "/bin/sh";
      args = [ "-c" "/bin/mkdir $out && echo ${builtins.concatStringsSep " " (map toString leaves)} > $out/refs" ];
    };
  };
}
`, n)
	assert.NilError(t, os.WriteFile(filepath.Join(dir, "flake.nix"), []byte(flake), 0o644))
	return "path:" + dir + "#default"
}

// The largest budget the build takes, on a closure of more paths than
// it, gives an image of at most 125 layers (customisation layer
// included): Docker's layer store refuses more (maxLayerDepth). One
// more is refused before any work.
func TestLayerBudgetWithinDockerLimit(t *testing.T) {
	testenv.Require(t, "nix", "skopeo")
	ref := wideFlake(t, layers.MaxBudget+20)
	dir := filepath.Join(t.TempDir(), "image")
	r := run(t, nil, "build", "--nixpkgs", standIn(), "--output", "oci:"+dir, "--tags", "v1", "--sbom=false",
		"--layer-budget", strconv.Itoa(layers.MaxBudget), "--cmd", "cat /refs", ref)
	assert.Equal(t, r.code, 0, r.stderr)

	raw := testenv.Run(t, "skopeo", "inspect", "--override-arch", "amd64", "oci:"+dir+":v1")
	var m struct{ Layers []string }
	assert.NilError(t, json.Unmarshal([]byte(raw), &m), raw)
	t.Logf("--layer-budget %d: %d layers", layers.MaxBudget, len(m.Layers))
	// The closure has more paths than the budget, so the plan fills it:
	// the image is exactly at Docker's limit, not beyond.
	assert.Equal(t, len(m.Layers), 125, raw)

	r = run(t, nil, "build", "--nixpkgs", standIn(), "--output", "oci:"+filepath.Join(t.TempDir(), "more"),
		"--layer-budget", strconv.Itoa(layers.MaxBudget+1), ref)
	assert.Equal(t, r.code, 2, r.stderr)
}
