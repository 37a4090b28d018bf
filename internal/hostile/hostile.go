// Package hostile is a registry for tests that behaves as an attacker's
// would: a real in-memory OCI registry (go-containerregistry's) behind a
// front that can redirect forever, declare huge configs and manifests,
// trickle bytes, serve enormous manifest lists and referrers indexes, put
// workflow commands and line breaks into its error messages, and record
// the Authorization headers it is sent. It listens on loopback, so nixery talks plain HTTP
// to it.
package hostile

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
)

// Behaviour is what the registry does wrong; the zero value is an honest
// registry that asks for credentials only when RequireAuth is set.
type Behaviour struct {
	// RequireAuth answers 401 with a Basic challenge to requests without
	// an Authorization header, so that clients send what they have.
	RequireAuth bool
	// RedirectLoop redirects every manifest and blob request to itself.
	RedirectLoop bool
	// ErrorMessage fails every manifest request with 400 and this
	// message in a distribution-spec error body.
	ErrorMessage string
	// Trickle sends manifest answers one byte per interval.
	Trickle time.Duration
	// HugeConfig makes the manifests of tag "huge" declare a config of
	// this many bytes, and its blob stream zeros without end.
	HugeConfig int64
	// EndlessManifest streams tag "endless" as an unending manifest
	// without a Content-Length.
	EndlessManifest bool
	// EndlessReferrers answers 404 to the referrers API, as a registry
	// without it does, and streams every OCI 1.1 fallback tag
	// (sha256-<hex>) as an unending index.
	EndlessReferrers bool
}

// Registry is a running hostile registry.
type Registry struct {
	Host string // 127.0.0.1:PORT

	srv      *httptest.Server
	inner    http.Handler
	behave   atomic.Pointer[Behaviour]
	requests atomic.Int64

	mu    sync.Mutex
	auths []string
	extra map[string]served // path → canned answer (manifest lists)
}

type served struct {
	mediaType string
	body      []byte
}

// Start runs a registry until close is called (t.Cleanup(r.Close)).
func Start(b Behaviour) *Registry {
	r := &Registry{inner: registry.New(registry.Logger(log.New(io.Discard, "", 0))), extra: map[string]served{}}
	r.behave.Store(&b)
	r.srv = httptest.NewServer(r)
	r.Host = strings.TrimPrefix(r.srv.URL, "http://")
	return r
}

// Close stops the registry.
func (r *Registry) Close() { r.srv.CloseClientConnections(); r.srv.Close() }

// Set changes the behaviour (e.g. honest while a test fills it, hostile
// when nixery reads it).
func (r *Registry) Set(b Behaviour) { r.behave.Store(&b) }

// Requests is how many requests the registry has been sent.
func (r *Registry) Requests() int64 { return r.requests.Load() }

// Authorizations are the Authorization headers sent so far, decoded
// where they are Basic ("Basic user:password").
func (r *Registry) Authorizations() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.auths...)
}

func (r *Registry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.requests.Add(1)
	b := *r.behave.Load()
	if a := req.Header.Get("Authorization"); a != "" {
		if user, pass, ok := req.BasicAuth(); ok {
			a = "Basic " + user + ":" + pass
		}
		r.mu.Lock()
		r.auths = append(r.auths, a)
		r.mu.Unlock()
	} else if b.RequireAuth {
		w.Header().Set("WWW-Authenticate", `Basic realm="hostile"`)
		http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"log in"}]}`, http.StatusUnauthorized)
		return
	}
	isManifest := strings.Contains(req.URL.Path, "/manifests/")
	isBlob := strings.Contains(req.URL.Path, "/blobs/")
	switch {
	case b.RedirectLoop && (isManifest || isBlob):
		http.Redirect(w, req, req.URL.String(), http.StatusFound)
		return
	case b.ErrorMessage != "" && isManifest:
		body, _ := json.Marshal(map[string]any{"errors": []map[string]string{{"code": "DENIED", "message": b.ErrorMessage}}})
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		w.Write(body)
		return
	case b.EndlessManifest && isManifest && strings.HasSuffix(req.URL.Path, "/manifests/endless"):
		w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
		chunk := bytes.Repeat([]byte(" "), 64<<10)
		for {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	case b.EndlessReferrers && strings.Contains(req.URL.Path, "/referrers/"):
		http.NotFound(w, req)
		return
	case b.EndlessReferrers && isManifest && strings.Contains(req.URL.Path, "/manifests/sha256-"):
		w.Header().Set("Content-Type", "application/vnd.oci.image.index.v1+json")
		if req.Method == http.MethodHead {
			return
		}
		io.WriteString(w, `{"schemaVersion":2,"manifests":[`)
		entry := []byte(`{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:` + strings.Repeat("0", 64) + `","size":1},`)
		for {
			if _, err := w.Write(entry); err != nil {
				return
			}
		}
	case b.HugeConfig > 0 && isManifest && strings.HasSuffix(req.URL.Path, "/manifests/huge"):
		m := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":%d,"digest":"sha256:%s"},"layers":[]}`,
			b.HugeConfig, strings.Repeat("ab", 32))
		w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
		io.WriteString(w, m)
		return
	case b.HugeConfig > 0 && isBlob && strings.HasSuffix(req.URL.Path, strings.Repeat("ab", 32)):
		w.Header().Set("Content-Length", fmt.Sprint(b.HugeConfig))
		zeros := make([]byte, 64<<10)
		for {
			if _, err := w.Write(zeros); err != nil {
				return
			}
		}
	}
	r.mu.Lock()
	canned, ok := r.extra[req.URL.Path]
	r.mu.Unlock()
	if ok && (req.Method == http.MethodGet || req.Method == http.MethodHead) {
		w.Header().Set("Content-Type", canned.mediaType)
		w.Header().Set("Content-Length", fmt.Sprint(len(canned.body)))
		w.Header().Set("Docker-Content-Digest", digest(canned.body))
		if req.Method == http.MethodGet {
			r.write(w, canned.body, b.Trickle)
		}
		return
	}
	if b.Trickle > 0 && isManifest && req.Method == http.MethodGet {
		rec := httptest.NewRecorder()
		r.inner.ServeHTTP(rec, req)
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		r.write(w, rec.Body.Bytes(), b.Trickle)
		return
	}
	r.inner.ServeHTTP(w, req)
}

// write sends body, one byte per interval when interval is set.
func (r *Registry) write(w http.ResponseWriter, body []byte, interval time.Duration) {
	if interval <= 0 {
		w.Write(body)
		return
	}
	f, _ := w.(http.Flusher)
	for i := range body {
		if _, err := w.Write(body[i : i+1]); err != nil {
			return
		}
		if f != nil {
			f.Flush()
		}
		time.Sleep(interval)
	}
}

// ManifestList serves repo:tag as an OCI index of n distinct image
// manifests, each with a config and one layer annotated with a cache key
// (annotation: the layer annotation's name), whose blobs all answer HEAD.
// It returns the index's digest.
func (r *Registry) ManifestList(repo, tag string, n int, annotation string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var entries []string
	for i := range n {
		cfg := []byte(fmt.Sprintf(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:%064x"]}}`, i))
		layer := []byte(fmt.Sprintf("layer %d", i))
		r.extra["/v2/"+repo+"/blobs/"+digest(cfg)] = served{"application/octet-stream", cfg}
		r.extra["/v2/"+repo+"/blobs/"+digest(layer)] = served{"application/octet-stream", layer}
		m := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",`+
			`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":%d,"digest":"%s"},`+
			`"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","size":%d,"digest":"%s","annotations":{%q:"sha256:%064x"}}]}`,
			len(cfg), digest(cfg), len(layer), digest(layer), annotation, i))
		r.extra["/v2/"+repo+"/manifests/"+digest(m)] = served{"application/vnd.oci.image.manifest.v1+json", m}
		entries = append(entries, fmt.Sprintf(`{"mediaType":"application/vnd.oci.image.manifest.v1+json","size":%d,"digest":"%s","platform":{"architecture":"amd64","os":"linux","variant":"v%d"}}`,
			len(m), digest(m), i))
	}
	idx := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[` + strings.Join(entries, ",") + `]}`)
	r.extra["/v2/"+repo+"/manifests/"+tag] = served{"application/vnd.oci.image.index.v1+json", idx}
	r.extra["/v2/"+repo+"/manifests/"+digest(idx)] = served{"application/vnd.oci.image.index.v1+json", idx}
	return digest(idx)
}

func digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}
