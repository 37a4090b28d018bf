package archive

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"gotest.tools/v3/assert"
)

// cancelAfter cancels its context once it has been written limit bytes.
type cancelAfter struct {
	cancel context.CancelFunc
	limit  int64
	n      int64
}

func (c *cancelAfter) Write(b []byte) (int, error) {
	c.n += int64(len(b))
	if c.n >= c.limit {
		c.cancel()
	}
	return len(b), nil
}

// A cancellation in the middle of a large file stops the packer within a
// read buffer, not at the end of the file.
func TestPackStopsInsideAFile(t *testing.T) {
	for _, uncompressed := range []bool{true, false} {
		dir := filepath.Join(t.TempDir(), "big")
		assert.NilError(t, os.Mkdir(dir, 0o755))
		const size = 64 << 20
		f, err := os.Create(filepath.Join(dir, "file"))
		assert.NilError(t, err)
		assert.NilError(t, f.Truncate(size)) // sparse: cheap to make, read in full
		assert.NilError(t, f.Close())

		ctx, cancel := context.WithCancel(context.Background())
		read := &cancelAfter{cancel: cancel, limit: 1 << 20}
		p, err := newPacker(io.Discard, Options{Context: ctx, Uncompressed: uncompressed, Progress: func(n int) { read.Write(make([]byte, n)) }})
		assert.NilError(t, err)
		err = p.addTree(dir, "nix/store/big")
		assert.ErrorIs(t, err, context.Canceled)
		assert.Assert(t, read.n < 2<<20, "uncompressed=%v: %d bytes packed after the cancellation at 1 MiB", uncompressed, read.n)
		cancel()
	}
}

// A cancelled context stops packing store paths and the customisation
// layer before any work.
func TestPackCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	dir := t.TempDir()
	assert.NilError(t, os.WriteFile(filepath.Join(dir, "a"), []byte("a"), 0o644))
	p, err := newPacker(&cancelAfter{cancel: func() {}, limit: 1 << 30}, Options{Context: ctx})
	assert.NilError(t, err)
	assert.ErrorIs(t, p.addTree(dir, "nix/store/x"), context.Canceled)

	pkg := filepath.Join(t.TempDir(), "pkg")
	assert.NilError(t, os.MkdirAll(filepath.Join(pkg, "bin"), 0o755))
	_, err = PackCustomisation(&cancelAfter{cancel: func() {}, limit: 1 << 30}, Customisation{Packages: []string{pkg}}, Options{Context: ctx})
	assert.ErrorIs(t, err, context.Canceled)
}
