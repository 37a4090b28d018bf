package publish

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"gotest.tools/v3/assert"

	"github.com/nixery-action/nixery-action/pkg/image"
)

var (
	amd64 = v1.Platform{OS: "linux", Architecture: "amd64"}
	arm64 = v1.Platform{OS: "linux", Architecture: "arm64"}
)

// fastBackoff keeps tests of failures short.
var fastBackoff = remote.Backoff{Duration: 10 * time.Millisecond, Factor: 1, Steps: 3}

// realLayer packs files into a real gzip'd tar blob in dir.
func realLayer(t testing.TB, dir string, files map[string]string, pkgs ...string) image.Blob {
	t.Helper()
	var tarBuf bytes.Buffer
	tw := tar.NewWriter(&tarBuf)
	var names []string
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		assert.NilError(t, tw.WriteHeader(&tar.Header{
			Name: n, Mode: 0o755, Size: int64(len(files[n])), ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg,
		}))
		_, err := io.WriteString(tw, files[n])
		assert.NilError(t, err)
	}
	assert.NilError(t, tw.Close())
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, err := zw.Write(tarBuf.Bytes())
	assert.NilError(t, err)
	assert.NilError(t, zw.Close())

	diffID := sha256.Sum256(tarBuf.Bytes())
	digest := sha256.Sum256(gz.Bytes())
	path := filepath.Join(dir, hex.EncodeToString(digest[:])+".tar.gz")
	assert.NilError(t, os.WriteFile(path, gz.Bytes(), 0o644))
	return image.Blob{
		Digest:   v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(digest[:])},
		DiffID:   v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(diffID[:])},
		Size:     int64(gz.Len()),
		Path:     path,
		Key:      "sha256:" + hex.EncodeToString(diffID[:]),
		Packages: pkgs,
	}
}

// testIndex builds an index with a layer per platform, a layer shared by
// all platforms, and a customisation layer per platform. salt makes the
// blobs differ between tests that share a registry.
func testIndex(t testing.TB, salt string, platforms ...v1.Platform) *image.Index {
	t.Helper()
	dir := t.TempDir()
	shared := realLayer(t, dir, map[string]string{"nix/store/aaa-cacert/etc/ca.crt": "certs " + salt}, "cacert")
	var imgs []*image.Image
	for _, p := range platforms {
		img, err := image.NewImage(p, []image.Blob{
			shared,
			realLayer(t, dir, map[string]string{"nix/store/bbb-hello/bin/hello": "hello " + p.Architecture + salt}, "hello"),
			realLayer(t, dir, map[string]string{"bin/hello": "/nix/store/bbb-hello/bin/hello " + p.Architecture + salt}),
		}, image.Options{Cmd: []string{"hello"}})
		assert.NilError(t, err)
		imgs = append(imgs, img)
	}
	idx, err := image.NewIndex(imgs, map[string]string{image.AnnotationSource: "https://example.com/" + salt})
	assert.NilError(t, err)
	return idx
}

// requestLog records the requests a registry received.
type requestLog struct {
	mu   sync.Mutex
	reqs []string
}

func (l *requestLog) add(r *http.Request) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reqs = append(l.reqs, r.Method+" "+r.URL.Path)
}

func (l *requestLog) list() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.reqs...)
}

// memRegistry starts go-containerregistry's in-memory registry behind
// middleware and returns its "127.0.0.1:PORT".
func memRegistry(t testing.TB, middleware func(http.Handler) http.Handler) string {
	t.Helper()
	var h http.Handler = registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	if middleware != nil {
		h = middleware(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func mustTarget(t testing.TB, image string, tags ...string) Target {
	t.Helper()
	target, err := NewTarget(image, tags, false)
	assert.NilError(t, err)
	return target
}

// checkNothingUploaded fails for each layer res says it uploaded: a push
// of what the registry holds already sends no blob.
func checkNothingUploaded(t *testing.T, res *Result) {
	t.Helper()
	for _, m := range res.Manifests {
		for _, l := range m.Layers {
			assert.Check(t, !l.Uploaded, "%s layer %s uploaded again", m.Platform, l.Digest)
		}
	}
}

// mergeOne merges digests into t alone (Merge with one target).
func mergeOne(ctx context.Context, t Target, digests []string, o Options) (*Result, error) {
	return Merge(ctx, []Target{t}, digests, o, true)
}

// mergeOneUnpushed is mergeOne writing nothing.
func mergeOneUnpushed(ctx context.Context, t Target, digests []string, o Options) (*Result, error) {
	return Merge(ctx, []Target{t}, digests, o, false)
}
