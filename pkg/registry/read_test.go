package registry

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// blobServer is a registry that answers /v2/ and each HEAD of a blob
// with the next of its steps (a plain 200 once they are spent), and
// counts the HEADs.
type blobServer struct {
	mu    sync.Mutex
	steps []func(w http.ResponseWriter)
	heads int
}

func (s *blobServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodHead || !strings.Contains(r.URL.Path, "/blobs/") {
		return // the ping of /v2/: no login needed
	}
	s.mu.Lock()
	n := s.heads
	s.heads++
	s.mu.Unlock()
	if n < len(s.steps) {
		s.steps[n](w)
		return
	}
	w.Header().Set("Content-Length", "42")
}

func (s *blobServer) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.heads
}

func length(n string) func(w http.ResponseWriter) {
	return func(w http.ResponseWriter) { w.Header().Set("Content-Length", n) }
}

// BlobHeld tells held, not held and an error apart, and asks again (up
// to three times in all) only about a length that is not the blob's: a
// 404 or 401 is asked once, a 503 only with the transport's tries (2
// here), never another round of them.
func TestBlobHeld(t *testing.T) {
	blob := v1.Descriptor{Digest: v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("a", 64)}, Size: 42}
	for _, c := range []struct {
		name  string
		steps []func(http.ResponseWriter)
		held  bool
		err   string
		heads int
	}{
		{"held", nil, true, "", 1},
		{"404", []func(http.ResponseWriter){status(404), status(404)}, false, "", 1},
		{"503 then 200", []func(http.ResponseWriter){status(503)}, true, "", 2},
		{"503 always", []func(http.ResponseWriter){status(503), status(503), status(503), status(503), status(503), status(503)}, false, "503", 2},
		{"wrong length then right", []func(http.ResponseWriter){length("52")}, true, "", 2},
		{"wrong length twice then right", []func(http.ResponseWriter){length("52"), length("52")}, true, "", 3},
		{"wrong length always", []func(http.ResponseWriter){length("52"), length("52"), length("52")}, false, "52 bytes, not 42", 3},
		{"401", []func(http.ResponseWriter){status(401), status(401), status(401)}, false, "401", 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := &blobServer{steps: c.steps}
			srv := httptest.NewServer(s)
			defer srv.Close()
			repo, err := name.NewRepository(strings.TrimPrefix(srv.URL, "http://")+"/x", name.Insecure)
			assert.NilError(t, err)
			r, err := NewReader(context.Background(), repo, Login{auth: authn.Anonymous}, quick(2))
			assert.NilError(t, err)
			held, err := r.BlobHeld(context.Background(), blob)
			if c.err == "" {
				assert.NilError(t, err)
			} else {
				assert.ErrorContains(t, err, c.err)
			}
			assert.Check(t, is.Equal(held, c.held))
			assert.Check(t, is.Equal(s.count(), c.heads))
		})
	}
}

// A registry's reason phrase, its own text, never reaches an error:
// Go's words for the status do.
func TestResolveStatusInGoWords(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	assert.NilError(t, err)
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				req, err := http.ReadRequest(bufio.NewReader(c))
				if err != nil {
					return
				}
				if strings.HasPrefix(req.URL.Path, "/v2/x/manifests/") {
					io.WriteString(c, "HTTP/1.1 418 \x1b]0;owned\x07\x1b[2J\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
					return
				}
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
			}()
		}
	}()
	repo, err := name.NewRepository(ln.Addr().String()+"/x", name.Insecure)
	assert.NilError(t, err)
	r, err := NewReader(context.Background(), repo, Login{auth: authn.Anonymous}, quick(1))
	assert.NilError(t, err)
	_, _, err = r.Resolve(context.Background(), repo.Tag("v1"))
	assert.Error(t, err, "the registry answered 418 I'm a teapot")
}
