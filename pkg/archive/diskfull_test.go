package archive

import (
	"errors"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"gotest.tools/v3/assert"
)

// fullDisk takes limit bytes, then fails as a full disk's file does.
type fullDisk struct{ limit, n int }

func (d *fullDisk) Write(b []byte) (int, error) {
	if d.n+len(b) > d.limit {
		return 0, &os.PathError{Op: "write", Path: "/tmp/nixery-build-1/layer-1", Err: syscall.ENOSPC}
	}
	d.n += len(b)
	return len(b), nil
}

// A layer file that cannot be written (a full disk) is told as a write
// of the layer, not as a read of the store path being packed; a file
// that cannot be read is still a read.
func TestPackWriteErrorIsNoReadError(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "big")
	assert.NilError(t, os.Mkdir(dir, 0o755))
	data := make([]byte, 4<<20)
	rand.New(rand.NewSource(1)).Read(data) // incompressible
	assert.NilError(t, os.WriteFile(filepath.Join(dir, "a.bin"), data, 0o644))
	for _, uncompressed := range []bool{true, false} {
		p, err := newPacker(&fullDisk{limit: 64 << 10}, Options{Uncompressed: uncompressed})
		assert.NilError(t, err)
		err = p.addTree(dir, "nix/store/big")
		if err == nil {
			_, err = p.close()
		}
		p.abort()
		assert.Assert(t, errors.Is(err, syscall.ENOSPC), "uncompressed=%v: %v", uncompressed, err)
		assert.Check(t, !strings.Contains(err.Error(), "read "), "uncompressed=%v: %v", uncompressed, err)
	}

	p, err := newPacker(io.Discard, Options{Uncompressed: true})
	assert.NilError(t, err)
	saved := openFile
	defer func() { openFile = saved }()
	openFile = func(d *os.File, name string) (*os.File, error) {
		f, err := saved(d, name)
		if err == nil {
			f.Close() // reads now fail
		}
		return f, err
	}
	err = p.addTree(dir, "nix/store/big")
	assert.ErrorContains(t, err, "read "+filepath.Join(dir, "a.bin")+": ")
}
