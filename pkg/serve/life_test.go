package serve

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/nixery-action/nixery-action/pkg/publish"
)

// fakeBuild stores a new one-platform index under the image's key, as a
// build would, with no Nix.
func fakeBuild(storage string) func(context.Context, request) (v1.Hash, error) {
	return func(ctx context.Context, img request) (v1.Hash, error) {
		im, err := random.Image(4096, 1)
		if err != nil {
			return v1.Hash{}, err
		}
		im = mutate.MediaType(mutate.ConfigMediaType(im, types.OCIConfigJSON), types.OCIManifestSchema1)
		idx := mutate.IndexMediaType(mutate.AppendManifests(empty.Index, mutate.IndexAddendum{Add: im, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}}), types.OCIImageIndex)
		if _, err := publish.Write(ctx, publish.Output{Kind: publish.OCILayout, Path: storage}, idx, publish.WriteOptions{Tags: []string{img.key}}); err != nil {
			return v1.Hash{}, err
		}
		return idx.Digest()
	}
}

// blobsOf follows name:latest as a client does: the index, its manifest,
// then the config and layers it names.
func blobsOf(t *testing.T, s *Server, name string) []string {
	t.Helper()
	res, body := get(t, s, http.MethodGet, "/v2/"+name+"/manifests/latest")
	assert.Assert(t, is.Equal(res.StatusCode, http.StatusOK), body)
	idx, err := v1.ParseIndexManifest(strings.NewReader(body))
	assert.NilError(t, err)
	res, body = get(t, s, http.MethodGet, "/v2/"+name+"/manifests/"+idx.Manifests[0].Digest.String())
	assert.Assert(t, is.Equal(res.StatusCode, http.StatusOK), body)
	m, err := v1.ParseManifest(strings.NewReader(body))
	assert.NilError(t, err)
	blobs := []string{m.Config.Digest.String()}
	for _, l := range m.Layers {
		blobs = append(blobs, l.Digest.String())
	}
	return blobs
}

// A client that got an image's manifest fetches its blobs next: the
// image is not pruned under it, though builds for other pulls take the
// storage past --max-images meanwhile. Once the grace ends the pruner
// runs again by itself and brings the storage within its bounds.
func TestServeKeepsImagesJustServed(t *testing.T) {
	storage := t.TempDir()
	s := newServer(t, Options{Storage: storage, MaxImages: 2})
	defer s.Close()
	assert.Equal(t, s.grace, servedGrace)
	s.builder = fakeBuild(storage)

	blobs := blobsOf(t, s, "big1") // client A has big1's manifest
	for _, name := range []string{"big2", "big3"} {
		res, body := get(t, s, http.MethodGet, "/v2/"+name+"/manifests/latest")
		assert.Assert(t, is.Equal(res.StatusCode, http.StatusOK), body)
	}
	s.gc.Lock()
	again := s.pruneLocked()
	s.gc.Unlock()
	for _, b := range blobs {
		res, body := get(t, s, http.MethodGet, "/v2/big1/blobs/"+b)
		assert.Check(t, is.Equal(res.StatusCode, http.StatusOK), "%s: %s", b, body)
	}
	s.mu.Lock()
	assert.Check(t, is.Len(s.built, 3), "the bound is exceeded during the grace")
	s.mu.Unlock()
	assert.Check(t, again > servedGrace-time.Minute && again <= servedGrace, "pruned again after %s", again)

	// With a short grace, served again now: no prune at once, but one
	// as the grace ends.
	s.mu.Lock()
	s.grace = 500 * time.Millisecond
	s.mu.Unlock()
	for _, name := range []string{"big1", "big2", "big3"} {
		res, body := get(t, s, http.MethodHead, "/v2/"+name+"/manifests/latest")
		assert.Assert(t, is.Equal(res.StatusCode, http.StatusOK), body)
	}
	s.prune()
	// The pruner forgets an image, then removes its blobs: wait for
	// both.
	for i := 0; ; i++ {
		s.mu.Lock()
		n := len(s.built)
		s.mu.Unlock()
		res, _ := get(t, s, http.MethodGet, "/v2/big1/blobs/"+blobs[0])
		if n == 2 && res.StatusCode == http.StatusNotFound {
			break
		}
		assert.Assert(t, i < 250, "still %d images after the grace; big1's config answers %d", n, res.StatusCode)
		time.Sleep(20 * time.Millisecond)
	}
}

// listen serves h on a loopback port.
func listen(t *testing.T, h http.Handler) (*http.Server, string) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	assert.NilError(t, err)
	hs := &http.Server{Handler: h}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	return hs, ln.Addr().String()
}

// Stopping the server cancels the builds: the pull waiting for one is
// told at once to come back (503 with Retry-After, never "no such
// manifest"), even while the build takes a moment to end, nothing is
// remembered as failed, and the HTTP server's drain does not wait for
// the build.
func TestServeStopCancelsBuilds(t *testing.T) {
	s := newServer(t, Options{Storage: t.TempDir()})
	started := make(chan struct{})
	s.builder = func(ctx context.Context, _ request) (v1.Hash, error) {
		close(started)
		<-ctx.Done()
		time.Sleep(2 * time.Second) // Nix stopping its builders
		return v1.Hash{}, fmt.Errorf("nix build: interrupted: %w", ctx.Err())
	}
	hs, host := listen(t, s)
	type answer struct {
		res  *http.Response
		body string
		at   time.Time
	}
	answered := make(chan answer, 1)
	go func() {
		res, err := http.Get("http://" + host + "/v2/hello/manifests/latest")
		if !assert.Check(t, err) {
			answered <- answer{}
			return
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		answered <- answer{res, string(body), time.Now()}
	}()
	<-started

	start := time.Now()
	s.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	assert.NilError(t, hs.Shutdown(ctx))
	drained := time.Since(start)
	a := <-answered
	assert.Assert(t, a.res != nil)
	assert.Check(t, is.Equal(a.res.StatusCode, http.StatusServiceUnavailable), a.body)
	assert.Check(t, is.Equal(a.res.Header.Get("Retry-After"), "10"))
	assert.Check(t, is.Contains(a.body, "UNAVAILABLE"))
	assert.Check(t, is.Contains(a.body, "shutting down"))
	assert.Check(t, a.at.Sub(start) < 1500*time.Millisecond, "answered after %s", a.at.Sub(start))
	assert.Check(t, drained < 1500*time.Millisecond, "drained in %s", drained)
	s.Close()
	assert.Check(t, is.Len(s.failed, 0), "the cancelled build was remembered as failed")
	_, metrics := get(t, s, http.MethodGet, "/metrics")
	assert.Check(t, !strings.Contains(metrics, `result="failed"`), metrics)
	// A pull of an image that needs a build is refused the same way.
	res, body := get(t, s, http.MethodGet, "/v2/other/manifests/latest")
	assert.Check(t, is.Equal(res.StatusCode, http.StatusServiceUnavailable), body)
}

// A build cut off by Timeout says so, naming --timeout, not "context
// deadline exceeded"; it is remembered, as it would time out again.
func TestServeTimeoutNamed(t *testing.T) {
	s := newServer(t, Options{Storage: t.TempDir(), Timeout: 100 * time.Millisecond})
	builds := 0
	s.builder = func(ctx context.Context, _ request) (v1.Hash, error) {
		builds++
		<-ctx.Done()
		return v1.Hash{}, errors.New("nix build interrupted: " + ctx.Err().Error())
	}
	for range 2 {
		res, body := get(t, s, http.MethodGet, "/v2/hello/manifests/latest")
		assert.Check(t, is.Equal(res.StatusCode, http.StatusNotFound), body)
		assert.Check(t, is.Contains(body, "the build of hello took longer than the server's --timeout (100ms)"))
		assert.Check(t, !strings.Contains(body, "deadline"), body)
	}
	assert.Equal(t, builds, 1)
}

// A client that stops reading a blob is dropped once no data has gone
// to it for the stall bound: the handler returns (closing the blob's
// file). A client that reads gets the whole blob, and its ranges, however
// long that takes.
func TestServeDropsStalledReaders(t *testing.T) {
	storage := t.TempDir()
	s := newServer(t, Options{Storage: storage})
	s.stall = 300 * time.Millisecond
	// A blob larger than the sockets' buffers (its name need not be its
	// digest: only the path is read).
	const size = 64 << 20
	digest := "sha256:" + strings.Repeat("ab", 32)
	blob := filepath.Join(storage, "blobs", "sha256", strings.Repeat("ab", 32))
	assert.NilError(t, os.MkdirAll(filepath.Dir(blob), 0o755))
	assert.NilError(t, os.WriteFile(blob, make([]byte, size), 0o644))
	var running sync.WaitGroup
	_, host := listen(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		running.Add(1)
		defer running.Done()
		s.ServeHTTP(w, r)
	}))
	path := "/v2/x/blobs/" + digest

	res, err := http.Get("http://" + host + path)
	assert.NilError(t, err)
	n, err := io.Copy(io.Discard, res.Body)
	res.Body.Close()
	assert.NilError(t, err)
	assert.Equal(t, n, int64(size))
	req, err := http.NewRequest(http.MethodGet, "http://"+host+path, nil)
	assert.NilError(t, err)
	req.Header.Set("Range", "bytes=1000-5000999")
	res, err = http.DefaultClient.Do(req)
	assert.NilError(t, err)
	n, err = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	assert.NilError(t, err)
	assert.Equal(t, res.StatusCode, http.StatusPartialContent)
	assert.Equal(t, n, int64(5000000))

	conn, err := net.Dial("tcp", host)
	assert.NilError(t, err)
	defer conn.Close()
	_, err = fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path)
	assert.NilError(t, err)
	_, err = io.ReadFull(conn, make([]byte, 1024))
	assert.NilError(t, err)
	stalled := time.Now()
	done := make(chan struct{})
	go func() { running.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the stalled reader's request still runs after 5s")
	}
	t.Logf("dropped after %s", time.Since(stalled))
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err = io.Copy(io.Discard, conn)
	var ne net.Error
	assert.Check(t, !(errors.As(err, &ne) && ne.Timeout()), "the connection is still open")
	assert.Check(t, n < size, "the whole blob went")

	// A slow reader that never stops is no stalled one: 32 KiB every
	// 20 ms takes a stallChunk in 160 ms, within the 300 ms bound. Small
	// socket buffers on both sides, so that the server's writes wait
	// for the reader, not for buffers megabytes long.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	assert.NilError(t, err)
	slow := ln.(*net.TCPListener)
	hs := &http.Server{Handler: s}
	go hs.Serve(smallBuffers{slow})
	defer hs.Close()
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 64<<10) })
	}}
	client := &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
	res, err = client.Get("http://" + slow.Addr().String() + path)
	assert.NilError(t, err)
	defer res.Body.Close()
	buf := make([]byte, 32<<10)
	for read := 0; read < 3<<20; {
		k, err := io.ReadFull(res.Body, buf)
		assert.NilError(t, err, "dropped after %d bytes", read+k)
		read += k
		time.Sleep(20 * time.Millisecond)
	}
}

// smallBuffers gives accepted connections a small send buffer.
type smallBuffers struct{ *net.TCPListener }

func (l smallBuffers) Accept() (net.Conn, error) {
	c, err := l.AcceptTCP()
	if err == nil {
		c.SetWriteBuffer(64 << 10)
	}
	return c, err
}
