package main

import (
	"bytes"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// dockerLimit is why a budget of 125 is refused: with the customisation
// layer the image would have 126 layers, which Docker's layer store
// refuses (maxLayerDepth 125).
const dockerLimit = "(Docker refuses images of more than 125 layers, and the customisation layer on top is one of them)"

// --layer-budget 125 is refused before any work, saying why.
func TestBuildLayerBudgetDockerLimit(t *testing.T) {
	code, stdout, stderr := runCLI(t, "build", "--nixpkgs", "path:/nonexistent", "--output", "oci:"+t.TempDir()+"/o", "--layer-budget", "125", "hello")
	assert.Equal(t, code, 2, stderr)
	assert.Equal(t, stdout, "")
	assert.Equal(t, stderr, "nixery build: --layer-budget 125 is out of range: use 1 to 124 "+dockerLimit+"\nRun 'nixery build --help' for usage.\n")
}

// The action's layer-budget input is refused the same way, in the
// action's words.
func TestActionLayerBudgetDockerLimit(t *testing.T) {
	var stdout bytes.Buffer
	err := runAction(envOf(map[string]string{
		"INPUT_PACKAGES": "hello", "INPUT_NIXPKGS": "path:/nonexistent", "INPUT_PUSH": "false", "INPUT_LAYER_BUDGET": "125",
	}), &stdout)
	want := "the layer-budget input 125 is out of range: use 1 to 124 " + dockerLimit
	assert.Error(t, err, want)
	assert.Check(t, is.Equal(stdout.String(), "::error title=nixery::"+want+"\n"))
}
