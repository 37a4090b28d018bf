//go:build integration

package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gotest.tools/v3/assert"

	"github.com/nixery-action/nixery-action/internal/testenv"
	"github.com/nixery-action/nixery-action/pkg/publish"
)

// TestServeBuildsInStorage: nixery serve packs its layers in its
// storage's scratch directory (emptied as it starts, of what a killed
// server left), not in TMPDIR, and leaves it empty after the build; the
// storage's blobs hold their digests' bytes.
func TestServeBuildsInStorage(t *testing.T) {
	testenv.Require(t, "nix", "skopeo")
	storage, tmp := t.TempDir(), t.TempDir()
	scratch := filepath.Join(storage, publish.ScratchDir)
	assert.NilError(t, os.MkdirAll(filepath.Join(scratch, "nixery-build-1"), 0o700))
	assert.NilError(t, os.WriteFile(filepath.Join(scratch, "nixery-build-1", "layer-1"), []byte("stale"), 0o600))
	s := startServeEnv(t, []string{"TMPDIR=" + tmp}, storage)
	raw, err := s.inspect("hello:latest")
	assert.NilError(t, err, raw)
	packed, _ := s.built(t, "hello")
	assert.Assert(t, packed > 0)
	for _, d := range []string{scratch, tmp} {
		left, err := os.ReadDir(d)
		assert.NilError(t, err)
		assert.Equal(t, len(left), 0, "left in %s: %v", d, left)
	}
	checkBlobs(t, storage)
	s.stop(t)
	s = startServe(t, storage)
	raw, err = s.inspect("hello:latest")
	assert.NilError(t, err, raw)
	assert.Equal(t, s.builds(), 0)
}

// checkBlobs checks that each blob of the layout dir holds its digest's
// bytes, and that no temporary file is left among them.
func checkBlobs(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dir, "blobs", "sha256"))
	assert.NilError(t, err)
	assert.Assert(t, len(entries) > 0)
	for _, e := range entries {
		assert.Check(t, !strings.HasPrefix(e.Name(), "."), "left in the layout: %s", e.Name())
		data, err := os.ReadFile(filepath.Join(dir, "blobs", "sha256", e.Name()))
		assert.NilError(t, err)
		sum := sha256.Sum256(data)
		assert.Check(t, hex.EncodeToString(sum[:]) == e.Name(), "blob %s holds other bytes", e.Name())
	}
}
