package main

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// TestPackCommandNotStorePaths: anything but a top-level store path is
// refused before anything is written.
func TestPackCommandNotStorePaths(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "blob")
	for _, p := range []string{
		"nix/store/0c5ma6vzrfd1asz7jg4z0pb8dh8f6z2b-hello",
		"/nix/store/0c5ma6vzrfd1asz7jg4z0pb8dh8f6z2b-hello/bin",
		"/nix/store/0c5ma6vzrfd1asz7jg4z0pb8dh8f6z2b-hello/",
		"/nix/store/",
		"/nix/store/..",
		"/nix/store/../../etc",
		"/usr/bin",
		"",
		"/nix/store/.links",
		"/nix/store/.links/0c5ma6vzrfd1asz7jg4z0pb8dh8f6z2b",
		"/nix/store/0c5ma6vzrfd1asz7jg4z0pb8dh8f6z2b",
		"/nix/store/0c5ma6vzrfd1asz7jg4z0pb8dh8f6z2b-.hidden",
		"/nix/store/short-hello",
	} {
		code, _, stderr := runCLI(t, "pack", "--output", out, "/nix/store/0c5ma6vzrfd1asz7jg4z0pb8dh8f6z2b-ok", p)
		assert.Equal(t, code, 2, p)
		assert.Assert(t, is.Contains(stderr, "nixery pack: "+strconv.Quote(p)+" is not a top-level store path"), p)
	}
	entries, err := os.ReadDir(dir)
	assert.NilError(t, err)
	assert.Equal(t, len(entries), 0, "a refused pack wrote %v", entries)

	code, _, stderr := runCLI(t, "pack", "--output", filepath.Join(dir, "missing", "blob"), "/nix/store/0c5ma6vzrfd1asz7jg4z0pb8dh8f6z2b-ok")
	assert.Equal(t, code, 1)
	assert.Assert(t, is.Contains(stderr, "nixery pack: create "+filepath.Join(dir, "missing", "blob")), stderr)
}
