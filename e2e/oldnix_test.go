//go:build integration

package e2e

import (
	"os"
	"path/filepath"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// TestBuildOldNix: with a nix on PATH that answers as Debian 11's Nix
// 2.3.7 (its version, and "unrecognised flag" for what Nix 2.4 added),
// the build fails with a last line naming the version and where it is,
// below Nix's own.
func TestBuildOldNix(t *testing.T) {
	bin := t.TempDir()
	script := `#!/bin/sh
if [ "$1" = --version ]; then echo "nix (Nix) 2.3.7"; exit 0; fi
echo "error: unrecognised flag '$1'" >&2
exit 1
`
	assert.NilError(t, os.WriteFile(filepath.Join(bin, "nix"), []byte(script), 0o755))
	r := run(t, []string{"PATH=" + bin + ":" + os.Getenv("PATH")},
		"build", "--nixpkgs", standIn(), "--output", "oci:"+filepath.Join(t.TempDir(), "out"), "hello")
	assert.Equal(t, r.code, 1, "stdout: %s\nstderr: %s", r.stdout, r.stderr)
	assert.Check(t, is.Equal(errorLine(r.stderr),
		"nixery build: Nix 2.3.7 is too old: nixery needs Nix 2.8 or later (found at "+filepath.Join(bin, "nix")+")"))
}
