//go:build integration

package e2e

import (
	"path/filepath"
	"strings"
	"testing"

	"gotest.tools/v3/assert"

	"github.com/nixery-action/nixery-action/internal/testenv"
)

// TestBuildCollisionWarning: two packages of a small nixpkgs provide
// bin/tool; the build log has one warning line for it, naming the
// package kept (alpha, first by name), the one dropped and the rule.
func TestBuildCollisionWarning(t *testing.T) {
	testenv.Require(t, "nix")
	dir := filepath.Join(repoRoot, "testdata", "collide")
	r := run(t, nil, "build", "--nixpkgs", "path:"+dir, "--no-default-packages", "--push=false", "--cmd", "tool", "beta", "alpha")
	assert.Equal(t, r.code, 0, r.stderr)
	var warnings []string
	for _, line := range strings.Split(r.stderr, "\n") {
		if strings.Contains(line, "warning:") {
			warnings = append(warnings, line)
		}
	}
	assert.Equal(t, len(warnings), 1, r.stderr)
	w := warnings[0]
	assert.Assert(t, strings.HasPrefix(w, "[linux/amd64] warning: /bin/tool is provided by more than one package: kept alpha's /nix/store/"), w)
	assert.Assert(t, strings.Contains(w, "-alpha/bin/tool, dropped beta's /nix/store/"), w)
	assert.Assert(t, strings.HasSuffix(w, "-beta/bin/tool (the earlier package wins: your own flake packages first, then nixpkgs packages by name)"), w)
}
