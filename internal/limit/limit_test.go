package limit

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
)

// endless is a stream that never ends.
type endless struct{}

func (endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = ' '
	}
	return len(p), nil
}

func TestReadAllWithinAndAtTheBound(t *testing.T) {
	for _, n := range []int{0, 1, 999, 1000} {
		data := bytes.Repeat([]byte("x"), n)
		got, err := ReadAll(bytes.NewReader(data), 1000)
		assert.NilError(t, err)
		assert.DeepEqual(t, got, data)
	}
	// Across several chunks.
	data := bytes.Repeat([]byte("0123456789"), chunk/5)
	got, err := ReadAll(bytes.NewReader(data), int64(len(data)))
	assert.NilError(t, err)
	assert.Assert(t, bytes.Equal(got, data))
}

func TestReadAllPastTheBound(t *testing.T) {
	_, err := ReadAll(strings.NewReader(strings.Repeat("x", 1001)), 1000)
	var le *Error
	assert.Assert(t, errors.As(err, &le), "%v", err)
	assert.Equal(t, le.Bound, int64(1000))
	assert.Equal(t, err.Error(), "larger than 1000 bytes")

	_, err = ReadAll(endless{}, 3*chunk+5)
	assert.Assert(t, errors.As(err, &le), "%v", err)
}

// A regular file over the bound is refused before it is read.
func TestReadAllRegularFileBySize(t *testing.T) {
	file := filepath.Join(t.TempDir(), "big")
	assert.NilError(t, os.WriteFile(file, make([]byte, 2<<10), 0o644))
	f, err := os.Open(file)
	assert.NilError(t, err)
	defer f.Close()
	_, err = ReadAll(f, 1<<10)
	assert.Error(t, err, "larger than 1 KiB")
	off, _ := f.Seek(0, io.SeekCurrent)
	assert.Equal(t, off, int64(0))
}

func TestReaderStopsAtTheBound(t *testing.T) {
	n, err := io.Copy(io.Discard, Reader(endless{}, 10<<20))
	assert.Equal(t, n, int64(10<<20))
	assert.Error(t, err, "larger than 10 MiB")
}
