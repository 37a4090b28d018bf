package testenv

import (
	"os/exec"
	"path/filepath"
	"testing"

	"gotest.tools/v3/assert"
)

// The Go tests and the scripts configure Nix alike: what sourcing
// scripts/nix-config.sh exports is NixConfig.
func TestNixConfigMatchesScript(t *testing.T) {
	script, err := filepath.Abs(filepath.Join("..", "..", "scripts", "nix-config.sh"))
	assert.NilError(t, err)
	cmd := exec.Command("sh", "-c", `. "$1" && printf '%s\n' "$NIX_CONFIG"`, "sh", script)
	cmd.Env = []string{} // no NIX_CONFIG from the caller
	out, err := cmd.Output()
	assert.NilError(t, err)
	assert.Equal(t, string(out), NixConfig)
}
