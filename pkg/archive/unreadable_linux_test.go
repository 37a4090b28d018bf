package archive

import (
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"

	"gotest.tools/v3/assert"
	"gotest.tools/v3/fs"
)

// TestPackUnreadable: a file or directory the packer may not read is an
// error naming it. Root reads everything, so the packing goroutine's
// thread takes another file-system uid (Linux only), which also drops
// root's permission overrides; as any other user, the owner's missing
// read bit does the same.
func TestPackUnreadable(t *testing.T) {
	for _, victim := range []string{"share/secret", "share"} {
		dir := fs.NewDir(t, "abc-unreadable", fs.WithDir("share", fs.WithFile("secret", "x")))
		// The fixture's own directory is root's alone (0700): open it to
		// the other uid. Nothing above it is touched: the temporary
		// directory it is in (/tmp) must stay as it is (1777).
		parent, err := os.Stat(filepath.Dir(dir.Path()))
		assert.NilError(t, err)
		assert.Assert(t, parent.Mode().Perm()&0o001 != 0, "%s is not searchable by other users; set TMPDIR to a directory that is", filepath.Dir(dir.Path()))
		assert.NilError(t, os.Chmod(dir.Path(), 0o755))
		path := filepath.Join(dir.Path(), victim)
		assert.NilError(t, os.Chmod(path, 0))
		errc := make(chan error)
		go func() {
			// Never unlocked: the thread, with its changed uid, ends with
			// the goroutine instead of going back to the scheduler.
			runtime.LockOSThread()
			if os.Geteuid() == 0 {
				syscall.Setfsuid(65534)
			}
			_, _, err := packTree(dir.Path(), Options{})
			errc <- err
		}()
		err = <-errc
		assert.ErrorContains(t, err, "read "+path+": ")
		assert.ErrorContains(t, err, "permission denied")
		assert.NilError(t, os.Chmod(path, 0o755)) // so the cleanup can remove it
	}
}
