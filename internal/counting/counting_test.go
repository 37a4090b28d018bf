package counting

import (
	"bytes"
	"errors"
	"testing"

	"gotest.tools/v3/assert"
)

// short takes at most 3 bytes of a write, then fails.
type short struct{}

func (short) Write(p []byte) (int, error) { return min(len(p), 3), errors.New("full") }

// N counts what the destination took, also when it took less.
func TestWriter(t *testing.T) {
	var buf bytes.Buffer
	w := &Writer{W: &buf}
	w.Write([]byte("hello"))
	w.Write([]byte(" world"))
	assert.Equal(t, w.N, int64(11))
	assert.Equal(t, buf.String(), "hello world")

	s := &Writer{W: short{}}
	_, err := s.Write([]byte("hello"))
	assert.ErrorContains(t, err, "full")
	assert.Equal(t, s.N, int64(3))
}
