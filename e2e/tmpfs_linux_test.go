//go:build integration

package e2e

import (
	"syscall"
	"testing"

	"gotest.tools/v3/assert"
)

// mountTmpfs mounts a tmpfs of size (e.g. "256m") on a new temporary
// directory and returns it: another file system than the tests' (the
// tests run as root).
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	assert.NilError(t, syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size), "mount a tmpfs on %s (the test runs as root)", dir)
	t.Cleanup(func() { syscall.Unmount(dir, 0) })
	return dir
}

// remountReadOnly makes the tmpfs mountTmpfs mounted on dir read-only.
func remountReadOnly(t *testing.T, dir string) {
	t.Helper()
	assert.NilError(t, syscall.Mount("", dir, "", syscall.MS_REMOUNT|syscall.MS_RDONLY, ""), "remount %s read-only", dir)
}
