//go:build integration

package popularity

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"gotest.tools/v3/assert"

	"github.com/nixery-action/nixery-action/internal/testenv"
)

// binaryCache builds stand-in packages, copies them to a file:// binary
// cache with nix copy, and returns the cache, the built paths and the
// popularity computed from Nix's own database for comparison.
func binaryCache(t *testing.T) (cache string, paths []string, want Data) {
	t.Helper()
	testenv.Require(t, "nix")
	_, file, _, _ := runtime.Caller(0)
	standIn := "path:" + filepath.Join(filepath.Dir(file), "..", "..", "testdata", "nixpkgs")
	nix := func(args ...string) []byte {
		cmd := exec.Command("nix", args...)
		cmd.Env = append(os.Environ(), "NIX_CONFIG="+testenv.NixConfig)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		assert.NilError(t, err, stderr.String())
		return out
	}
	var built []struct {
		Outputs map[string]string `json:"outputs"`
	}
	assert.NilError(t, json.Unmarshal(nix("build", "--no-link", "--json",
		standIn+"#legacyPackages.x86_64-linux.hello", standIn+"#legacyPackages.x86_64-linux.bashInteractive"), &built))
	for _, b := range built {
		paths = append(paths, b.Outputs["out"])
	}
	dir := t.TempDir()
	nix(append([]string{"copy", "--to", "file://" + dir}, paths...)...)

	var infos []struct {
		Path       string   `json:"path"`
		References []string `json:"references"`
	}
	assert.NilError(t, json.Unmarshal(nix(append([]string{"path-info", "--json", "--recursive"}, paths...)...), &infos))
	refs := map[string][]string{}
	for _, i := range infos {
		refs[i.Path] = i.References
	}
	return "file://" + dir, paths, Compute(refs)
}

func TestPopcountFileCache(t *testing.T) {
	cache, paths, want := binaryCache(t)
	got, err := (&Popcount{Cache: cache}).Run(context.Background(), paths)
	assert.NilError(t, err)
	assert.DeepEqual(t, got, want)
	assert.Assert(t, got["glibc"] >= 2, "glibc: %d", got["glibc"]) // hello and bash at least
}

// Over HTTP, failing requests are retried.
func TestPopcountHTTPRetries(t *testing.T) {
	cache, paths, want := binaryCache(t)
	dir := strings.TrimPrefix(cache, "file://")
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1)%3 == 0 {
			http.Error(w, "try again", http.StatusServiceUnavailable)
			return
		}
		http.ServeFile(w, r, filepath.Join(dir, filepath.Base(r.URL.Path)))
	}))
	defer srv.Close()
	got, err := (&Popcount{Cache: srv.URL, Wait: time.Millisecond}).Run(context.Background(), paths)
	assert.NilError(t, err)
	assert.DeepEqual(t, got, want)

	_, err = (&Popcount{Cache: srv.URL, Wait: time.Millisecond}).Run(context.Background(), []string{"/nix/store/00000000000000000000000000000000-missing"})
	assert.ErrorContains(t, err, "404")
	_, err = (&Popcount{Cache: "ftp://x"}).Run(context.Background(), paths)
	assert.ErrorContains(t, err, "not an https://")
	_, err = (&Popcount{Cache: srv.URL}).Run(context.Background(), []string{"/usr/bin/hello"})
	assert.ErrorContains(t, err, "not a store path")
}
