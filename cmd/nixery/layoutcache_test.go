package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
)

// The layout written to is a cache only as a hint: one that cannot be
// read as one is noted, and the build packs every layer.
func TestReadLayoutCacheUnreadable(t *testing.T) {
	dir := t.TempDir()
	assert.NilError(t, os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion": "1.0.0"}`), 0o644))
	assert.NilError(t, os.WriteFile(filepath.Join(dir, "index.json"), []byte(`{"manifests": 7}`), 0o644))
	j := &buildJob{layout: dir}
	j.readLayoutCache(false)
	assert.Assert(t, j.req.LocalCache == nil)
	assert.Equal(t, len(j.notes), 1)
	assert.Assert(t, strings.HasPrefix(j.notes[0], "cache: the layout "+dir+" cannot be read as a cache"), j.notes[0])

	// --no-cache reads nothing, and has nothing to say.
	j = &buildJob{layout: dir}
	j.readLayoutCache(true)
	assert.Equal(t, len(j.notes), 0)
}
