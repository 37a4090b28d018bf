package layers

import (
	"math"
	"testing"

	"gotest.tools/v3/assert"
)

// Absurd NAR sizes saturate instead of wrapping round to small ones.
func TestAddSizes(t *testing.T) {
	assert.Equal(t, addSizes(2, 3), uint64(5))
	assert.Equal(t, addSizes(math.MaxUint64-1, 2), uint64(math.MaxUint64))
	assert.Equal(t, addSizes(math.MaxUint64, math.MaxUint64), uint64(math.MaxUint64))
}
