package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"

	ggcrname "github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/nixery-action/nixery-action/internal/hostile"
	"github.com/nixery-action/nixery-action/internal/testenv"
	"github.com/nixery-action/nixery-action/pkg/build"
	"github.com/nixery-action/nixery-action/pkg/nix"
	"github.com/nixery-action/nixery-action/pkg/publish"
	"github.com/nixery-action/nixery-action/pkg/registry"
	"github.com/nixery-action/nixery-action/pkg/spec"
)

// fakeLock locks a reference to itself, with no Nix.
func fakeLock(_ context.Context, ref string) (nix.Locked, error) { return nix.Locked{URL: ref}, nil }

// resolved is name:latest as a pull asks for it: locked and keyed.
func resolved(t *testing.T, s *Server, name string) request {
	t.Helper()
	req, err := s.parse(name, s.o.Nixpkgs)
	assert.NilError(t, err)
	assert.NilError(t, s.resolve(context.Background(), &req))
	return req
}

// stored writes a two-platform index into storage under the key of
// name:latest, as a build would, and returns it.
func stored(t *testing.T, s *Server, storage, name string) v1.ImageIndex {
	t.Helper()
	req := resolved(t, s, name)
	var adds []mutate.IndexAddendum
	for _, arch := range []string{"amd64", "arm64"} {
		img, err := random.Image(64, 1)
		assert.NilError(t, err)
		img = mutate.MediaType(mutate.ConfigMediaType(img, types.OCIConfigJSON), types.OCIManifestSchema1)
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
	}
	idx := mutate.IndexMediaType(mutate.AppendManifests(empty.Index, adds...), types.OCIImageIndex)
	_, err := publish.Write(context.Background(), publish.Output{Kind: publish.OCILayout, Path: storage}, idx, publish.WriteOptions{Tags: []string{req.key}})
	assert.NilError(t, err)
	return idx
}

// newServer is New(o) with fakeLock and a nixpkgs that does not exist:
// it serves what its storage holds, and builds only with a test's own
// s.builder.
func newServer(t *testing.T, o Options) *Server {
	t.Helper()
	o.Lock, o.Nixpkgs = fakeLock, "path:/nonexistent"
	s, err := New(o)
	assert.NilError(t, err)
	return s
}

// storageHolding is a fresh storage in which an image is stored for each
// name, as a server's builds would have left it, and those images'
// indexes, in the order of names.
func storageHolding(t *testing.T, names ...string) (string, []v1.ImageIndex) {
	t.Helper()
	storage := t.TempDir()
	s := newServer(t, Options{Storage: storage})
	var idxs []v1.ImageIndex
	for _, name := range names {
		idxs = append(idxs, stored(t, s, storage, name))
	}
	return storage, idxs
}

func get(t *testing.T, h http.Handler, method, path string) (*http.Response, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	res := rec.Result()
	body, _ := io.ReadAll(res.Body)
	return res, string(body)
}

// What the storage holds is served without a build (none could run
// here: there is no Nix), by tag and by digest, GET and HEAD; a new
// server over the same storage serves it too.
func TestServeFromStorage(t *testing.T) {
	storage, idxs := storageHolding(t, "hello/shell")
	idx := idxs[0]
	digest, err := idx.Digest()
	assert.NilError(t, err)

	s := newServer(t, Options{Storage: storage})
	for _, path := range []string{"/v2/shell/hello/manifests/latest", "/v2/hello/shell/manifests/latest", "/v2/x/manifests/" + digest.String()} {
		res, body := get(t, s, http.MethodGet, path)
		assert.Equal(t, res.StatusCode, http.StatusOK, "%s: %s", path, body)
		assert.Equal(t, res.Header.Get("Docker-Content-Digest"), digest.String(), path)
		assert.Equal(t, res.Header.Get("Content-Type"), string(types.OCIImageIndex), path)
	}
	res, body := get(t, s, http.MethodHead, "/v2/shell/hello/manifests/latest")
	assert.Equal(t, res.StatusCode, http.StatusOK)
	assert.Equal(t, body, "")
	assert.Check(t, res.ContentLength > 0)

	im, err := idx.IndexManifest()
	assert.NilError(t, err)
	img, err := idx.Image(im.Manifests[0].Digest)
	assert.NilError(t, err)
	layers, err := img.Layers()
	assert.NilError(t, err)
	ld, err := layers[0].Digest()
	assert.NilError(t, err)
	res, body = get(t, s, http.MethodGet, "/v2/shell/hello/blobs/"+ld.String())
	assert.Equal(t, res.StatusCode, http.StatusOK)
	assert.Equal(t, int64(len(body)), mustSize(t, layers[0]))
	// A layer is no manifest, nor is a blob too large to be one: the
	// storage answered, and the client is not told to retry.
	res, _ = get(t, s, http.MethodGet, "/v2/x/manifests/"+ld.String())
	assert.Equal(t, res.StatusCode, http.StatusNotFound)
	big := bytes.Repeat([]byte{0}, maxManifest+1)
	bd, _, err := v1.SHA256(bytes.NewReader(big))
	assert.NilError(t, err)
	assert.NilError(t, os.WriteFile(filepath.Join(storage, "blobs", "sha256", bd.Hex), big, 0o644))
	res, body = get(t, s, http.MethodGet, "/v2/x/manifests/"+bd.String())
	assert.Equal(t, res.StatusCode, http.StatusNotFound, body)
	assert.Equal(t, res.Header.Get("Retry-After"), "")
}

func mustSize(t *testing.T, l v1.Layer) int64 {
	n, err := l.Size()
	assert.NilError(t, err)
	return n
}

// The errors a client prints: JSON in the distribution spec's form.
func TestServeErrors(t *testing.T) {
	platforms, err := spec.ParsePlatforms("linux/amd64")
	assert.NilError(t, err)
	s := newServer(t, Options{Storage: t.TempDir(), Platforms: platforms})
	for _, tc := range []struct {
		method, path string
		status       int
		code, msg    string
	}{
		{http.MethodPut, "/v2/hello/manifests/latest", http.StatusMethodNotAllowed, "UNSUPPORTED", "takes no pushes"},
		{http.MethodPost, "/v2/hello/blobs/uploads/", http.StatusMethodNotAllowed, "UNSUPPORTED", "takes no pushes"},
		{http.MethodGet, "/v2/hello/manifests/v1", http.StatusNotFound, "MANIFEST_UNKNOWN", "serves only the tag latest"},
		{http.MethodGet, "/v2/hello/manifests/.bad", http.StatusNotFound, "MANIFEST_UNKNOWN", "not a tag"},
		{http.MethodGet, "/v2/hello/blobs/sha256:zz", http.StatusBadRequest, "DIGEST_INVALID", "not a sha256 digest"},
		{http.MethodGet, "/v2/hello/blobs/sha256:" + strings.Repeat("0", 64), http.StatusNotFound, "BLOB_UNKNOWN", "no blob"},
		{http.MethodGet, "/v2/a;b/manifests/latest", http.StatusBadRequest, "NAME_INVALID", "not a repository name"},
		{http.MethodGet, "/v2/-hello/manifests/latest", http.StatusBadRequest, "NAME_INVALID", "not a repository name"},
		{http.MethodGet, "/v2/" + strings.Repeat("a", 300) + "/manifests/latest", http.StatusBadRequest, "NAME_INVALID", "not a repository name"},
		{http.MethodGet, "/v2/hello%00/manifests/latest", http.StatusBadRequest, "NAME_INVALID", "not a repository name"},
		{http.MethodGet, "/v2/hello/../x/manifests/latest", http.StatusBadRequest, "NAME_INVALID", "not a repository name"},
		{http.MethodGet, "/v2/../blobs/sha256:" + strings.Repeat("0", 64), http.StatusBadRequest, "NAME_INVALID", "not a repository name"},
		{http.MethodGet, "/v2/-x/tags/list", http.StatusBadRequest, "NAME_INVALID", "not a repository name"},
		{http.MethodGet, "/v2/hello/manifests/sha256:abc", http.StatusBadRequest, "DIGEST_INVALID", "not a sha256 digest"},
		{http.MethodGet, "/v2/hello/catalog", http.StatusNotFound, "UNSUPPORTED", "manifests, blobs and tag lists only"},
		{http.MethodGet, "/v3/", http.StatusNotFound, "UNSUPPORTED", "not a registry path"},
	} {
		res, body := get(t, s, tc.method, tc.path)
		assert.Equal(t, res.StatusCode, tc.status, "%s %s: %s", tc.method, tc.path, body)
		var e struct {
			Errors []struct{ Code, Message string }
		}
		assert.NilError(t, json.Unmarshal([]byte(body), &e), body)
		assert.Assert(t, is.Len(e.Errors, 1))
		assert.Equal(t, e.Errors[0].Code, tc.code, tc.path)
		assert.Check(t, is.Contains(e.Errors[0].Message, tc.msg), tc.path)
	}
	res, body := get(t, s, http.MethodGet, "/v2/")
	assert.Equal(t, res.StatusCode, http.StatusOK)
	assert.Equal(t, body, "{}")
	// The tag list skopeo inspect asks for: latest, for any name.
	res, body = get(t, s, http.MethodGet, "/v2/shell/hello/tags/list")
	assert.Equal(t, res.StatusCode, http.StatusOK, body)
	assert.Equal(t, res.Header.Get("Content-Type"), "application/json")
	assert.Equal(t, body, `{"name":"shell/hello","tags":["latest"]}`)
	res, body = get(t, s, http.MethodHead, "/v2/shell/hello/tags/list")
	assert.Equal(t, res.StatusCode, http.StatusOK)
	assert.Equal(t, body, "")
	assert.Equal(t, res.Header.Get("Docker-Distribution-API-Version"), "registry/2.0")
}

// With MaxImages, the image pulled least recently is dropped, with the
// blobs only it used; the others are served as before.
func TestServePrunes(t *testing.T) {
	storage, _ := storageHolding(t, "a", "b", "c")
	s := newServer(t, Options{Storage: storage, MaxImages: 3})
	// The order of use is tested here, not the grace.
	s.o.MaxImages, s.grace = 2, 0
	for _, name := range []string{"c", "a", "b"} { // c is now the least recent
		res, _ := get(t, s, http.MethodGet, "/v2/"+name+"/manifests/latest")
		assert.Equal(t, res.StatusCode, http.StatusOK, name)
	}
	cIndex := s.built[mustKey(t, s, "c")]
	s.pruneNow()
	_, err := os.Stat(filepath.Join(storage, "blobs", "sha256", cIndex.Hex))
	assert.Check(t, os.IsNotExist(err), "c's index is still stored: %v", err)
	res, body := get(t, s, http.MethodGet, "/v2/c/manifests/latest")
	assert.Equal(t, res.StatusCode, http.StatusNotFound, body) // built again: no Nix here
	for _, name := range []string{"a", "b"} {
		res, _ := get(t, s, http.MethodGet, "/v2/"+name+"/manifests/latest")
		assert.Equal(t, res.StatusCode, http.StatusOK, name)
	}
	again := newServer(t, Options{Storage: storage})
	assert.Equal(t, len(again.built), 2)
	_, body = get(t, s, http.MethodGet, "/metrics")
	assert.Check(t, is.Contains(body, "nixery_serve_images_pruned_total 1"))
}

// A name that does not build is not built again at once: the second pull
// gets the same error from memory.
func TestServeRemembersFailures(t *testing.T) {
	s := newServer(t, Options{Storage: t.TempDir()})
	var bodies []string
	for range 2 {
		res, body := get(t, s, http.MethodGet, "/v2/hello/manifests/latest")
		assert.Equal(t, res.StatusCode, http.StatusNotFound)
		bodies = append(bodies, body)
	}
	assert.Equal(t, bodies[1], bodies[0])
	_, metrics := get(t, s, http.MethodGet, "/metrics")
	assert.Check(t, is.Contains(metrics, `nixery_serve_builds_total{result="failed"} 1`))
}

// MaxBytes drops images pulled least recently until the blobs fit.
func TestServePrunesToSize(t *testing.T) {
	storage, _ := storageHolding(t, "a", "b", "c")
	full := layoutStore{dir: storage}.size()
	s := newServer(t, Options{Storage: storage, MaxBytes: full})
	// The order of use is tested here, not the grace.
	s.o.MaxBytes, s.grace = full-1, 0
	for _, name := range []string{"a", "b", "c"} {
		res, _ := get(t, s, http.MethodGet, "/v2/"+name+"/manifests/latest")
		assert.Equal(t, res.StatusCode, http.StatusOK, name)
	}
	s.pruneNow()
	assert.Check(t, layoutStore{dir: storage}.size() <= full-1)
	assert.Equal(t, len(s.built), 2) // a, the least recent, went
	res, _ := get(t, s, http.MethodGet, "/v2/b/manifests/latest")
	assert.Equal(t, res.StatusCode, http.StatusOK)
}

func mustKey(t *testing.T, s *Server, name string) string {
	req := resolved(t, s, name)
	return req.key
}

// An image gone from the store (its index removed under the server) is
// built again, not answered "no manifest" for ever.
func TestServeRebuildsWhatIsGone(t *testing.T) {
	storage, idxs := storageHolding(t, "hello")
	s := newServer(t, Options{Storage: storage})
	res, _ := get(t, s, http.MethodGet, "/v2/hello/manifests/latest")
	assert.Equal(t, res.StatusCode, http.StatusOK)
	d, err := idxs[0].Digest()
	assert.NilError(t, err)
	assert.NilError(t, os.Remove(filepath.Join(storage, "blobs", "sha256", d.Hex)))
	res, body := get(t, s, http.MethodGet, "/v2/hello/manifests/latest")
	assert.Equal(t, res.StatusCode, http.StatusNotFound)
	assert.Check(t, !strings.Contains(body, "no manifest"), "answered from the lost entry: %s", body)
	_, metrics := get(t, s, http.MethodGet, "/metrics")
	assert.Check(t, is.Contains(metrics, `nixery_serve_builds_total{result="failed"} 1`), "no build was tried")
}

// reaches waits, a second at most, for n to reach want.
func reaches(t *testing.T, n *atomic.Int64, want int64, what string) {
	t.Helper()
	for i := 0; n.Load() < want; i++ {
		assert.Assert(t, i < 500, "only %d %s", n.Load(), what)
		time.Sleep(2 * time.Millisecond)
	}
}

// blockingNix is a Realiser whose lock waits until released: builds that
// take as long as a test wants, with no Nix.
type blockingNix struct{ release chan struct{} }

func (b blockingNix) Lock(ctx context.Context) (nix.Locked, error) {
	select {
	case <-b.release:
	case <-ctx.Done():
	}
	return nix.Locked{}, errors.New("released")
}

func (b blockingNix) LockFlake(ctx context.Context, _ string) (nix.Locked, error) { return b.Lock(ctx) }

func (b blockingNix) BuildLogged(context.Context, string, []string, io.Writer) (*nix.Result, error) {
	return nil, errors.New("not here")
}

// Past Builds×5 images building or waiting, a new one is refused at once
// with TOOMANYREQUESTS; Close stops the builds nobody needs.
func TestServeQueueBound(t *testing.T) {
	fake := blockingNix{release: make(chan struct{})}
	s := newServer(t, Options{Storage: t.TempDir(), Builds: 1, Build: build.Options{Realiser: fake}})
	var wg sync.WaitGroup
	for _, name := range []string{"a", "b", "c", "d", "e"} {
		wg.Go(func() { get(t, s, http.MethodGet, "/v2/"+name+"/manifests/latest") })
	}
	reaches(t, &s.pending, 5, "builds pending")
	res, body := get(t, s, http.MethodGet, "/v2/f/manifests/latest")
	assert.Equal(t, res.StatusCode, http.StatusTooManyRequests, body)
	assert.Check(t, is.Contains(body, "TOOMANYREQUESTS"))
	assert.Equal(t, res.Header.Get("Retry-After"), "10")
	s.Close() // the pulls waiting get their builds' errors
	wg.Wait()
	assert.Equal(t, s.pending.Load(), int64(0))
}

// storedInRegistry pushes a one-platform index to the registry storage
// under the key of name:latest, as a server would, and returns its image.
func storedInRegistry(t *testing.T, s *Server, storage, name string) v1.Image {
	t.Helper()
	req := resolved(t, s, name)
	img, err := random.Image(4096, 1)
	assert.NilError(t, err)
	tag, err := ggcrname.NewTag(strings.TrimPrefix(storage, "docker://")+":"+req.key, ggcrname.Insecure)
	assert.NilError(t, err)
	idx := mutate.AppendManifests(empty.Index, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}})
	assert.NilError(t, remote.WriteIndex(tag, idx))
	return img
}

// A registry storage is untrusted as any registry is: its redirects are
// bounded, a slow answer times out, and its words reach the client on
// one line, if at all. A manifest it fails to give is the storage
// failing (503), not the manifest unknown.
func TestServeHostileRegistryStorage(t *testing.T) {
	h := hostile.Start(hostile.Behaviour{})
	t.Cleanup(h.Close)
	storage := "docker://" + h.Host + "/nixery/store"
	s := newServer(t, Options{Storage: storage, Registry: registry.Options{RequestTimeout: time.Second}})
	img := storedInRegistry(t, s, storage, "hello")
	res, body := get(t, s, http.MethodGet, "/v2/hello/manifests/latest")
	assert.Equal(t, res.StatusCode, http.StatusOK, body)
	index := res.Header.Get("Docker-Content-Digest")
	layers, err := img.Layers()
	assert.NilError(t, err)
	ld, err := layers[0].Digest()
	assert.NilError(t, err)

	oneLine := func(body string) {
		t.Helper()
		var e struct {
			Errors []struct{ Code, Message string }
		}
		assert.NilError(t, json.Unmarshal([]byte(body), &e), body)
		assert.Assert(t, is.Len(e.Errors, 1), body)
		assert.Check(t, !strings.ContainsAny(e.Errors[0].Message, "\r\n"), "%q", e.Errors[0].Message)
		assert.Check(t, !strings.Contains(e.Errors[0].Message, "::error::"), "%q", e.Errors[0].Message)
	}
	for _, tc := range []struct {
		name   string
		behave hostile.Behaviour
		path   string
		status int
	}{
		{"blob redirected for ever", hostile.Behaviour{RedirectLoop: true}, "/v2/hello/blobs/" + ld.String(), http.StatusServiceUnavailable},
		{"manifest redirected for ever", hostile.Behaviour{RedirectLoop: true}, "/v2/hello/manifests/" + index, http.StatusServiceUnavailable},
		{"manifest refused with lines", hostile.Behaviour{ErrorMessage: "denied\n::error::injected"}, "/v2/hello/manifests/" + index, http.StatusServiceUnavailable},
		{"manifest trickled", hostile.Behaviour{Trickle: 50 * time.Millisecond}, "/v2/hello/manifests/" + index, http.StatusServiceUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h.Set(tc.behave)
			start := time.Now()
			res, body := get(t, s, http.MethodGet, tc.path)
			assert.Equal(t, res.StatusCode, tc.status, body)
			oneLine(body)
			assert.Check(t, !strings.Contains(body, h.Host), "the storage's address reached the client: %s", body)
			assert.Check(t, time.Since(start) < 10*time.Second, "answered after %s", time.Since(start))
		})
	}
}

// A registry storage: what is stored under an image's key is served with
// no build, blobs passed on with their range reads and HEADs.
func TestServeFromRegistryStorage(t *testing.T) {
	srv := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	storage := "docker://" + strings.TrimPrefix(srv.URL, "http://") + "/nixery/store"
	s := newServer(t, Options{Storage: storage})
	img := storedInRegistry(t, s, storage, "hello")

	res, body := get(t, s, http.MethodGet, "/v2/hello/manifests/latest")
	assert.Equal(t, res.StatusCode, http.StatusOK, body)
	layers, err := img.Layers()
	assert.NilError(t, err)
	ld, err := layers[0].Digest()
	assert.NilError(t, err)
	size, err := layers[0].Size()
	assert.NilError(t, err)

	rec := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodGet, "/v2/hello/blobs/"+ld.String(), nil)
	r.Header.Set("Range", "bytes=0-9")
	s.ServeHTTP(rec, r)
	assert.Equal(t, rec.Code, http.StatusPartialContent)
	assert.Equal(t, rec.Body.Len(), 10)
	res, body = get(t, s, http.MethodHead, "/v2/hello/blobs/"+ld.String())
	assert.Equal(t, res.StatusCode, http.StatusOK)
	assert.Equal(t, body, "")
	assert.Equal(t, res.Header.Get("Content-Length"), fmt.Sprint(size))
	res, _ = get(t, s, http.MethodGet, "/v2/hello/blobs/sha256:"+strings.Repeat("0", 64))
	assert.Equal(t, res.StatusCode, http.StatusNotFound)
	_, metrics := get(t, s, http.MethodGet, "/metrics")
	assert.Check(t, is.Contains(metrics, `nixery_serve_manifest_requests_total{cache="hit"} 1`))
}

// A build that waited for a slot still gets all of Timeout; a pull that
// waits a whole Timeout for a slot is told the server is busy (and may
// retry at once), not that the image failed.
func TestServeSlotWaitApart(t *testing.T) {
	storage, idxs := storageHolding(t, "x")
	d, err := idxs[0].Digest()
	assert.NilError(t, err)
	s := newServer(t, Options{Storage: storage, Builds: 1, Timeout: time.Second})
	slow := func(ctx context.Context, _ request) (v1.Hash, error) {
		select {
		case <-time.After(600 * time.Millisecond): // each within Timeout, not both
			return d, nil
		case <-ctx.Done():
			return v1.Hash{}, ctx.Err()
		}
	}
	s.builder = slow
	var wg sync.WaitGroup
	for _, name := range []string{"a", "b"} {
		wg.Go(func() {
			res, body := get(t, s, http.MethodGet, "/v2/"+name+"/manifests/latest")
			assert.Check(t, is.Equal(res.StatusCode, http.StatusOK), "%s: %s", name, body)
		})
	}
	wg.Wait()

	// A build that holds the only slot past Timeout: the next new image
	// is TOOMANYREQUESTS, and built once the slot is free.
	started, release := make(chan struct{}), make(chan struct{})
	s.builder = func(context.Context, request) (v1.Hash, error) {
		close(started)
		<-release
		return d, nil
	}
	s.o.Timeout = 200 * time.Millisecond
	wg.Go(func() { get(t, s, http.MethodGet, "/v2/c/manifests/latest") })
	<-started
	res, body := get(t, s, http.MethodGet, "/v2/e/manifests/latest")
	assert.Equal(t, res.StatusCode, http.StatusTooManyRequests, body)
	assert.Check(t, is.Contains(body, "no build slot within 200ms"))
	close(release)
	wg.Wait()
	s.builder, s.o.Timeout = slow, time.Second
	res, body = get(t, s, http.MethodGet, "/v2/e/manifests/latest")
	assert.Equal(t, res.StatusCode, http.StatusOK, body)
}

// flakyStore is a store whose manifest reads fail while broken is set.
type flakyStore struct {
	store
	broken *atomic.Bool
}

func (f flakyStore) manifest(ctx context.Context, d v1.Hash) ([]byte, error) {
	if f.broken.Load() {
		return nil, errors.New("read tcp 127.0.0.1:5000: connection reset by peer")
	}
	return f.store.manifest(ctx, d)
}

// A storage that fails to answer for a moment is not an image gone: the
// pull is told to retry (503), nothing is built or remembered as failed,
// and the next pull is served.
func TestServeStorageBlip(t *testing.T) {
	storage, _ := storageHolding(t, "hello")
	var log bytes.Buffer
	s := newServer(t, Options{Storage: storage, Log: slog.New(slog.NewJSONHandler(&log, nil))})
	broken := new(atomic.Bool)
	s.store = flakyStore{s.store, broken}
	s.builder = func(context.Context, request) (v1.Hash, error) {
		t.Error("built")
		return v1.Hash{}, errors.New("built")
	}

	broken.Store(true)
	res, body := get(t, s, http.MethodGet, "/v2/hello/manifests/latest")
	assert.Equal(t, res.StatusCode, http.StatusServiceUnavailable, body)
	assert.Equal(t, res.Header.Get("Retry-After"), "10")
	assert.Check(t, !strings.Contains(body, "127.0.0.1"), body)
	assert.Check(t, is.Contains(log.String(), "connection reset by peer"))
	broken.Store(false)
	res, body = get(t, s, http.MethodGet, "/v2/hello/manifests/latest")
	assert.Equal(t, res.StatusCode, http.StatusOK, body)
}

// failingManifest is a store that cannot read one manifest: its
// registry resets the connection, or (gone) the manifest is not there.
type failingManifest struct {
	store
	d    v1.Hash
	gone bool
}

func (f failingManifest) manifest(ctx context.Context, d v1.Hash) ([]byte, error) {
	switch {
	case d != f.d:
		return f.store.manifest(ctx, d)
	case f.gone:
		return nil, fmt.Errorf("manifest %s: %w", d, os.ErrNotExist)
	}
	return nil, errors.New("read tcp 127.0.0.1:5000: connection reset by peer")
}

// An arm64 image is served as its one platform manifest, read after the
// index: that read failing is the storage failing too (503, retry), as
// for the index; a platform manifest missing beside its index is a
// broken image kept (500), not a reason for the client to retry.
func TestServeSinglePlatformStorageFails(t *testing.T) {
	storage := t.TempDir()
	var log bytes.Buffer
	s := newServer(t, Options{Storage: storage})
	req := resolved(t, s, "arm64/hello")
	img, err := random.Image(64, 1)
	assert.NilError(t, err)
	img = mutate.MediaType(mutate.ConfigMediaType(img, types.OCIConfigJSON), types.OCIManifestSchema1)
	idx := mutate.IndexMediaType(mutate.AppendManifests(empty.Index, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}}), types.OCIImageIndex)
	_, err = publish.Write(context.Background(), publish.Output{Kind: publish.OCILayout, Path: storage}, idx, publish.WriteOptions{Tags: []string{req.key}})
	assert.NilError(t, err)
	platform, err := img.Digest()
	assert.NilError(t, err)
	// A server started over the storage kept.
	s = newServer(t, Options{Storage: storage, Log: slog.New(slog.NewJSONHandler(&log, nil))})
	s.builder = func(context.Context, request) (v1.Hash, error) {
		t.Error("built")
		return v1.Hash{}, errors.New("built")
	}
	kept := s.store

	res, body := get(t, s, http.MethodGet, "/v2/arm64/hello/manifests/latest")
	assert.Equal(t, res.StatusCode, http.StatusOK, body)
	assert.Equal(t, res.Header.Get("Docker-Content-Digest"), platform.String())

	s.store = failingManifest{store: kept, d: platform}
	res, body = get(t, s, http.MethodGet, "/v2/arm64/hello/manifests/latest")
	assert.Equal(t, res.StatusCode, http.StatusServiceUnavailable, body)
	assert.Equal(t, res.Header.Get("Retry-After"), "10")
	assert.Check(t, !strings.Contains(body, "127.0.0.1"), body)
	assert.Check(t, is.Contains(log.String(), "connection reset by peer"))

	s.store = failingManifest{store: kept, d: platform, gone: true}
	res, body = get(t, s, http.MethodGet, "/v2/arm64/hello/manifests/latest")
	assert.Equal(t, res.StatusCode, http.StatusInternalServerError, body)
	assert.Check(t, is.Contains(body, "stored image is broken"), body)
	assert.Equal(t, res.Header.Get("Retry-After"), "")

	// An index of two platforms kept under an arm64 name is broken too.
	storage, idxs := storageHolding(t, "arm64/hello")
	two, err := idxs[0].Digest()
	assert.NilError(t, err)
	log.Reset()
	s = newServer(t, Options{Storage: storage, Log: slog.New(slog.NewJSONHandler(&log, nil))})
	res, body = get(t, s, http.MethodGet, "/v2/arm64/hello/manifests/latest")
	assert.Equal(t, res.StatusCode, http.StatusInternalServerError, body)
	assert.Equal(t, res.Header.Get("Retry-After"), "")
	assert.Check(t, is.Contains(log.String(), two.String()))
}

// A directory storage that cannot open a blob (here its blobs directory
// is no directory: ENOTDIR; EIO or EMFILE alike) is failing, not without
// the blob: 503 with a Retry-After, the cause in the log only.
func TestServeBlobUnreadable(t *testing.T) {
	storage := t.TempDir()
	var log bytes.Buffer
	s := newServer(t, Options{Storage: storage, Log: slog.New(slog.NewJSONHandler(&log, nil))})
	idx := stored(t, s, storage, "hello")
	d, err := idx.Digest()
	assert.NilError(t, err)
	blobs := filepath.Join(storage, "blobs", "sha256")
	assert.NilError(t, os.Rename(blobs, blobs+".away"))
	assert.NilError(t, os.WriteFile(blobs, nil, 0o644))
	res, body := get(t, s, http.MethodGet, "/v2/hello/blobs/"+d.String())
	assert.Equal(t, res.StatusCode, http.StatusServiceUnavailable, body)
	assert.Equal(t, res.Header.Get("Retry-After"), "10")
	assert.Check(t, !strings.Contains(body, storage), body)
	assert.Check(t, is.Contains(log.String(), "not a directory"))

	// A blob the storage does not have is unknown.
	assert.NilError(t, os.Remove(blobs))
	assert.NilError(t, os.Rename(blobs+".away", blobs))
	res, body = get(t, s, http.MethodGet, "/v2/hello/blobs/sha256:"+strings.Repeat("0", 64))
	assert.Equal(t, res.StatusCode, http.StatusNotFound, body)
}

// Bounds lowered since the last start apply as the server starts.
func TestServePrunesAtStart(t *testing.T) {
	storage, _ := storageHolding(t, "a", "b", "c")
	s := newServer(t, Options{Storage: storage, MaxImages: 1})
	assert.Equal(t, len(s.built), 1)
	again := newServer(t, Options{Storage: storage})
	assert.Equal(t, len(again.built), 1, "the storage kept more")
}

// Builds running back to back, always one at a time or more, do not keep
// the storage over its bounds: past pruneWait the pruner holds new builds
// back until those running end.
func TestServePrunesUnderLoad(t *testing.T) {
	storage, _ := storageHolding(t, "a", "b", "c")
	s := newServer(t, Options{Storage: storage, MaxImages: 3})
	s.o.MaxImages, s.pruneWait = 1, 200*time.Millisecond
	stop := make(chan struct{})
	var builds sync.WaitGroup
	s.gc.RLock() // a build runs as pruning is asked
	for range 2 {
		builds.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				s.gc.RLock() // overlapping the other's
				time.Sleep(50 * time.Millisecond)
				s.gc.RUnlock()
			}
		})
	}
	s.prune()
	time.Sleep(60 * time.Millisecond)
	s.gc.RUnlock()
	for i := 0; ; i++ {
		s.mu.Lock()
		n := len(s.built)
		s.mu.Unlock()
		if n == 1 {
			break
		}
		assert.Assert(t, i < 250, "still %d images under load", n)
		time.Sleep(20 * time.Millisecond)
	}
	close(stop)
	builds.Wait()
	s.Close()
}

// Pulls by digest (a deployment pinned to it) count as use: such an
// image is not the least recently pulled, and stays pullable by digest.
func TestServeDigestPullsCountAsUse(t *testing.T) {
	storage, _ := storageHolding(t, "a", "b", "c")
	s := newServer(t, Options{Storage: storage, MaxImages: 3})
	// The order of use is tested here, not the grace.
	s.o.MaxImages, s.grace = 2, 0
	for _, name := range []string{"a", "b", "c"} {
		res, _ := get(t, s, http.MethodHead, "/v2/"+name+"/manifests/latest")
		assert.Equal(t, res.StatusCode, http.StatusOK, name)
	}
	a := s.built[mustKey(t, s, "a")]
	res, body := get(t, s, http.MethodGet, "/v2/a/manifests/"+a.String())
	assert.Equal(t, res.StatusCode, http.StatusOK, body)
	s.pruneNow()
	assert.Check(t, is.Len(s.built, 2))
	_, kept := s.built[mustKey(t, s, "a")]
	assert.Check(t, kept, "the image pulled by digest went")
	res, body = get(t, s, http.MethodGet, "/v2/a/manifests/"+a.String())
	assert.Equal(t, res.StatusCode, http.StatusOK, body)
	res, _ = get(t, s, http.MethodHead, "/v2/b/manifests/latest")
	assert.Equal(t, res.StatusCode, http.StatusNotFound, "b, the least recent, is still kept")
}

// A storage the server could not use is refused as it starts, not found
// out by every pull; one not there yet is made.
func TestServeStorageChecks(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	assert.NilError(t, os.WriteFile(file, []byte("x"), 0o644))
	other := filepath.Join(dir, "other")
	assert.NilError(t, os.MkdirAll(filepath.Join(other, "photos"), 0o755))
	for storage, want := range map[string]string{
		file:  "storage " + file + " is not a directory: give a directory to keep the images in",
		other: "storage " + other + " holds other files and is no OCI layout: give an empty directory, or the storage of an earlier nixery serve",
	} {
		_, err := New(Options{Lock: fakeLock, Nixpkgs: "path:/nonexistent", Storage: storage})
		assert.Check(t, is.Error(err, want))
	}
	fresh := filepath.Join(dir, "new", "storage")
	_, err := New(Options{Lock: fakeLock, Nixpkgs: "path:/nonexistent", Storage: fresh})
	assert.NilError(t, err)
	entries, err := publish.LayoutEntries(fresh)
	assert.NilError(t, err)
	assert.Check(t, is.Len(entries, 0), "the write check was left behind")
	entries, err = os.ReadDir(filepath.Join(fresh, publish.ScratchDir))
	assert.NilError(t, err)
	assert.Check(t, is.Len(entries, 0))
}

// registryStoredLayer is a server whose storage is a registry holding
// the image of hello, and that image's first layer and its digest.
func registryStoredLayer(t *testing.T) (*Server, v1.Layer, v1.Hash) {
	t.Helper()
	storage := "docker://" + testenv.StartRegistry(t) + "/nixery/store"
	s := newServer(t, Options{Storage: storage})
	img := storedInRegistry(t, s, storage, "hello")
	layers, err := img.Layers()
	assert.NilError(t, err)
	d, err := layers[0].Digest()
	assert.NilError(t, err)
	return s, layers[0], d
}

// A registry storage (the CNCF registry) passes range reads on as the
// registry answers them: several ranges keep their multipart type, a
// range outside the blob is 416 at once; conditional requests are
// answered by the digest, the entity tag.
func TestServeRegistryStorageRanges(t *testing.T) {
	s, layer, ld := registryStoredLayer(t)
	blob := "/v2/hello/blobs/" + ld.String()
	ask := func(headers ...string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodGet, blob, nil)
		for i := 0; i < len(headers); i += 2 {
			r.Header.Set(headers[i], headers[i+1])
		}
		s.ServeHTTP(rec, r)
		return rec
	}

	rec := ask("Range", "bytes=0-1,5-6")
	assert.Equal(t, rec.Code, http.StatusPartialContent)
	assert.Check(t, strings.HasPrefix(rec.Header().Get("Content-Type"), "multipart/byteranges; boundary="), rec.Header().Get("Content-Type"))

	start := time.Now()
	rec = ask("Range", "bytes=99999999-")
	assert.Equal(t, rec.Code, http.StatusRequestedRangeNotSatisfiable, rec.Body.String())
	assert.Check(t, time.Since(start) < 2*time.Second, "answered after %s", time.Since(start))
	assert.Check(t, is.Contains(rec.Body.String(), "RANGE_INVALID"))

	rec = ask("If-None-Match", `"`+ld.String()+`"`)
	assert.Equal(t, rec.Code, http.StatusNotModified)
	assert.Equal(t, rec.Body.Len(), 0)
	rec = ask("If-None-Match", `"sha256:other"`)
	assert.Equal(t, rec.Code, http.StatusOK)
	assert.Equal(t, rec.Header().Get("ETag"), `"`+ld.String()+`"`)
	assert.Equal(t, int64(rec.Body.Len()), mustSize(t, layer))
	// If-Range: the range of this blob, else all of it.
	rec = ask("Range", "bytes=0-9", "If-Range", `"`+ld.String()+`"`)
	assert.Equal(t, rec.Code, http.StatusPartialContent)
	rec = ask("Range", "bytes=0-9", "If-Range", `"sha256:other"`)
	assert.Equal(t, rec.Code, http.StatusOK)
	assert.Equal(t, int64(rec.Body.Len()), mustSize(t, layer))
}

// Manifests carry their digest as entity tag, and If-None-Match with it
// is 304, by tag and by digest.
func TestServeManifestETag(t *testing.T) {
	storage, idxs := storageHolding(t, "hello")
	digest, err := idxs[0].Digest()
	assert.NilError(t, err)
	s := newServer(t, Options{Storage: storage})
	for _, path := range []string{"/v2/hello/manifests/latest", "/v2/hello/manifests/" + digest.String()} {
		res, _ := get(t, s, http.MethodGet, path)
		assert.Equal(t, res.Header.Get("ETag"), `"`+digest.String()+`"`, path)
		for _, method := range []string{http.MethodGet, http.MethodHead} {
			rec := httptest.NewRecorder()
			r := httptest.NewRequest(method, path, nil)
			r.Header.Set("If-None-Match", `"sha256:x", "`+digest.String()+`"`)
			s.ServeHTTP(rec, r)
			assert.Equal(t, rec.Code, http.StatusNotModified, "%s %s", method, path)
			assert.Equal(t, rec.Body.Len(), 0)
		}
	}
}

// A client whose Accept header lists Docker's media types only is told
// that the image is an OCI index or manifest (404 MANIFEST_UNKNOWN, as
// the CNCF registry answers), GET and HEAD alike, rather than sent what
// it cannot parse; no Accept header, a wildcard or the OCI types get the
// image as before.
func TestServeAccept(t *testing.T) {
	storage, idxs := storageHolding(t, "hello")
	digest, err := idxs[0].Digest()
	assert.NilError(t, err)
	im, err := idxs[0].IndexManifest()
	assert.NilError(t, err)
	manifest := im.Manifests[0].Digest
	s := newServer(t, Options{Storage: storage})

	const (
		docker     = "application/vnd.docker.distribution.manifest.v2+json"
		dockerList = "application/vnd.docker.distribution.manifest.list.v2+json"
	)
	ask := func(method, path string, accept ...string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		r := httptest.NewRequest(method, path, nil)
		for _, a := range accept {
			r.Header.Add("Accept", a)
		}
		s.ServeHTTP(rec, r)
		return rec
	}
	for _, tc := range []struct {
		path, what string
		want       types.MediaType
	}{
		{"/v2/hello/manifests/latest", "index", types.OCIImageIndex},
		{"/v2/hello/manifests/" + digest.String(), "index", types.OCIImageIndex},
		{"/v2/hello/manifests/" + manifest.String(), "manifest", types.OCIManifestSchema1},
	} {
		for _, accept := range [][]string{{docker}, {docker + ", " + dockerList}, {docker, dockerList}, {"text/html"},
			{docker + ", " + string(tc.want) + ";q=0", "*/*; q=0.0"}} {
			for _, method := range []string{http.MethodGet, http.MethodHead} {
				rec := ask(method, tc.path, accept...)
				assert.Equal(t, rec.Code, http.StatusNotFound, "%s %s %q", method, tc.path, accept)
				assert.Equal(t, rec.Header().Get("Docker-Content-Digest"), "", "%s %s %q", method, tc.path, accept)
				if method == http.MethodGet {
					assert.Check(t, is.Contains(rec.Body.String(), `"code":"MANIFEST_UNKNOWN"`))
					assert.Check(t, is.Contains(rec.Body.String(), "the image is an OCI "+tc.what+" ("+string(tc.want)+")"))
					assert.Check(t, is.Contains(rec.Body.String(), "accepts OCI media types"))
				}
			}
		}
		for _, accept := range [][]string{nil, {"*/*"}, {docker + ", application/*;q=0.5"}, {docker, string(tc.want) + ";q=0.9"},
			{string(types.OCIImageIndex) + "," + string(types.OCIManifestSchema1) + "," + docker}} {
			for _, method := range []string{http.MethodGet, http.MethodHead} {
				rec := ask(method, tc.path, accept...)
				assert.Equal(t, rec.Code, http.StatusOK, "%s %s %q: %s", method, tc.path, accept, rec.Body.String())
				assert.Equal(t, rec.Header().Get("Content-Type"), string(tc.want))
			}
		}
	}
	// A name not built yet is refused before any build (this server's
	// nixpkgs does not exist: a build would fail with another error).
	for path, what := range map[string]string{"/v2/jq/manifests/latest": "index", "/v2/arm64/jq/manifests/latest": "manifest"} {
		rec := ask(http.MethodGet, path, docker)
		assert.Equal(t, rec.Code, http.StatusNotFound, path)
		assert.Check(t, is.Contains(rec.Body.String(), "the image is an OCI "+what), path)
	}
}

// With a registry storage, a conditional request of a blob the registry
// does not have (never stored, or garbage collected) is 404 BLOB_UNKNOWN,
// not 304: the entity tag matching says nothing of the blob being there.
func TestServeRegistryStorageConditionalMissing(t *testing.T) {
	s, _, there := registryStoredLayer(t)
	missing := "sha256:" + strings.Repeat("0", 64)
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		for _, tc := range []struct {
			digest, ifNoneMatch string
			status              int
		}{
			{missing, `"` + missing + `"`, http.StatusNotFound},
			{missing, "*", http.StatusNotFound},
			{there.String(), `"` + there.String() + `"`, http.StatusNotModified},
			{there.String(), "*", http.StatusNotModified},
		} {
			rec := httptest.NewRecorder()
			r := httptest.NewRequest(method, "/v2/hello/blobs/"+tc.digest, nil)
			r.Header.Set("If-None-Match", tc.ifNoneMatch)
			s.ServeHTTP(rec, r)
			assert.Equal(t, rec.Code, tc.status, "%s %s If-None-Match %s", method, tc.digest, tc.ifNoneMatch)
			if tc.status == http.StatusNotFound {
				assert.Check(t, is.Contains(rec.Body.String(), "BLOB_UNKNOWN"))
			} else {
				assert.Equal(t, rec.Body.Len(), 0)
				assert.Equal(t, rec.Header().Get("ETag"), `"`+tc.digest+`"`)
			}
		}
	}
}

// failingNix is a Realiser whose builds fail with stderr as Nix's.
type failingNix struct{ stderr string }

func (f failingNix) Lock(ctx context.Context) (nix.Locked, error) {
	return fakeLock(ctx, "path:/nonexistent")
}

func (f failingNix) LockFlake(ctx context.Context, ref string) (nix.Locked, error) {
	return fakeLock(ctx, ref)
}

func (f failingNix) BuildLogged(context.Context, string, []string, io.Writer) (*nix.Result, error) {
	return nil, nix.NewCommandError("nix build for x86_64-linux", f.stderr, errors.New("exit status 1"))
}

// Nix failing for want of its store (its daemon down) is
// the server's failure: 500 with the generic message, its socket's path
// in the log only, remembered as other failures are (a second pull
// builds nothing and gets the same 500); Nix failing for what was asked
// stays the puller's 404.
func TestServeNixStoreFailureIsOurs(t *testing.T) {
	for stderr, want := range map[string]int{
		"error: cannot connect to socket at '/nix/var/nix/daemon-socket/socket': Connection refused":        http.StatusInternalServerError,
		"error: builder for '/nix/store/" + strings.Repeat("a", 32) + "-hello.drv' failed with exit code 2": http.StatusNotFound,
	} {
		var log bytes.Buffer
		s := newServer(t, Options{Storage: t.TempDir(), Build: build.Options{Realiser: failingNix{stderr}},
			Log: slog.New(slog.NewTextHandler(&log, nil))})
		res, body := get(t, s, http.MethodGet, "/v2/hello/manifests/latest")
		assert.Check(t, is.Equal(res.StatusCode, want), "%s: %s", stderr, body)
		if want == http.StatusInternalServerError {
			assert.Check(t, is.Contains(body, "the server could not build this image; see the server's log"))
			assert.Check(t, !strings.Contains(body, "socket"), body)
			assert.Check(t, is.Contains(log.String(), strings.TrimPrefix(stderr, "error: ")))
			again, body2 := get(t, s, http.MethodGet, "/v2/hello/manifests/latest")
			assert.Check(t, is.Equal(again.StatusCode, http.StatusInternalServerError))
			assert.Check(t, is.Equal(body2, body))
			_, metrics := get(t, s, http.MethodGet, "/metrics")
			assert.Check(t, is.Contains(metrics, `nixery_serve_builds_total{result="failed"} 1`), "built again")
		}
	}
}

// An image just built is known as kept before a prune waiting for the
// builds to end runs: the prune does not drop it from the storage while
// the server lists it, which would build it again on its next pull.
func TestServePruneAfterBuildKeepsIt(t *testing.T) {
	for round := range 20 {
		storage, _ := storageHolding(t, "a", "b")
		s := newServer(t, Options{Storage: storage})
		s.o.MaxImages = 1 // a and b are over it: the next prune drops one
		var builds atomic.Int32
		pruned := make(chan struct{})
		s.builder = func(context.Context, request) (v1.Hash, error) {
			builds.Add(1)
			idx := stored(t, s, storage, "c")
			go func() { s.pruneNow(); close(pruned) }() // waits for this build
			time.Sleep(10 * time.Millisecond)
			return idx.Digest()
		}
		res, body := get(t, s, http.MethodGet, "/v2/c/manifests/latest")
		assert.Equal(t, res.StatusCode, http.StatusOK, body)
		<-pruned
		res, body = get(t, s, http.MethodGet, "/v2/c/manifests/latest")
		assert.Equal(t, res.StatusCode, http.StatusOK, body)
		assert.Equal(t, builds.Load(), int32(1), "round %d: c was pruned as it was built, and built again", round)
	}
}

// readThenPrune is a store in which reading one manifest lets a prune
// round run before the manifest is served.
type readThenPrune struct {
	store
	d       v1.Hash
	pruneBy func()
}

func (r readThenPrune) manifest(ctx context.Context, d v1.Hash) ([]byte, error) {
	raw, err := r.store.manifest(ctx, d)
	if d == r.d {
		r.pruneBy()
	}
	return raw, err
}

// An image pulled by digest is protected from pruning as its manifest is
// read, not after: a prune between the two would drop the blobs and
// manifests its client asks for next.
func TestServeDigestPullProtected(t *testing.T) {
	storage, _ := storageHolding(t, "a", "b", "c")
	s := newServer(t, Options{Storage: storage})
	for _, name := range []string{"a", "b"} {
		res, body := get(t, s, http.MethodGet, "/v2/"+name+"/manifests/latest")
		assert.Equal(t, res.StatusCode, http.StatusOK, body)
	}
	c, ok := s.built[resolved(t, s, "c").key]
	assert.Assert(t, ok)
	s.o.MaxImages = 2 // one of a, b, c is over: c, pulled least recently
	s.store = readThenPrune{store: s.store, d: c, pruneBy: s.pruneNow}

	res, body := get(t, s, http.MethodGet, "/v2/x/manifests/"+c.String())
	assert.Equal(t, res.StatusCode, http.StatusOK, body)
	im, err := v1.ParseIndexManifest(strings.NewReader(body))
	assert.NilError(t, err)
	res, body = get(t, s, http.MethodGet, "/v2/x/manifests/"+im.Manifests[0].Digest.String())
	assert.Equal(t, res.StatusCode, http.StatusOK, "the image served was pruned: %s", body)
}

// A restart keeps the order in which the images were pulled: the first
// prune after it drops the one pulled least recently, not the first by
// name.
func TestServeRecencySurvivesRestart(t *testing.T) {
	storage, _ := storageHolding(t, "a", "b", "c")
	// Unbounded, a server writes nothing on a pull.
	s := newServer(t, Options{Storage: storage})
	aIndex := s.built[resolved(t, s, "a").key]
	aBlob := filepath.Join(storage, "blobs", "sha256", aIndex.Hex)
	before, err := os.Stat(aBlob)
	assert.NilError(t, err)
	time.Sleep(5 * time.Millisecond)
	res, body := get(t, s, http.MethodGet, "/v2/a/manifests/latest")
	assert.Equal(t, res.StatusCode, http.StatusOK, body)
	after, err := os.Stat(aBlob)
	assert.NilError(t, err)
	assert.Check(t, after.ModTime().Equal(before.ModTime()), "an unbounded server dated a pull")

	s = newServer(t, Options{Storage: storage, MaxImages: 3})
	for _, name := range []string{"b", "a", "c"} {
		res, body := get(t, s, http.MethodGet, "/v2/"+name+"/manifests/latest")
		assert.Equal(t, res.StatusCode, http.StatusOK, body)
		time.Sleep(5 * time.Millisecond) // file times a step apart
	}
	// b pulled again, its pull dated two minutes back but served within
	// the minute (pulled steadily): it is dated anew.
	bKey := resolved(t, s, "b").key
	bIndex := s.built[bKey]
	back := time.Now().Add(-2 * time.Minute)
	assert.NilError(t, os.Chtimes(filepath.Join(storage, "blobs", "sha256", bIndex.Hex), back, back))
	s.mu.Lock()
	s.recorded[bIndex] = back
	s.servedAt[bKey] = time.Now().Add(-30 * time.Second)
	s.mu.Unlock()
	res, body = get(t, s, http.MethodGet, "/v2/b/manifests/latest")
	assert.Equal(t, res.StatusCode, http.StatusOK, body)

	s = newServer(t, Options{Storage: storage, MaxImages: 2})
	_, a := s.built[resolved(t, s, "a").key]
	_, b := s.built[bKey]
	_, c := s.built[resolved(t, s, "c").key]
	assert.Check(t, !a && b && c, "kept a %v, b %v, c %v: a was pulled least recently", a, b, c)
}
