package main

import (
	"os"
	"path/filepath"
	"testing"

	"gotest.tools/v3/assert"
)

// closedPipe tells a pipe nobody reads from one still read, and from a
// file: only the first stops a command.
func TestClosedPipe(t *testing.T) {
	r, w, err := os.Pipe()
	assert.NilError(t, err)
	defer w.Close()
	assert.Assert(t, !closedPipe(int(w.Fd())), "a pipe still read")
	r.Close()
	assert.Assert(t, closedPipe(int(w.Fd())), "a pipe nobody reads")

	f, err := os.Create(filepath.Join(t.TempDir(), "out"))
	assert.NilError(t, err)
	defer f.Close()
	assert.Assert(t, !closedPipe(int(f.Fd())), "a file")
}
