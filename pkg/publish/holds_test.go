package publish

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"gotest.tools/v3/assert"
)

// Holds hashes a layout's blob file once while it is unchanged: a second
// Holds of the same file does not read it. A file of another size is not
// read at all; a file written again is hashed again, so a blob gone bad
// is caught.
func TestLayoutHoldsHashesOnce(t *testing.T) {
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
	old := time.Now().Add(-time.Hour)
	assert.NilError(t, os.Chtimes(file, old, old))
	time.Sleep(settle + 100*time.Millisecond) // its ctime settled too
	l := NewLayout(Output{Kind: OCILayout, Path: dir}, WriteOptions{})
	size := int64(len(data))

	assert.Assert(t, !l.Holds(mustTarget(t, "example.com/x").Repo, d, size+1))
	assert.Equal(t, hashed, 0, "a file of another size is read")
	assert.Assert(t, l.Holds(mustTarget(t, "example.com/x").Repo, d, size))
	assert.Assert(t, l.Holds(mustTarget(t, "example.com/x").Repo, d, size))
	assert.Equal(t, hashed, 1, "an unchanged file is hashed again")

	// The same size, other bytes, in the same file: its mtime changed.
	bad := []byte("A layer's bytes")
	assert.NilError(t, os.WriteFile(file, bad, 0o644))
	assert.Assert(t, !l.Holds(mustTarget(t, "example.com/x").Repo, d, size), "a blob gone bad is held")
	assert.Equal(t, hashed, 2)

	// Put right again, in a new file (the inode may be the same number)
	// with the old mtime: its ctime tells it apart.
	assert.NilError(t, os.Remove(file))
	assert.NilError(t, os.WriteFile(file, data, 0o644))
	assert.NilError(t, os.Chtimes(file, old, old))
	time.Sleep(settle + 100*time.Millisecond)
	assert.Assert(t, l.Holds(mustTarget(t, "example.com/x").Repo, d, size))
	assert.Equal(t, hashed, 3)
	// Bad bytes put back the same way are hashed again, and found bad.
	assert.NilError(t, os.Remove(file))
	assert.NilError(t, os.WriteFile(file, bad, 0o644))
	assert.NilError(t, os.Chtimes(file, old, old))
	time.Sleep(settle + 100*time.Millisecond)
	assert.Assert(t, !l.Holds(mustTarget(t, "example.com/x").Repo, d, size), "a blob gone bad is held")
	assert.Equal(t, hashed, 4)
}

// A file written just now is hashed at every Holds: written again within
// the same clock tick, it could keep its mtime.
func TestLayoutHoldsRehashesFreshFile(t *testing.T) {
	hashed := 0
	orig := hashBlob
	hashBlob = func(f *os.File) (v1.Hash, error) { hashed++; return orig(f) }
	t.Cleanup(func() { hashBlob = orig })

	dir := t.TempDir()
	data := []byte("fresh bytes")
	sum := sha256.Sum256(data)
	d := v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
	file := blobPath(dir, d.String())
	assert.NilError(t, os.MkdirAll(filepath.Dir(file), 0o755))
	assert.NilError(t, os.WriteFile(file, data, 0o644))
	l := NewLayout(Output{Kind: OCILayout, Path: dir}, WriteOptions{})
	assert.Assert(t, l.Holds(mustTarget(t, "example.com/x").Repo, d, int64(len(data))))
	assert.Assert(t, l.Holds(mustTarget(t, "example.com/x").Repo, d, int64(len(data))))
	assert.Equal(t, hashed, 2)
}
