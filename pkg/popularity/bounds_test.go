package popularity

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"gotest.tools/v3/assert"

	"github.com/nixery-action/nixery-action/internal/testenv"
)

// narinfo is a narinfo naming refs.
func narinfo(hash string, refs []string) string {
	return "StorePath: /nix/store/" + hash + "-x\nURL: nar/x.nar\nCompression: none\nNarSize: 1\nReferences: " + strings.Join(refs, " ") + "\n"
}

// cacheServer serves narinfos made by answer from the request's hash.
func cacheServer(t *testing.T, answer func(hash string) string) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, answer(strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/"), ".narinfo")))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

var root = "/nix/store/" + testenv.NixHash(1) + "-root"

// A cache whose narinfos always name new references is stopped at the
// closure bound (lowered here to 10,000; e2e runs the real one).
func TestPopcountEndlessReferences(t *testing.T) {
	var next atomic.Int64
	next.Store(100)
	cache := cacheServer(t, func(hash string) string {
		var refs []string
		for range 100 {
			refs = append(refs, testenv.NixHash(next.Add(1))+"-new")
		}
		return narinfo(hash, refs)
	})
	start := time.Now()
	_, err := (&Popcount{Cache: cache, maxPaths: 10_000}).Run(context.Background(), []string{root})
	assert.Error(t, err, "binary cache "+cache+": the closure has more than 10000 paths, the bound on popcount's walk (MaxClosurePaths): is it a Nix binary cache? Its narinfos keep naming new references")
	assert.Assert(t, time.Since(start) < 10*time.Second, time.Since(start))
}

// A reference that is not a store path's base name is an error, so no
// package is ever counted from it; a valid one beside it is read as usual.
func TestPopcountBadReference(t *testing.T) {
	good := testenv.NixHash(2) + "-glibc"
	for _, bad := range []string{"../../../etc/passwd", testenv.NixHash(3) + "-a/../../b", "short-x", testenv.NixHash(4) + "-"} {
		var asked atomic.Int64
		cache := cacheServer(t, func(hash string) string {
			asked.Add(1)
			if hash == testenv.NixHash(1) {
				return narinfo(hash, []string{good, bad})
			}
			return narinfo(hash, nil)
		})
		d, err := (&Popcount{Cache: cache}).Run(context.Background(), []string{root})
		assert.Error(t, err, fmt.Sprintf("binary cache %s: the narinfo of %s names the reference %q, which is not a store path's base name (32 nix-base32 characters, a dash, a name): is it a Nix binary cache?", cache, root, bad))
		assert.Assert(t, d == nil)
		assert.Equal(t, asked.Load(), int64(1), "nothing is fetched for %q", bad)
	}
}

// A narinfo over MaxNarinfoBytes is one error, over HTTP and from a file,
// and is not retried.
func TestPopcountOversizedNarinfo(t *testing.T) {
	huge := narinfo(testenv.NixHash(1), []string{testenv.NixHash(2) + "-" + strings.Repeat("x", 200)}) + strings.Repeat("Sig: x\n", MaxNarinfoBytes/7)
	var asked atomic.Int64
	cache := cacheServer(t, func(string) string { asked.Add(1); return huge })
	want := func(cache string) string {
		return "binary cache " + cache + ": the narinfo of " + root + " is larger than 1 MiB, the bound on one narinfo (MaxNarinfoBytes; real ones are a few KiB): is it a Nix binary cache?"
	}
	_, err := (&Popcount{Cache: cache, Wait: time.Millisecond}).Run(context.Background(), []string{root})
	assert.Error(t, err, want(cache))
	assert.Equal(t, asked.Load(), int64(1))

	dir := t.TempDir()
	assert.NilError(t, os.WriteFile(filepath.Join(dir, testenv.NixHash(1)+".narinfo"), []byte(huge), 0o644))
	_, err = (&Popcount{Cache: "file://" + dir}).Run(context.Background(), []string{root})
	assert.Error(t, err, want("file://"+dir))
}

// A cache too slow to finish within the timeout is one error saying how
// far it got.
func TestPopcountTimeout(t *testing.T) {
	var next atomic.Int64
	next.Store(100)
	cache := cacheServer(t, func(hash string) string {
		time.Sleep(50 * time.Millisecond)
		return narinfo(hash, []string{testenv.NixHash(next.Add(1)) + "-new"})
	})
	start := time.Now()
	_, err := (&Popcount{Cache: cache, Timeout: time.Second}).Run(context.Background(), []string{root})
	assert.ErrorContains(t, err, "binary cache "+cache+": not done after 1s (the timeout), with ")
	assert.ErrorContains(t, err, "allow more time (nixery popcount --timeout)")
	assert.Assert(t, time.Since(start) < 5*time.Second, time.Since(start))
}

// endlessLines is a stream of text that never ends.
type endlessLines struct{ line string }

func (e endlessLines) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		n += copy(p[n:], e.line)
	}
	return n, nil
}

func TestReadStorePathsBounds(t *testing.T) {
	_, err := ReadStorePaths(endlessLines{"\n"})
	assert.Error(t, err, "larger than 100 MiB, the bound on a store-paths file (MaxStorePathsBytes): give one channel's store-paths")
	_, err = ReadStorePaths(endlessLines{"/nix/store/" + testenv.NixHash(1) + "-x\n"})
	assert.Error(t, err, "more than 1000000 store paths, the bound on a store-paths file (MaxStorePaths): give one channel's store-paths")
	_, err = ReadStorePaths(endlessLines{"x"})
	assert.Error(t, err, "a line is longer than 64 KiB: a store-paths file has one store path a line")
}

// A server that answers 200 with something else than narinfos (a wrong
// URL, a web page) is no binary cache: an error, not {} over good data;
// so is a list of no store paths.
func TestPopcountNotABinaryCache(t *testing.T) {
	page := cacheServer(t, func(string) string { return "<html><body>Welcome</body></html>" })
	d, err := (&Popcount{Cache: page}).Run(context.Background(), []string{root})
	assert.Error(t, err, "binary cache "+page+": the answer for "+root+" is not its narinfo (no StorePath: line naming it): is "+page+" a Nix binary cache?")
	assert.Assert(t, d == nil)
	other := cacheServer(t, func(string) string { return narinfo(testenv.NixHash(9), nil) })
	_, err = (&Popcount{Cache: other}).Run(context.Background(), []string{root})
	assert.ErrorContains(t, err, "is not its narinfo")
	_, err = (&Popcount{Cache: page}).Run(context.Background(), nil)
	assert.Error(t, err, "no store paths to count: give store paths, or a store-paths file that lists some")
}
