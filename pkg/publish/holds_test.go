package publish

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"gotest.tools/v3/assert"
)

// Holds reads a layout's blob file only when its size is the blob's, and
// then hashes it: a blob gone bad, of the right size, is caught.
func TestLayoutHoldsChecksSizeThenBytes(t *testing.T) {
	hashed := 0
	orig := hashBlob
	hashBlob = func(f *os.File) (v1.Hash, error) { hashed++; return orig(f) }
	t.Cleanup(func() { hashBlob = orig })

	dir := t.TempDir()
	data := []byte("a layer's bytes")
	sum := sha256.Sum256(data)
	d := v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
	file := blobPath(dir, d.String())
	assert.NilError(t, os.MkdirAll(filepath.Dir(file), 0o755))
	assert.NilError(t, os.WriteFile(file, data, 0o644))
	l := NewLayout(Output{Kind: OCILayout, Path: dir}, WriteOptions{})
	repo := mustTarget(t, "example.com/x").Repo
	size := int64(len(data))

	assert.Assert(t, !l.Holds(repo, d, size+1))
	assert.Equal(t, hashed, 0, "a file of another size is read")
	assert.Assert(t, l.Holds(repo, d, size))
	assert.Equal(t, hashed, 1)

	// The same size, other bytes.
	assert.NilError(t, os.WriteFile(file, []byte("A layer's bytes"), 0o644))
	assert.Assert(t, !l.Holds(repo, d, size), "a blob gone bad is held")
	assert.Equal(t, hashed, 2)
}
