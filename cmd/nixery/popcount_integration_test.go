//go:build integration

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/nixery-action/nixery-action/internal/testenv"
)

// A store-paths file inside a store path (as a channel's store-paths.xz
// is) is a FILE, read for the paths it lists: only a top-level store path
// (/nix/store/HASH-NAME) is taken for a store path. A FILE comes alone.
func TestPopcountStorePathsFileInStore(t *testing.T) {
	testenv.Require(t, "nix-store")
	dir := filepath.Join(t.TempDir(), "channel")
	assert.NilError(t, os.Mkdir(dir, 0o755))
	assert.NilError(t, os.WriteFile(filepath.Join(dir, "store-paths"), []byte(popcountRoot+"\n"), 0o644))
	file := strings.TrimSpace(testenv.Run(t, "nix-store", "--add", dir)) + "/store-paths"
	assert.Assert(t, strings.HasPrefix(file, "/nix/store/"), file)

	cache, _ := narinfoServer(t, "")
	code, stdout, stderr := runCLI(t, "popcount", "--cache", cache, file)
	assert.Equal(t, code, 0, stderr)
	assert.Check(t, is.Contains(stdout, `"glibc-2.40": 1`))

	for _, args := range [][]string{{popcountRoot, file}, {file, popcountRoot}} {
		code, stdout, stderr = runCLI(t, append([]string{"popcount", "--cache", cache}, args...)...)
		assert.Check(t, is.Equal(code, 2), "%v: %s", args, stderr)
		assert.Check(t, is.Contains(stderr, `"`+file+`" is`), "%v", args)
		assert.Check(t, is.Contains(stderr, "give one store-paths file, or store paths"), "%v", args)
		assert.Check(t, is.Equal(stdout, ""))
	}
}
