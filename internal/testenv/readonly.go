package testenv

import (
	"os/exec"
	"testing"
)

// ReadOnlyDir returns a new empty directory that nobody can write in, not
// even root: it is made immutable (chattr +i, which needs a file system
// with attributes, such as ext4) until the test ends.
func ReadOnlyDir(t testing.TB) string {
	t.Helper()
	Require(t, "chattr")
	dir := t.TempDir()
	if out, err := exec.Command("chattr", "+i", dir).CombinedOutput(); err != nil {
		t.Fatalf("chattr +i %s: %v %s (set TMPDIR to a directory on ext4)", dir, err, out)
	}
	// Registered after TempDir's removal, so it runs before it.
	t.Cleanup(func() {
		if out, err := exec.Command("chattr", "-i", dir).CombinedOutput(); err != nil {
			t.Errorf("chattr -i %s: %v %s", dir, err, out)
		}
	})
	return dir
}
