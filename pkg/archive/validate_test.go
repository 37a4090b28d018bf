package archive

import (
	"io"
	"testing"

	"gotest.tools/v3/assert"
)

func TestOptionsValidate(t *testing.T) {
	for _, c := range []int{-1, MaxConcurrency + 1, 1 << 40} {
		_, err := PackPaths(io.Discard, nil, Options{Concurrency: c})
		assert.ErrorContains(t, err, "is out of range: use 1 to", "%d", c)
	}
	assert.NilError(t, Options{Concurrency: MaxConcurrency, Level: 9}.Validate())
}
