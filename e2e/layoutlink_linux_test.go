//go:build integration

package e2e

import (
	"os"
	"path/filepath"
	"testing"

	"gotest.tools/v3/assert"

	"github.com/nixery-action/nixery-action/internal/testenv"
)

// TestLayoutBlobsFromTMPDIR builds into an OCI layout with TMPDIR on the
// layout's file system (the layers are linked into it) and on a tmpfs
// (copied): either way every blob holds its digest's bytes, and nothing
// is left in TMPDIR or in the layout's blobs.
func TestLayoutBlobsFromTMPDIR(t *testing.T) {
	testenv.Require(t, "nix")
	tmpfs := mountTmpfs(t, "256m")
	for name, tmp := range map[string]string{"same file system": t.TempDir(), "tmpfs": tmpfs} {
		dir := filepath.Join(t.TempDir(), "oci")
		res := decodeResult(t, run(t, []string{"TMPDIR=" + tmp}, "build", "--nixpkgs", standIn(), "--json",
			"--platforms", "linux/amd64,linux/arm64", "--output", "oci:"+dir, "hello"))
		assert.Assert(t, res.Packed > 0, name)
		checkBlobs(t, dir)
		left, err := os.ReadDir(tmp)
		assert.NilError(t, err)
		assert.Equal(t, len(left), 0, "%s: left in TMPDIR: %v", name, left)
	}
}
