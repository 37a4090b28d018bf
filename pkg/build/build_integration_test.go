//go:build integration

package build

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/nixery-action/nixery-action/internal/testenv"
	"github.com/nixery-action/nixery-action/pkg/cache"
	"github.com/nixery-action/nixery-action/pkg/image"
	"github.com/nixery-action/nixery-action/pkg/layers"
	"github.com/nixery-action/nixery-action/pkg/publish"
	"github.com/nixery-action/nixery-action/pkg/registry"
	"github.com/nixery-action/nixery-action/pkg/spec"
)

// TestBuildLayout builds to an OCI layout: two platforms from one lock,
// recorded on the index, the same bytes twice, and Close removes the
// blob files.
func TestBuildLayout(t *testing.T) {
	ctx := context.Background()
	tmp := t.TempDir()
	out := filepath.Join(t.TempDir(), "layout")
	req := request(t, publish.NewLayout(publish.Output{Kind: publish.OCILayout, Path: out}, publish.WriteOptions{Tags: []string{"v1"}}), 6)
	var log bytes.Buffer
	res, err := Build(ctx, req, Options{TempDir: tmp, Log: logTo(&log)})
	assert.NilError(t, err)
	assert.Check(t, strings.HasPrefix(res.Nixpkgs, "path:"), res.Nixpkgs)
	assert.Check(t, strings.Contains(res.Nixpkgs, "narHash="), res.Nixpkgs)
	assert.Check(t, is.Len(res.Manifests, 2))
	assert.Check(t, res.Packed > 0 && res.Reused == 0)
	// Timings per phase, and per platform named as requested.
	tm := res.Timings
	assert.Check(t, tm.Lock > 0 && tm.Upload > 0 && tm.Total >= tm.Lock+tm.Upload, "%+v", tm)
	for _, phase := range []map[string]float64{tm.Nix, tm.Layering, tm.Packing} {
		assert.Check(t, is.Len(phase, 2), "%+v", tm)
		assert.Check(t, phase["linux/amd64"] > 0 && phase["linux/arm64"] > 0, "%+v", tm)
	}
	assert.Equal(t, res.SchemaVersion, 1)
	// Platforms named as requested; the customisation layer marked, last.
	for i, want := range []string{"linux/amd64", "linux/arm64"} {
		m := res.Manifests[i]
		assert.Check(t, is.Equal(m.Platform, want))
		last := m.Layers[len(m.Layers)-1]
		assert.Check(t, last.Customisation && strings.HasPrefix(last.Key, "sha256:") && len(last.Packages) == 0, "%+v", last)
		for _, l := range m.Layers[:len(m.Layers)-1] {
			assert.Check(t, !l.Customisation, "%+v", l)
		}
	}
	assert.Equal(t, res.Manifests[1].OCIPlatform.Variant, "v8")
	entries, err := os.ReadDir(tmp)
	assert.NilError(t, err)
	assert.Check(t, is.Len(entries, 1), "the blob directory")
	assert.NilError(t, res.Close())
	entries, err = os.ReadDir(tmp)
	assert.NilError(t, err)
	assert.Check(t, is.Len(entries, 0), "Close leaves %v", entries)

	// The index names the locked nixpkgs (a local one by its narHash, not
	// its directory) and keeps the caller's annotations.
	idx := readLayoutIndex(t, out, res.Digest)
	im, err := idx.IndexManifest()
	assert.NilError(t, err)
	_, narHash, _ := strings.Cut(res.Nixpkgs, "?narHash=")
	assert.Equal(t, im.Annotations[AnnotationNixpkgs], "path:.../nixpkgs?narHash="+narHash)
	assert.Equal(t, im.Annotations["test"], t.Name())

	// Same request, same bytes; Discard describes the same index.
	req.Destination = publish.Discard{}
	again, err := Build(ctx, req, Options{TempDir: tmp})
	assert.NilError(t, err)
	defer again.Close()
	assert.Equal(t, again.Digest, res.Digest)
	assert.Equal(t, len(again.Manifests), len(res.Manifests))
	for i, m := range again.Manifests {
		assert.Check(t, is.Equal(m.Digest, res.Manifests[i].Digest))
	}
}

// TestBuildFailureLeavesNothing: a missing package fails the build for
// both platforms at once, and no blob file is left behind.
func TestBuildFailureLeavesNothing(t *testing.T) {
	tmp := t.TempDir()
	req := request(t, publish.Discard{}, 6)
	s, err := spec.Parse([]string{"hello", "nosuchpackage", "helo"}, spec.Options{})
	assert.NilError(t, err)
	req.Spec = s
	_, err = Build(context.Background(), req, Options{TempDir: tmp})
	// Every platform's missing packages, with what nixpkgs has instead.
	assert.Error(t, err, "not found in nixpkgs for x86_64-linux and aarch64-linux: helo (did you mean hello?), nosuchpackage")
	entries, err := os.ReadDir(tmp)
	assert.NilError(t, err)
	assert.Check(t, is.Len(entries, 0))
}

// TestBuildRegistryCache pushes, rebuilds warm (nothing packed, nothing
// sent, same index), then rebuilds from a poisoned cache: a layer whose
// cache key is right but whose content is not must be packed, never
// reused, here and when written to a layout.
func TestBuildRegistryCache(t *testing.T) {
	ctx := context.Background()
	host := testenv.StartRegistry(t)
	target, err := publish.NewTarget(host+"/build/cache", []string{"v1"}, false)
	assert.NilError(t, err)
	cold, err := Build(ctx, request(t, publish.NewRegistry(target, publish.Options{}), 6), Options{})
	assert.NilError(t, err)
	cold.Close()
	assert.Check(t, cold.Packed > 0)
	for _, m := range cold.Manifests {
		for _, l := range m.Layers {
			assert.Check(t, l.Uploaded, "layer %s of an empty registry not reported as sent", l.Digest)
		}
	}

	warmReq := request(t, publish.NewRegistry(target, publish.Options{}), 6)
	none, err := name.NewTag(host+"/build/none:v1", name.Insecure)
	assert.NilError(t, err)
	warmReq.CacheFrom = []name.Reference{none}
	var warmLog bytes.Buffer
	warm, err := Build(ctx, warmReq, Options{Log: logTo(&warmLog)})
	assert.NilError(t, err)
	warm.Close()
	// The image that is not there is a warning, logged and returned.
	assert.Check(t, strings.Contains(warmLog.String(), "cache "+none.String()+": nothing there yet\n"), warmLog.String())
	assert.Assert(t, len(warm.CacheWarnings) == 1, "%v", warm.CacheWarnings)
	var cw *cache.Warning
	assert.Assert(t, errors.As(warm.CacheWarnings[0], &cw))
	assert.Equal(t, cw.Ref.String(), none.String())
	var terr *transport.Error
	assert.Assert(t, errors.As(warm.CacheWarnings[0], &terr), "%v", warm.CacheWarnings[0])
	assert.Equal(t, terr.StatusCode, http.StatusNotFound)
	assert.Equal(t, warm.Digest, cold.Digest)
	assert.Equal(t, warm.Packed, 0)
	assert.Equal(t, warm.Reused, cold.Packed)
	for _, m := range warm.Manifests {
		for _, l := range m.Layers {
			assert.Check(t, !l.Uploaded, "layer %s sent again", l.Digest)
		}
	}

	// The poison: the first layer of the amd64 image, its cache key
	// kept, its content replaced by /EVIL.
	victim := cold.Manifests[0].Layers[0]
	poisoned := poison(t, host+"/evil/cache:latest", victim.Key, victim.Digest, target)

	for _, dest := range []publish.Destination{
		publish.NewRegistry(mustTarget(t, host+"/build/victim", "v1"), publish.Options{}),
		publish.NewLayout(publish.Output{Kind: publish.OCILayout, Path: filepath.Join(t.TempDir(), "layout")}, publish.WriteOptions{}),
	} {
		req := request(t, dest, 6)
		req.CacheFrom = []name.Reference{poisoned, target.Tags[0]}
		var log bytes.Buffer
		res, err := Build(ctx, req, Options{Log: logTo(&log)})
		assert.NilError(t, err, "%s", dest)
		res.Close()
		assert.Equal(t, res.Digest, cold.Digest, "%s: the poison changed the image", dest)
		assert.Check(t, strings.Contains(log.String(), "does not hold what its key says"), "%s: %s", dest, log.String())
		assert.Check(t, res.Packed >= 1, "%s: the poisoned layer must be packed", dest)
	}

	// The padding: the same layer, its content and cache key right, but
	// followed by megabytes of empty gzip members (it decompresses to
	// the same tar): packed, never copied.
	req := request(t, publish.NewLayout(publish.Output{Kind: publish.OCILayout, Path: filepath.Join(t.TempDir(), "layout")}, publish.WriteOptions{}), 6)
	req.CacheFrom = []name.Reference{pad(t, host+"/evil/padded:latest", victim.Digest, target)}
	var log bytes.Buffer
	res, err := Build(ctx, req, Options{Log: logTo(&log)})
	assert.NilError(t, err)
	res.Close()
	assert.Equal(t, res.Digest, cold.Digest)
	assert.Check(t, strings.Contains(log.String(), "tar compresses to; packing it"), log.String())
}

// pad pushes to ref an image whose one layer is target's layer victim,
// its cache key kept, with empty gzip members after it.
func pad(t *testing.T, ref, victim string, target publish.Target) name.Reference {
	t.Helper()
	l, err := remote.Layer(target.Repo.Digest(victim))
	assert.NilError(t, err)
	rc, err := l.Compressed()
	assert.NilError(t, err)
	data, err := io.ReadAll(rc)
	assert.NilError(t, err)
	rc.Close()
	var member bytes.Buffer
	assert.NilError(t, gzip.NewWriter(&member).Close())
	data = append(data, bytes.Repeat(member.Bytes(), (4*len(data)+1<<20)/member.Len())...)
	return pushCacheLayer(t, ref, data, layerCacheKey(t, target, victim))
}

// TestBuildStreamed streams every layer while it is packed (the threshold
// lowered to 0) and checks that the registry holds the same image a build
// that uploads after packing gives, read back by skopeo.
func TestBuildStreamed(t *testing.T) {
	testenv.Require(t, "skopeo")
	ctx := context.Background()
	host := testenv.StartRegistry(t)
	plain, err := Build(ctx, request(t, publish.NewRegistry(mustTarget(t, host+"/build/plain", "v1"), publish.Options{}), 6), Options{})
	assert.NilError(t, err)
	plain.Close()

	defer func(old int64) { streamAbove = old }(streamAbove)
	streamAbove = 0
	streamed, err := Build(ctx, request(t, publish.NewRegistry(mustTarget(t, host+"/build/streamed", "v1"), publish.Options{}), 6), Options{})
	assert.NilError(t, err)
	streamed.Close()
	assert.Equal(t, streamed.Digest, plain.Digest)
	for _, m := range streamed.Manifests {
		for _, l := range m.Layers {
			assert.Check(t, l.Uploaded, "layer %s not reported as sent", l.Digest)
		}
	}
	out, err := exec.Command("skopeo", "inspect", "--tls-verify=false", "--raw", "docker://"+host+"/build/streamed:v1").Output()
	assert.NilError(t, err)
	assert.Equal(t, "sha256:"+sha256Hex(out), streamed.Digest)
	for _, m := range streamed.Manifests {
		err := exec.Command("skopeo", "copy", "--src-tls-verify=false", "docker://"+host+"/build/streamed@"+m.Digest, "oci:"+filepath.Join(t.TempDir(), "copy")).Run()
		assert.NilError(t, err, "skopeo copy %s (checks every blob's digest)", m.Digest)
	}
}

// TestBuildFailsFast: an unreachable registry, refused credentials and an
// unusable output path stop the build within seconds, with Nix still
// working on a package that would take a minute.
func TestBuildFailsFast(t *testing.T) {
	ctx := context.Background()
	host, user, _ := testenv.StartAuthRegistry(t)
	slow := slowFlake(t)
	file := filepath.Join(t.TempDir(), "file")
	assert.NilError(t, os.WriteFile(file, []byte("x"), 0o644))
	nonEmpty := t.TempDir()
	assert.NilError(t, os.WriteFile(filepath.Join(nonEmpty, "notes"), []byte("x"), 0o644))
	readOnly := testenv.ReadOnlyDir(t)
	garbage := t.TempDir()
	assert.NilError(t, os.WriteFile(filepath.Join(garbage, "oci-layout"), []byte(`{"imageLayoutVersion": "1.0.0"}`), 0o644))
	assert.NilError(t, os.WriteFile(filepath.Join(garbage, "index.json"), []byte("garbage"), 0o644))
	for _, tc := range []struct {
		name string
		dest publish.Destination
		want string
	}{
		{"unreachable", publish.NewRegistry(mustTarget(t, "127.0.0.1:1/x/y", "v1"), publish.Options{}), "cannot reach registry 127.0.0.1:1"},
		{"wrong password", publish.NewRegistry(mustTarget(t, host+"/x/y", "v1"), publish.Options{Options: registry.Options{Credentials: registry.Credentials{Username: user, Password: "wrong", Registry: host}}}), "authentication failed for registry " + host},
		{"no credentials", publish.NewRegistry(mustTarget(t, host+"/x/y", "v1"), publish.Options{}), "authentication failed for registry " + host},
		{"oci: a file", publish.NewLayout(publish.Output{Kind: publish.OCILayout, Path: file}, publish.WriteOptions{}), "is a file, not a directory"},
		{"oci: other files", publish.NewLayout(publish.Output{Kind: publish.OCILayout, Path: nonEmpty}, publish.WriteOptions{}), "holds other files and is not an OCI layout"},
		{"docker: a directory", publish.NewLayout(publish.Output{Kind: publish.DockerArchive, Path: nonEmpty}, publish.WriteOptions{}), "is a directory"},
		{"docker: no parent", publish.NewLayout(publish.Output{Kind: publish.DockerArchive, Path: filepath.Join(nonEmpty, "no", "x.tar")}, publish.WriteOptions{}), "does not exist"},
		{"oci: read-only", publish.NewLayout(publish.Output{Kind: publish.OCILayout, Path: filepath.Join(readOnly, "image")}, publish.WriteOptions{}), "cannot write in " + readOnly},
		{"oci: garbage layout", publish.NewLayout(publish.Output{Kind: publish.OCILayout, Path: garbage}, publish.WriteOptions{}), "is not a valid OCI layout"},
		{"docker: read-only", publish.NewLayout(publish.Output{Kind: publish.DockerArchive, Path: filepath.Join(readOnly, "x.tar")}, publish.WriteOptions{}), "cannot write in " + readOnly},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := request(t, tc.dest, 6)
			req.Nixpkgs = slow
			req.Platforms = req.Platforms[:1]
			start := time.Now()
			_, err := Build(ctx, req, Options{})
			assert.ErrorContains(t, err, tc.want)
			assert.Check(t, time.Since(start) < 30*time.Second, "took %s: Nix was not stopped", time.Since(start))
		})
	}
}

// SSL_CERT_FILE is set exactly when the image holds the CA bundle: with
// cacert (a default package) and without it (--no-default-packages).
func TestBuildSSLCertFile(t *testing.T) {
	for _, noDefaults := range []bool{false, true} {
		out := filepath.Join(t.TempDir(), "layout")
		req := request(t, publish.NewLayout(publish.Output{Kind: publish.OCILayout, Path: out}, publish.WriteOptions{}), 6)
		s, err := spec.Parse([]string{"hello"}, spec.Options{NoDefaults: noDefaults})
		assert.NilError(t, err)
		req.Spec = s
		res, err := Build(context.Background(), req, Options{})
		assert.NilError(t, err)
		res.Close()
		lp, err := layout.FromPath(out)
		assert.NilError(t, err)
		top, err := lp.ImageIndex()
		assert.NilError(t, err)
		idx, err := top.ImageIndex(v1.Hash{Algorithm: "sha256", Hex: strings.TrimPrefix(res.Digest, "sha256:")})
		assert.NilError(t, err)
		im, err := idx.IndexManifest()
		assert.NilError(t, err)
		for _, d := range im.Manifests {
			img, err := idx.Image(d.Digest)
			assert.NilError(t, err)
			cf, err := img.ConfigFile()
			assert.NilError(t, err)
			env := strings.Join(cf.Config.Env, " ")
			assert.Check(t, strings.Contains(env, "SSL_CERT_FILE="+image.CACertFile) == !noDefaults,
				"no default packages: %v; env: %s", noDefaults, env)
		}
	}
}

// coldWithBlobProxy pushes a cold build to build/NAME:v1 of a registry,
// and puts in front of it a proxy whose GETs of that image's layer blobs
// go to blob (with the registry as next); it returns the cold build and
// the proxy's host:port.
func coldWithBlobProxy(t *testing.T, name string, blob func(w http.ResponseWriter, r *http.Request, next http.Handler)) (*Result, string) {
	t.Helper()
	host := testenv.StartRegistry(t)
	target := mustTarget(t, host+"/build/"+name, "v1")
	cold, err := Build(context.Background(), request(t, publish.NewRegistry(target, publish.Options{}), 6), Options{})
	assert.NilError(t, err)
	cold.Close()
	layerBlobs := map[string]bool{}
	for _, m := range cold.Manifests {
		for _, l := range m.Layers {
			layerBlobs[l.Digest] = true
		}
	}
	upstream, err := url.Parse("http://" + host)
	assert.NilError(t, err)
	proxy := httputil.NewSingleHostReverseProxy(upstream)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || !layerBlobs[r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]] {
			proxy.ServeHTTP(w, r)
			return
		}
		blob(w, r, proxy)
	}))
	t.Cleanup(front.Close)
	return cold, strings.TrimPrefix(front.URL, "http://")
}

// TestBuildSlowCacheBlob: a --cache-from registry that sends a layer's
// blob a byte at a time is given up on, and the layer is packed: the
// build ends with the cold build's image.
func TestBuildSlowCacheBlob(t *testing.T) {
	ctx := context.Background()
	cold, front := coldWithBlobProxy(t, "slow", func(w http.ResponseWriter, r *http.Request, _ http.Handler) {
		w.WriteHeader(http.StatusOK)
		for i := 0; i < 100; i++ { // a byte every 100 ms, then nothing
			w.Write([]byte{0x1f})
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	})
	ref, err := name.ParseReference(front+"/build/slow:v1", name.Insecure)
	assert.NilError(t, err)

	defer func(old func(int64) time.Duration) { fetchTime = old }(fetchTime)
	fetchTime = func(int64) time.Duration { return time.Second }
	req := request(t, publish.NewLayout(publish.Output{Kind: publish.OCILayout, Path: filepath.Join(t.TempDir(), "layout")}, publish.WriteOptions{}), 6)
	req.CacheFrom = []name.Reference{ref}
	var log bytes.Buffer
	res, err := Build(ctx, req, Options{Log: logTo(&log)})
	assert.NilError(t, err)
	res.Close()
	assert.Equal(t, res.Digest, cold.Digest)
	assert.Check(t, res.Reused == 0 && res.Packed > 0, "reused %d, packed %d", res.Reused, res.Packed)
	assert.Check(t, strings.Contains(log.String(), "gave up after 1s"), log.String())
}

// TestBuildCacheRecordRefused pushes through a registry that refuses the
// cache record's tag (a read-only token for it, a limit on tags): the
// image is pushed all the same, and the log says the record was not
// updated.
func TestBuildCacheRecordRefused(t *testing.T) {
	ctx := context.Background()
	host := testenv.StartRegistry(t)
	refusing := testenv.Front(t, host, func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodPut || !strings.HasSuffix(r.URL.Path, "/manifests/"+cache.RecordTag) {
			return false
		}
		testenv.RegistryError(w, http.StatusForbidden, "DENIED", "no more tags")
		return true
	})
	target := mustTarget(t, refusing+"/build/refused", "v1")

	req := request(t, publish.NewRegistry(target, publish.Options{}), 6) // reads the tags and the record first
	var log bytes.Buffer
	res, err := Build(ctx, req, Options{Log: logTo(&log)})
	assert.NilError(t, err)
	res.Close()
	assert.Check(t, res.Pushed && res.Packed > 0)
	assert.Check(t, strings.Contains(log.String(), "cache record nixery-cache: not updated"), log.String())
	assert.Check(t, strings.Contains(log.String(), "no more tags"), log.String())

	_, err = remote.Head(mustTarget(t, host+"/build/refused", "v1").Tags[0])
	assert.NilError(t, err, "the image was not pushed")
	_, err = remote.Head(cache.RecordRef(target.Repo))
	assert.ErrorContains(t, err, "404")
}

// request builds hello (with the default packages) for amd64 and arm64
// from the stand-in nixpkgs.
func request(t *testing.T, dest publish.Destination, budget int) Request {
	t.Helper()
	testenv.Require(t, "nix")
	dir, err := filepath.Abs("../../testdata/nixpkgs")
	assert.NilError(t, err)
	s, err := spec.Parse([]string{"hello"}, spec.Options{})
	assert.NilError(t, err)
	plats, err := spec.ParsePlatforms("linux/amd64", "linux/arm64")
	assert.NilError(t, err)
	req := Request{
		Nixpkgs: "path:" + dir, Spec: s, Platforms: s.SelectPlatforms(plats),
		Layers:      layers.Options{Budget: budget},
		Annotations: map[string]string{"test": t.Name()},
		Destination: dest,
	}
	if reg, ok := dest.(*publish.Registry); ok {
		req.PushTo(reg) // as the CLI does: the cache record too
	}
	return req
}

// poison pushes to ref an image of one layer holding /EVIL, annotated
// with the cache key of the layer whose digest is victim in target's
// image, and returns ref.
func poison(t *testing.T, ref, key, victim string, target publish.Target) name.Reference {
	t.Helper()
	cacheKey := layerCacheKey(t, target, victim)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	assert.NilError(t, tw.WriteHeader(&tar.Header{Name: "EVIL", Mode: 0o644, Size: 4}))
	_, err := tw.Write([]byte("evil"))
	assert.NilError(t, err)
	assert.NilError(t, tw.Close())
	return pushCacheLayer(t, ref, buf.Bytes(), cacheKey)
}

// pushCacheLayer pushes to ref an image of one layer, data (a tar, or
// gzip'd), annotated with the cache key key.
func pushCacheLayer(t *testing.T, ref string, data []byte, key string) name.Reference {
	t.Helper()
	// From memory: LayerFromReader would spill it into a file in /tmp.
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}, tarball.WithMediaType(image.LayerMediaType))
	assert.NilError(t, err)
	img, err := mutate.Append(mutate.MediaType(empty.Image, "application/vnd.oci.image.manifest.v1+json"), mutate.Addendum{
		Layer: layer, MediaType: image.LayerMediaType,
		Annotations: map[string]string{image.AnnotationLayerCache: key},
	})
	assert.NilError(t, err)
	r, err := name.ParseReference(ref, name.Insecure)
	assert.NilError(t, err)
	assert.NilError(t, remote.Write(r, img))
	return r
}

// layerCacheKey is the cache key target's image gives its layer victim.
func layerCacheKey(t *testing.T, target publish.Target, victim string) string {
	t.Helper()
	desc, err := remote.Get(target.Tags[0])
	assert.NilError(t, err)
	idx, err := desc.ImageIndex()
	assert.NilError(t, err)
	im, err := idx.IndexManifest()
	assert.NilError(t, err)
	for _, m := range im.Manifests {
		img, err := idx.Image(m.Digest)
		assert.NilError(t, err)
		mf, err := img.Manifest()
		assert.NilError(t, err)
		for _, l := range mf.Layers {
			if l.Digest.String() == victim {
				return l.Annotations[image.AnnotationLayerCache]
			}
		}
	}
	t.Fatalf("no cache key for %s", victim)
	return ""
}

func mustTarget(t *testing.T, repo string, tags ...string) publish.Target {
	t.Helper()
	target, err := publish.NewTarget(repo, tags, false)
	assert.NilError(t, err)
	return target
}

// readLayoutIndex reads the index of digest from an OCI layout.
func readLayoutIndex(t *testing.T, dir, digest string) v1.ImageIndex {
	t.Helper()
	h, err := v1.NewHash(digest)
	assert.NilError(t, err)
	root, err := layout.ImageIndexFromPath(dir)
	assert.NilError(t, err)
	idx, err := root.ImageIndex(h)
	assert.NilError(t, err)
	return idx
}

func sha256Hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// slowFlake is a nixpkgs whose every package takes a minute to build,
// fresh each call.
func slowFlake(t *testing.T) string {
	dir := t.TempDir()
	flake := fmt.Sprintf(`{
  outputs = { self }: let
    pkg = system: name: builtins.derivation {
      inherit name system;
      builder = "/bin/sh";
      PATH = "/usr/bin:/bin"; # Nix's own PATH finds no sleep
      args = [ "-c" "sleep 60; echo %s > $out" ];
    };
    forSystem = system: { hello = pkg system "hello"; cacert = pkg system "cacert"; iana-etc = pkg system "iana-etc"; };
  in { legacyPackages.x86_64-linux = forSystem "x86_64-linux"; legacyPackages.aarch64-linux = forSystem "aarch64-linux"; };
}
`, t.Name()+time.Now().String())
	assert.NilError(t, os.WriteFile(filepath.Join(dir, "flake.nix"), []byte(flake), 0o644))
	return "path:" + dir
}

// logTo is an Options.Log writing every platform's progress to buf; the
// platforms write at once, so the writes are serialised.
func logTo(buf *bytes.Buffer) func(string) (io.Writer, func()) {
	var mu sync.Mutex
	w := writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return buf.Write(p)
	})
	return func(string) (io.Writer, func()) { return w, func() {} }
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// TestBuildCreatedKeepsLayers: two builds of the same packages created
// at different times (two commits, two SOURCE_DATE_EPOCHs) share every
// layer, the customisation layer too, whose entries are all dated
// archive.DefaultModTime; only the configs, manifests and index differ,
// each config created when its build says.
func TestBuildCreatedKeepsLayers(t *testing.T) {
	ctx := context.Background()
	out := filepath.Join(t.TempDir(), "layout")
	var results []*Result
	times := []time.Time{time.Unix(1700000000, 0).UTC(), time.Unix(1710000000, 0).UTC()}
	for i, created := range times {
		tag := fmt.Sprintf("v%d", i+1)
		req := request(t, publish.NewLayout(publish.Output{Kind: publish.OCILayout, Path: out}, publish.WriteOptions{Tags: []string{tag}}), 6)
		req.Image.Created = created
		res, err := Build(ctx, req, Options{})
		assert.NilError(t, err)
		defer res.Close()
		results = append(results, res)
	}
	first, second := results[0], results[1]
	assert.Check(t, first.Digest != second.Digest, "the same index for two creation times")
	assert.Equal(t, len(first.Manifests), len(second.Manifests))
	for i, m := range first.Manifests {
		m2 := second.Manifests[i]
		assert.Check(t, m.Digest != m2.Digest, "%s: the same manifest for two creation times", m.Platform)
		assert.Equal(t, len(m.Layers), len(m2.Layers))
		for j, l := range m.Layers {
			assert.Check(t, is.Equal(m2.Layers[j].Digest, l.Digest), "%s layer %d (customisation %v)", m.Platform, j, l.Customisation)
		}
	}
	for i, res := range results {
		idx := readLayoutIndex(t, out, res.Digest)
		im, err := idx.IndexManifest()
		assert.NilError(t, err)
		img, err := idx.Image(im.Manifests[0].Digest)
		assert.NilError(t, err)
		cfg, err := img.ConfigFile()
		assert.NilError(t, err)
		assert.Check(t, cfg.Created.Time.Equal(times[i]), "config created %v, want %v", cfg.Created.Time, times[i])
		layers, err := img.Layers()
		assert.NilError(t, err)
		for _, l := range layers {
			assertEntryTimes(t, l, time.Unix(1, 0))
		}
	}
}

// assertEntryTimes checks that every entry of l is dated want.
func assertEntryTimes(t *testing.T, l v1.Layer, want time.Time) {
	t.Helper()
	rc, err := l.Uncompressed()
	assert.NilError(t, err)
	defer rc.Close()
	tr := tar.NewReader(rc)
	n := 0
	var wrong []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		assert.NilError(t, err)
		n++
		if !h.ModTime.Equal(want) {
			wrong = append(wrong, fmt.Sprintf("%s (%v)", h.Name, h.ModTime.UTC()))
		}
	}
	assert.Check(t, n > 0, "an empty layer")
	assert.Check(t, len(wrong) == 0, "%d of %d entries not dated %v: %v", len(wrong), n, want.UTC(), wrong)
}
