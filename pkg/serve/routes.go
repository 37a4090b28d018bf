package serve

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/nixery-action/nixery-action/pkg/publish"
	"github.com/nixery-action/nixery-action/pkg/registry"
)

var (
	// digestPattern is the only digest this registry stores.
	digestPattern = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
	// namePattern is the distribution spec's repository name, but for
	// letters of either case (clients send lowercase; curl may send an
	// attribute's own name).
	namePattern = regexp.MustCompile(`^[a-zA-Z0-9]+(?:(?:[._]|__|-+)[a-zA-Z0-9]+)*(?:/[a-zA-Z0-9]+(?:(?:[._]|__|-+)[a-zA-Z0-9]+)*)*$`)
)

// maxName bounds a repository name, as the CNCF registry does.
const maxName = 255

// ServeHTTP routes /v2/ requests.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &recorder{ResponseWriter: w, status: http.StatusOK}
	s.route(rec, r)
	if r.URL.Path != "/metrics" {
		s.metrics.served.Add(float64(rec.bytes))
	}
	s.o.Log.Info("request", "method", r.Method, "path", r.URL.Path, "status", rec.status, "bytes", rec.bytes, "seconds", time.Since(start).Seconds())
}

func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/healthz":
		w.Write([]byte("ok\n"))
		return
	case "/metrics":
		s.metrics.handler.ServeHTTP(w, r)
		return
	}
	if t, ok := s.o.Auth.(tokenServer); ok && r.URL.Path == tokenPath {
		t.serveToken(w, r)
		return
	}
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	if s.o.Auth != nil && !s.o.Auth.Allow(r) {
		w.Header().Set("WWW-Authenticate", s.o.Auth.Challenge())
		writeError(w, http.StatusUnauthorized, "UNAUTHORIZED", refusal(r, "log in to this registry first (docker login / podman login)"))
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		writeError(w, http.StatusMethodNotAllowed, "UNSUPPORTED", "this registry builds images when they are pulled; it takes no pushes")
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/v2/")
	switch {
	case r.URL.Path == "/v2" || r.URL.Path == "/v2/":
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte("{}"))
	case !ok:
		writeError(w, http.StatusNotFound, "UNSUPPORTED", "not a registry path: pull REGISTRY/PACKAGE/PACKAGE:latest")
	default:
		name, kind, ref := splitPath(rest)
		switch {
		case kind == "":
			writeError(w, http.StatusNotFound, "UNSUPPORTED", "this registry serves manifests, blobs and tag lists only")
		case !namePattern.MatchString(name) || len(name) > maxName:
			writeError(w, http.StatusBadRequest, "NAME_INVALID", fmt.Sprintf("%q is not a repository name: name packages, such as shell/hello", name))
		case kind == "manifests":
			s.manifest(w, r, name, ref)
		case kind == "blobs":
			s.blob(w, r, ref)
		default:
			s.tags(w, r, name)
		}
	}
}

// splitPath cuts a path under /v2/ into the repository name, what is
// asked of it (manifests, blobs, tags) and the reference; kind is "" for
// no such request.
func splitPath(rest string) (name, kind, ref string) {
	if name, ok := strings.CutSuffix(rest, "/tags/list"); ok && name != "" {
		return name, "tags", ""
	}
	for _, kind := range []string{"manifests", "blobs"} {
		if i := strings.LastIndex(rest, "/"+kind+"/"); i > 0 {
			return rest[:i], kind, rest[i+len(kind)+2:]
		}
	}
	return "", "", ""
}

// tags lists the tag a name is always pulled by (another tag names a
// revision of a git nixpkgs, which no list holds).
func (s *Server) tags(w http.ResponseWriter, r *http.Request, name string) {
	if _, err := s.parse(name, s.o.Nixpkgs); err != nil {
		writeError(w, http.StatusNotFound, "NAME_UNKNOWN", err.Error())
		return
	}
	raw, _ := json.Marshal(map[string]any{"name": name, "tags": []string{"latest"}})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", fmt.Sprint(len(raw)))
	if r.Method != http.MethodHead {
		w.Write(raw)
	}
}

// manifest answers for the image name names, by tag or digest.
func (s *Server) manifest(w http.ResponseWriter, r *http.Request, name, ref string) {
	if digestPattern.MatchString(ref) {
		s.manifestBlob(w, r, ref)
		return
	}
	if strings.Contains(ref, ":") {
		writeError(w, http.StatusBadRequest, "DIGEST_INVALID", fmt.Sprintf("%q is not a sha256 digest", ref))
		return
	}
	if !publish.IsTag(ref) {
		writeError(w, http.StatusNotFound, "MANIFEST_UNKNOWN", fmt.Sprintf("%q is not a tag", ref))
		return
	}
	nixpkgs, err := s.nixpkgsFor(ref)
	if err != nil {
		writeError(w, http.StatusNotFound, "MANIFEST_UNKNOWN", s.scrub(err.Error()))
		return
	}
	img, err := s.parse(name, nixpkgs)
	if err != nil {
		writeError(w, http.StatusNotFound, "NAME_UNKNOWN", err.Error())
		return
	}
	// What is served is known before it is built: nothing is built for
	// a client that cannot take it.
	served := types.OCIImageIndex
	if img.single {
		served = types.OCIManifestSchema1
	}
	if refused(w, r, served) {
		return
	}
	err = s.resolve(r.Context(), &img)
	switch {
	case err == nil, errors.Is(err, errBusy):
	case ref == "latest":
		err = fmt.Errorf("tag %s: %w", ref, err)
	default:
		err = fmt.Errorf("tag %s: %w (is there such a branch, tag or commit?)", ref, err)
	}
	var digest v1.Hash
	if err == nil {
		digest, err = s.image(r.Context(), img)
	}
	var raw []byte
	if err == nil {
		digest, raw, err = s.readManifest(r.Context(), img, digest)
	}
	var se *storageError
	if errors.As(err, &se) {
		// The storage failing is not the image failing: nothing is
		// forgotten or built, and the client may retry.
		storageFailed(s.o.Log, w, r, digest.String(), se.err)
		return
	}
	switch {
	case errors.Is(err, errBusy):
		w.Header().Set("Retry-After", "10")
		writeError(w, http.StatusTooManyRequests, "TOOMANYREQUESTS", s.scrub(err.Error()))
		return
	case err != nil && s.life.Err() != nil:
		// Whatever was cut off (a build, a lock) was cut off by the
		// server stopping, which says nothing of the image.
		w.Header().Set("Retry-After", "10")
		writeError(w, http.StatusServiceUnavailable, "UNAVAILABLE", errStopping.Error())
		return
	case errors.As(err, new(*infraError)):
		// Logged as it happened, with its cause.
		writeError(w, http.StatusInternalServerError, "UNKNOWN", "the server could not build this image; see the server's log")
		return
	case err != nil:
		writeError(w, http.StatusNotFound, "MANIFEST_UNKNOWN", s.scrub(err.Error()))
		return
	}
	if img.single {
		// arm64 alone: the image of the one platform, as Nixery serves it.
		index := digest
		platform, err := onlyManifest(index, raw)
		if err == nil {
			s.mu.Lock()
			s.served[platform] = index
			s.mu.Unlock()
			raw, err = s.store.manifest(r.Context(), platform)
		}
		switch {
		case err != nil && (platform == v1.Hash{} || gone(err)):
			// The index kept is not of one platform, or names a manifest
			// not kept with it: no retry mends that.
			s.o.Log.Error("stored image broken", "digest", index.String(), "error", registry.OneLine(err))
			writeError(w, http.StatusInternalServerError, "UNKNOWN", "the server's stored image is broken: see its log")
			return
		case err != nil:
			storageFailed(s.o.Log, w, r, platform.String(), err)
			return
		}
		digest = platform
	}
	serveManifest(w, r, digest, raw, false)
}

// onlyManifest is the one platform manifest of the index raw (digest).
func onlyManifest(digest v1.Hash, raw []byte) (v1.Hash, error) {
	im, err := v1.ParseIndexManifest(bytes.NewReader(raw))
	if err != nil {
		return v1.Hash{}, err
	}
	if len(im.Manifests) != 1 {
		return v1.Hash{}, fmt.Errorf("index %s has %d platforms, not one", digest, len(im.Manifests))
	}
	return im.Manifests[0].Digest, nil
}

// manifestBlob serves the manifest or index digest (asked for by digest).
func (s *Server) manifestBlob(w http.ResponseWriter, r *http.Request, digest string) {
	d, err := v1.NewHash(digest)
	if err != nil {
		writeError(w, http.StatusNotFound, "MANIFEST_UNKNOWN", "no manifest "+digest)
		return
	}
	// Protected from pruning before it is read: its client fetches the
	// blobs it names next.
	s.touch(d)
	raw, err := s.store.manifest(r.Context(), d)
	switch {
	case err == nil:
		serveManifest(w, r, d, raw, true)
	case gone(err):
		writeError(w, http.StatusNotFound, "MANIFEST_UNKNOWN", "no manifest "+digest)
	default:
		// As a pull by tag: the storage failing is not the manifest
		// missing.
		storageFailed(s.o.Log, w, r, digest, err)
	}
}

// storageFailed answers a request the storage could not be read for:
// 503, to be tried again, whatever was being read (a manifest, a blob).
// The cause, with the storage's address, goes to log only (not for a
// request the client gave up on).
func storageFailed(log *slog.Logger, w http.ResponseWriter, r *http.Request, digest string, err error) {
	if r.Context().Err() == nil {
		log.Error("storage read failed", "digest", digest, "error", registry.OneLine(err))
	}
	w.Header().Set("Retry-After", "10")
	writeError(w, http.StatusServiceUnavailable, "UNKNOWN", "the server cannot read its storage now: try again shortly")
}

// serveManifest answers with raw, the manifest or index digest, and its
// media type; a blob that is neither is no manifest. checkAccept is for a
// request by digest: one by tag was checked before its build.
func serveManifest(w http.ResponseWriter, r *http.Request, digest v1.Hash, raw []byte, checkAccept bool) {
	var probe struct {
		MediaType types.MediaType `json:"mediaType"`
	}
	if json.Unmarshal(raw, &probe) != nil || !(probe.MediaType.IsIndex() || probe.MediaType.IsImage()) {
		writeError(w, http.StatusNotFound, "MANIFEST_UNKNOWN", digest.String()+" is not a manifest")
		return
	}
	if checkAccept && isOCI(probe.MediaType) && refused(w, r, probe.MediaType) {
		return
	}
	w.Header().Set("Content-Type", string(probe.MediaType))
	w.Header().Set("Docker-Content-Digest", digest.String())
	w.Header().Set("ETag", etag(digest))
	// The entity tag answers If-None-Match (304), HEAD gets no body.
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(raw))
}

// refused answers a request whose Accept header does not allow the OCI
// type mt as the CNCF registry does, and tells whether it did: a client
// given a type it did not ask for (one that knows Docker's types only)
// fails to parse it, with a less clear message.
func refused(w http.ResponseWriter, r *http.Request, mt types.MediaType) bool {
	if accepts(r, mt) {
		return false
	}
	what := "manifest"
	if mt.IsIndex() {
		what = "index"
	}
	writeError(w, http.StatusNotFound, "MANIFEST_UNKNOWN", fmt.Sprintf("the image is an OCI %s (%s), which the request's Accept header does not allow: pull with a client that accepts OCI media types", what, mt))
	return true
}

// accepts tells whether r's Accept header allows media type mt. A
// request with none takes any (curl, and clients that predate the
// header), as do */* and application/*; q-values are not weighed.
func accepts(r *http.Request, mt types.MediaType) bool {
	listed := false
	for _, header := range r.Header.Values("Accept") {
		for _, item := range strings.Split(header, ",") {
			t, params, _ := strings.Cut(item, ";")
			t = strings.TrimSpace(t)
			listed = listed || t != ""
			if refusedByQ(params) {
				continue // q=0: "not acceptable" (RFC 9110)
			}
			if t == "*/*" || t == "application/*" || strings.EqualFold(t, string(mt)) {
				return true
			}
		}
	}
	return !listed
}

// refusedByQ tells whether an Accept item's parameters give it weight 0.
func refusedByQ(params string) bool {
	for _, p := range strings.Split(params, ";") {
		name, value, _ := strings.Cut(p, "=")
		if strings.EqualFold(strings.TrimSpace(name), "q") {
			q, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
			return err == nil && q == 0
		}
	}
	return false
}

// isOCI tells whether mt is the OCI index or image manifest type.
func isOCI(mt types.MediaType) bool {
	return mt == types.OCIImageIndex || mt == types.OCIManifestSchema1
}

// etag is the entity tag of a manifest or blob: its digest, quoted.
func etag(digest v1.Hash) string { return `"` + digest.String() + `"` }

// etagMatches tells whether an If-None-Match or If-Range header names
// digest's entity tag (or any, for If-None-Match's *).
func etagMatches(header string, digest v1.Hash) bool {
	for _, tag := range strings.Split(header, ",") {
		tag = strings.TrimPrefix(strings.TrimSpace(tag), "W/")
		if tag == "*" || tag == etag(digest) {
			return true
		}
	}
	return false
}

// blob serves a blob of the store, with range reads.
func (s *Server) blob(w http.ResponseWriter, r *http.Request, digest string) {
	if !digestPattern.MatchString(digest) {
		writeError(w, http.StatusBadRequest, "DIGEST_INVALID", fmt.Sprintf("%q is not a sha256 digest", digest))
		return
	}
	d, err := v1.NewHash(digest)
	if err != nil {
		writeError(w, http.StatusBadRequest, "DIGEST_INVALID", err.Error())
		return
	}
	s.store.serveBlob(&stallBound{ResponseWriter: w, rc: http.NewResponseController(w), limit: s.stall}, r, d)
}

// writeError answers with the distribution spec's error JSON, whose
// message docker and podman print.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]string{{"code": code, "message": msg}}})
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return line
}

// recorder notes the status and size of an answer, for the request log.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (r *recorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

// ReadFrom lets http.ServeContent send a blob file with sendfile.
func (r *recorder) ReadFrom(src io.Reader) (int64, error) {
	n, err := io.Copy(r.ResponseWriter, src)
	r.bytes += n
	return n, err
}

// Unwrap gives http.ResponseController the connection's writer.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
