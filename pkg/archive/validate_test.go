package archive

import (
	"io"
	"testing"

	"gotest.tools/v3/assert"

	"github.com/nixery-action/nixery-action/pkg/image"
)

func TestOptionsValidate(t *testing.T) {
	for _, c := range []int{-1, MaxConcurrency + 1, 1 << 40} {
		_, err := PackPaths(io.Discard, nil, Options{Concurrency: c})
		assert.ErrorContains(t, err, "is out of range: use 1 to", "%d", c)
	}
	assert.NilError(t, Options{Concurrency: MaxConcurrency, Level: 9}.Validate())
}

// The packer reads SOURCE_DATE_EPOCH as pkg/image does: what one accepts
// the other does, at the same instant.
func TestSourceDateEpochAsImageReadsIt(t *testing.T) {
	for _, v := range []string{" 5", "5", "7\n", "-3", "x", "253402300800"} {
		t.Setenv("SOURCE_DATE_EPOCH", v)
		packed, perr := Options{}.modTime()
		created, ierr := image.SourceDateEpoch(func(string) string { return v })
		assert.Equal(t, perr == nil, ierr == nil, "%q: packer %v, image %v", v, perr, ierr)
		if perr == nil {
			assert.Equal(t, packed, created, v)
		}
	}
}
