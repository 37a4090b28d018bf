//go:build integration

package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gotest.tools/v3/assert"

	"github.com/nixery-action/nixery-action/internal/testenv"
	"github.com/nixery-action/nixery-action/pkg/layers"
)

// TestLayersRealClosure plans a closure Nix built and printed: an app
// referencing a library and a data path, the library referencing a base.
func TestLayersRealClosure(t *testing.T) {
	testenv.Require(t, "nix", "nix-build")
	const expr = `
let
  mk = name: script: builtins.derivation {
    inherit name;
    system = builtins.currentSystem;
    builder = "/bin/sh";
    args = [ "-c" script ];
  };
  base = mk "layers-test-base-1.0" "echo base > $out";
  data = mk "layers-test-data-2.0" "echo data > $out";
  lib = mk "layers-test-lib-3.0" "echo ${base} > $out";
in mk "layers-test-app-4.0" "echo ${lib} ${data} > $out"
`
	env := append(os.Environ(), "NIX_CONFIG="+testenv.NixConfig)
	run := func(name string, args ...string) []byte {
		cmd := exec.Command(name, args...)
		cmd.Env = env
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		assert.NilError(t, err, stderr.String())
		return out
	}
	app := strings.TrimSpace(string(run("nix-build", "--no-out-link", "-E", expr)))
	assert.Assert(t, strings.HasSuffix(app, "-layers-test-app-4.0"), app)
	pathInfo := run("nix", "path-info", "--json", "--recursive", "--closure-size", app)
	closure := filepath.Join(t.TempDir(), "closure.json")
	assert.NilError(t, os.WriteFile(closure, pathInfo, 0o644))

	var infos []struct {
		Path        string   `json:"path"`
		NarSize     uint64   `json:"narSize"`
		ClosureSize uint64   `json:"closureSize"`
		References  []string `json:"references"`
	}
	assert.NilError(t, json.Unmarshal(pathInfo, &infos)) // Nix 2.18 and older print a list
	assert.Equal(t, len(infos), 4)
	narSize := map[string]uint64{}
	for _, i := range infos {
		narSize[i.Path] = i.NarSize
	}

	for _, strategy := range layers.Strategies() {
		for _, budget := range []string{"1", "2", "94"} {
			code, out, errOut := runCLI(t, "layers", "--closure", closure, "--strategy", strategy, "--budget", budget)
			assert.Equal(t, code, 0, errOut)
			checkPlanOutput(t, out, 94)
			var plan layers.LayerPlan
			assert.NilError(t, json.Unmarshal([]byte(out), &plan))
			if budget == "1" {
				assert.Equal(t, len(plan.Layers), 1)
			}
			// Every path once, sizes from Nix, and each layer after the
			// layers holding what it references.
			layerOf := map[string]int{}
			for li, l := range plan.Layers {
				var size uint64
				for _, p := range l.Paths {
					_, dup := layerOf[p]
					assert.Assert(t, !dup, p)
					layerOf[p] = li
					size += narSize[p]
				}
				assert.Equal(t, l.Size, size)
			}
			assert.Equal(t, len(layerOf), 4)
			for _, i := range infos {
				for _, r := range i.References {
					assert.Assert(t, layerOf[r] <= layerOf[i.Path], "%s before %s", i.Path, r)
				}
			}
		}
	}

	// With the app's library requested too, nixery gives it a layer of
	// its own: the root reaches it directly, so the app no longer
	// dominates it.
	var lib string
	for _, i := range infos {
		if strings.HasSuffix(i.Path, "-layers-test-lib-3.0") {
			lib = i.Path
		}
	}
	code, out, errOut := runCLI(t, "layers", "--closure", closure, "--strategy", "nixery", "--root", app, "--root", lib)
	assert.Equal(t, code, 0, errOut)
	var plan layers.LayerPlan
	assert.NilError(t, json.Unmarshal([]byte(out), &plan))
	found := false
	for _, l := range plan.Layers {
		if len(l.Paths) == 2 && l.Paths[0] == lib || len(l.Paths) == 2 && l.Paths[1] == lib {
			found = true // lib with base, which only it references
		}
		for _, p := range l.Paths {
			if p == lib {
				assert.Assert(t, !hasPath(l.Paths, app), "lib shares the app's layer: %v", l.Paths)
			}
		}
	}
	assert.Assert(t, found, "%s", out)

	// The same closure as newer Nix prints it, an object keyed by path,
	// gives the same plan.
	obj := map[string]any{}
	for _, i := range infos {
		obj[i.Path] = map[string]any{"narSize": i.NarSize, "closureSize": i.ClosureSize, "references": i.References}
	}
	objData, err := json.Marshal(obj)
	assert.NilError(t, err)
	objFile := filepath.Join(t.TempDir(), "closure-object.json")
	assert.NilError(t, os.WriteFile(objFile, objData, 0o644))
	_, fromList, _ := runCLI(t, "layers", "--closure", closure, "--strategy", "nixery")
	code, fromObject, errOut := runCLI(t, "layers", "--closure", objFile, "--strategy", "nixery")
	assert.Equal(t, code, 0, errOut)
	assert.Equal(t, fromObject, fromList)
}
