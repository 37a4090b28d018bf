package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/nixery-action/nixery-action/internal/testenv"
)

// popcountRoot is the store path popcount starts from in these tests.
var popcountRoot = "/nix/store/" + testenv.NixHash(1) + "-root"

// narinfoServer is a binary cache in which popcountRoot references refs
// (glibc when ""), and they nothing; it counts the requests it answers.
func narinfoServer(t *testing.T, refs string) (string, func() int) {
	t.Helper()
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		hash := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/"), ".narinfo")
		if hash != testenv.NixHash(1) {
			io.WriteString(w, "StorePath: /nix/store/"+hash+"-x\nReferences: \n")
			return
		}
		if refs == "" {
			refs = testenv.NixHash(2) + "-glibc-2.40"
		}
		io.WriteString(w, "StorePath: "+popcountRoot+"\nReferences: "+refs+"\n")
	}))
	t.Cleanup(srv.Close)
	return srv.URL, func() int { return int(n.Load()) }
}

// popcount --output FILE: a path that cannot be written fails before the
// cache is read, naming the flag; the file is renamed into place when
// complete, so a failed run leaves what was there.
func TestPopcountOutputFile(t *testing.T) {
	dir := t.TempDir()
	cache, requests := narinfoServer(t, "")
	missing := filepath.Join(dir, "missing", "pop.json")
	code, _, stderr := runCLI(t, "popcount", "--cache", cache, "--output", missing, popcountRoot)
	assert.Check(t, code != 0)
	assert.Check(t, is.Equal(stderr, "nixery popcount: --output "+missing+": cannot write there (no such file or directory): name a file in a directory you can write to\n"))
	assert.Check(t, is.Equal(requests(), 0), "the cache was read first")

	out := filepath.Join(dir, "pop.json")
	code, stdout, stderr := runCLI(t, "popcount", "--cache", cache, "--output", out, popcountRoot)
	assert.Equal(t, code, 0, stderr)
	assert.Check(t, is.Equal(stdout, ""))
	data, err := os.ReadFile(out)
	assert.NilError(t, err)
	assert.Check(t, is.Contains(string(data), `"glibc-2.40": 1`))

	hostile, _ := narinfoServer(t, "../../../etc/passwd")
	code, _, stderr = runCLI(t, "popcount", "--cache", hostile, "--output", out, popcountRoot)
	assert.Check(t, code != 0)
	assert.Check(t, is.Contains(stderr, "../../../etc/passwd"))
	kept, err := os.ReadFile(out)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(string(kept), string(data)), "a failed run changed the file")
	entries, err := os.ReadDir(dir)
	assert.NilError(t, err)
	assert.Check(t, is.Len(entries, 1), "left behind: %v", entries)
}

// popcount DIR/: a directory (a store path with a trailing slash, as a
// shell completes it) is neither a store path nor a store-paths file.
func TestPopcountDirectory(t *testing.T) {
	dir := t.TempDir() + "/"
	code, stdout, stderr := runCLI(t, "popcount", "--cache", "http://127.0.0.1:1", dir)
	assert.Equal(t, code, 2)
	assert.Equal(t, stdout, "")
	assert.Check(t, is.Contains(stderr, strconv.Quote(dir)+" is a directory, not a store-paths file: give store paths as /nix/store/HASH-NAME (no trailing /)"))
}
