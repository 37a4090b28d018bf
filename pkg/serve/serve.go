// Package serve is a registry that builds images on pull, as Nixery does:
// the repository path names the packages (shell/git/htop), and the
// manifest is built on the first request, kept in an OCI layout on disk,
// and served from there afterwards. It serves the pull side of the OCI
// distribution API (manifests and blobs, GET and HEAD, range reads) and
// refuses pushes.
package serve

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sync/semaphore"
	"golang.org/x/sync/singleflight"

	"github.com/nixery-action/nixery-action/pkg/build"
	"github.com/nixery-action/nixery-action/pkg/cache"
	"github.com/nixery-action/nixery-action/pkg/flakeref"
	"github.com/nixery-action/nixery-action/pkg/nix"
	"github.com/nixery-action/nixery-action/pkg/publish"
	"github.com/nixery-action/nixery-action/pkg/registry"
	"github.com/nixery-action/nixery-action/pkg/spec"
)

// Options configure a Server.
type Options struct {
	// Nixpkgs is the flake reference the tag latest builds from. When it
	// is git-based (github:OWNER/REPO[/REF], gitlab:, sourcehut:,
	// git+URL, or a flake registry name such as nixpkgs), another tag
	// names a branch, tag or commit of that repository, as Nixery's tags
	// do.
	Nixpkgs string
	// Refresh is how long the revision a tag names is kept before it is
	// locked again, so that latest follows a branch; 0 means 5 minutes.
	// (Nix keeps a forge's branch for its own tarball-ttl too.)
	Refresh time.Duration
	// Lock locks a flake reference to one revision; nil means Nix (`nix
	// flake metadata`) with Build's Nix settings.
	Lock func(ctx context.Context, ref string) (nix.Locked, error)
	// Storage keeps every image built, so that a restart serves them
	// again without building: the directory of an OCI layout, or
	// docker://REGISTRY/NAME, a registry repository that several servers
	// share (each image is then built once between them).
	Storage string
	// Registry are the credentials and bounds for a registry Storage.
	Registry registry.Options
	// Insecure talks plain HTTP to a registry Storage (loopback always is).
	Insecure bool
	// Platforms are those of a name without the arm64 meta-package;
	// nil means linux/amd64 and linux/arm64.
	Platforms []spec.Platform
	// Builds bounds the builds that run at once; 0 means 2.
	Builds int
	// Timeout bounds one image's build; 0 means 20 minutes.
	Timeout time.Duration
	// MaxImages and MaxBytes bound the images kept and the bytes of
	// their blobs: past either, those pulled least recently are dropped
	// from the storage with the blobs only they use (and built again when
	// pulled). 0 is no bound. A directory storage only.
	MaxImages int
	MaxBytes  int64
	// Log receives a line per request and per build; nil discards them.
	Log *slog.Logger
	// Auth, when set, is asked about every request but /healthz and
	// /metrics.
	Auth Auth
	// Build are the pipeline's settings (Nix, logs).
	Build build.Options
}

// Server answers registry requests, building what is asked for. It is an
// http.Handler.
type Server struct {
	o       Options
	store   store
	flight  singleflight.Group
	slots   *semaphore.Weighted
	metrics *metrics

	mu    sync.Mutex
	built map[string]v1.Hash // key (a tag in the storage layout) → index digest
	used  map[string]int64   // key → when last pulled (a counter)
	clock int64
	// servedAt is when a manifest of each image was last served: a
	// client that has it goes on to fetch its blobs (see servedGrace).
	servedAt map[string]time.Time
	grace    time.Duration // servedGrace, but for tests
	// stall is how long a blob's client may take no data (stallLimit,
	// but for tests).
	stall time.Duration
	// served are the manifests arm64 images were served as, by tag:
	// manifest digest → index digest, so that pulls by the manifest's
	// digest count as use of the image (see touch).
	served map[v1.Hash]v1.Hash
	// failed remembers a failed build for failedFor, so that pulls of a
	// name that does not build (a typo) do not each run Nix.
	failed map[string]failure
	// locks are the revisions the references tags name were locked to;
	// relocking, when each lock running began.
	locks     map[string]lockEntry
	relocking map[string]time.Time
	// builder builds an image into the storage (build, but for tests).
	builder func(context.Context, request) (v1.Hash, error)
	// secrets are the credentials in Nixpkgs, kept from logs and clients.
	secrets []string
	// relockWait is how long a pull waits for a reference to be locked
	// again before it takes the reference's last lock.
	relockWait time.Duration

	// gc is held for reading by every build, and for writing while the
	// storage is pruned: a prune removes blobs, which a build may be
	// writing or reusing.
	gc sync.RWMutex

	startPruner sync.Once
	pruneAsked  chan struct{} // holds one ask for the pruner
	pruneWait   time.Duration // pruneWait, but for tests

	pending  atomic.Int64   // builds running or waiting for a slot
	locking  atomic.Int64   // locks of nixpkgs references running
	building sync.WaitGroup // builds running
	life     context.Context
	end      context.CancelFunc
}

// New checks o and reads what the storage holds already.
func New(o Options) (*Server, error) {
	if o.Nixpkgs == "" {
		return nil, errors.New("no nixpkgs to build from: give a flake reference")
	}
	if o.Storage == "" {
		return nil, errors.New("no storage directory: give one to keep the images in")
	}
	if o.Platforms == nil {
		var err error
		if o.Platforms, err = spec.ParsePlatforms("linux/amd64,linux/arm64"); err != nil {
			return nil, err
		}
	}
	if o.Builds <= 0 {
		o.Builds = 2
	}
	if o.Timeout <= 0 {
		o.Timeout = 20 * time.Minute
	}
	if o.Refresh <= 0 {
		o.Refresh = 5 * time.Minute
	}
	if o.Log == nil {
		o.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	// Clients send names in lowercase only: python3packages.requests
	// finds python3Packages.requests.
	o.Build.Caseless = true
	secrets := flakeref.Secrets(o.Nixpkgs)
	if len(secrets) > 0 {
		o.Log = slog.New(scrubbed{o.Log.Handler(), secrets})
	}
	if o.Lock == nil {
		o.Lock = nixLock(o)
	}
	s := &Server{o: o, slots: semaphore.NewWeighted(int64(o.Builds)), used: map[string]int64{}, servedAt: map[string]time.Time{}, grace: servedGrace, stall: stallLimit, failed: map[string]failure{}, locks: map[string]lockEntry{}, relocking: map[string]time.Time{}, relockWait: relockWait, secrets: secrets, metrics: newMetrics(),
		served: map[v1.Hash]v1.Hash{}, pruneAsked: make(chan struct{}, 1), pruneWait: pruneWait}
	s.builder = s.build
	dir, repo, err := parseStorage(o.Storage, o.Insecure)
	switch {
	case err != nil:
		return nil, err
	case repo != nil && (o.MaxImages > 0 || o.MaxBytes > 0):
		return nil, errors.New("a registry storage is bounded by the registry's own garbage collection: drop --max-images and --max-storage, or store in a directory")
	case repo != nil:
		if s.store, err = newRegistryStore(*repo, o.Registry, o.Log); err != nil {
			return nil, err
		}
	default:
		if err := usableStorage(dir); err != nil {
			return nil, err
		}
		if s.o.Build.TempDir == "" {
			if s.o.Build.TempDir, err = scratchDir(dir); err != nil {
				return nil, err
			}
			s.o.Build.TempDirFull = storageFull
		}
		s.store = layoutStore{dir: dir, layers: new(cache.LayoutReader)}
	}
	if s.built, err = s.store.load(); err != nil {
		return nil, err
	}
	s.life, s.end = context.WithCancel(context.Background())
	if s.o.MaxImages > 0 || s.o.MaxBytes > 0 {
		s.pruneNow() // bounds lowered since the last start apply now
	}
	return s, nil
}

// Stop cancels the builds running or waiting (they leave the storage as
// it was): the pulls waiting for them are told at once to come back
// (503), while manifests and blobs of images built are still served.
// Call it as the HTTP server begins to shut down, so that its drain
// waits for transfers only, never for a build.
func (s *Server) Stop() { s.end() }

// Close stops the builds still running (and the pulls waiting for a
// build slot) and waits for them to end. Call
// it after the HTTP server has shut down.
func (s *Server) Close() {
	s.end()
	s.building.Wait()
}

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
		w.Header().Set("WWW-Authenticate", s.o.Auth.Challenge(r))
		writeError(w, http.StatusUnauthorized, "UNAUTHORIZED", "log in to this registry first (docker login / podman login)")
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
		if r.Context().Err() == nil {
			s.o.Log.Error("storage read failed", "digest", digest.String(), "error", se.err.Error())
		}
		w.Header().Set("Retry-After", "10")
		writeError(w, http.StatusServiceUnavailable, "UNKNOWN", "the server cannot read its storage now: try again shortly")
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
	case err != nil:
		writeError(w, http.StatusNotFound, "MANIFEST_UNKNOWN", s.scrub(err.Error()))
		return
	}
	if img.single {
		// arm64 alone: the image of the one platform, as Nixery serves it.
		index := digest
		if digest, err = onlyManifest(digest, raw); err == nil {
			s.mu.Lock()
			s.served[digest] = index
			s.mu.Unlock()
			raw, err = s.store.manifest(r.Context(), digest)
		}
		if err != nil {
			s.o.Log.Error("storage read failed", "digest", digest.String(), "error", err.Error())
			writeError(w, http.StatusInternalServerError, "UNKNOWN", "the server cannot read its storage: see its log")
			return
		}
	}
	serveManifest(w, r, digest, raw)
}

// readManifest reads img's index, digest, from the store; one gone from
// it (a registry's garbage collection) is built again. An error reading
// the store is a *storageError.
func (s *Server) readManifest(ctx context.Context, img request, digest v1.Hash) (v1.Hash, []byte, error) {
	raw, err := s.store.manifest(ctx, digest)
	if gone(err) {
		s.forget(img.key)
		if digest, err = s.image(ctx, img); err != nil {
			return digest, nil, err
		}
		raw, err = s.store.manifest(ctx, digest)
	}
	if err != nil {
		return digest, nil, &storageError{err}
	}
	return digest, raw, nil
}

// storageError is the store failing to answer.
type storageError struct{ err error }

func (e *storageError) Error() string { return "storage: " + e.err.Error() }

// gone tells whether err says the store does not hold what was asked
// for, rather than that it could not be read.
func gone(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || registry.IsNotFound(err)
}

// failedFor is how long a failed build's error is given again without
// building: long enough to spare Nix a burst of retries, short enough for
// a fixed nixpkgs to be seen.
const failedFor = time.Minute

// failure is a failed build's error, and until when it stands.
type failure struct {
	err   error
	until time.Time
}

// request is an image asked for: what to build and the key it is kept
// under.
type request struct {
	spec      *spec.Spec
	nixpkgs   string // what the tag names
	platforms []spec.Platform
	single    bool // the arm64 meta-package: one platform, served alone
	// locked is nixpkgs locked to one revision, and key the image's key
	// under it (see resolve).
	locked nix.Locked
	key    string
}

// parse reads a repository path (shell/git/htop) as Nixery does, to be
// built from nixpkgs (what its tag names).
func (s *Server) parse(name, nixpkgs string) (request, error) {
	sp, err := spec.Parse([]string{name}, spec.Options{})
	if err != nil {
		return request{}, err
	}
	if len(sp.Installables) > 0 {
		return request{}, fmt.Errorf("%s: only nixpkgs packages can be pulled by name", name)
	}
	// A meta-package (arm64) picks the platform, and the image is served
	// alone; otherwise the name is an index over the server's platforms.
	platforms, single := s.o.Platforms, false
	if len(sp.Platforms) > 0 {
		platforms = sp.SelectPlatforms(nil)
		single = len(platforms) == 1
	}
	return request{spec: sp, nixpkgs: nixpkgs, platforms: platforms, single: single}, nil
}

// resolve locks img's nixpkgs and keys img by its revision, its packages
// and its platforms.
func (s *Server) resolve(ctx context.Context, img *request) error {
	l, err := s.lock(ctx, img.nixpkgs)
	if err != nil {
		return err
	}
	h := sha256.New()
	fmt.Fprintf(h, "nixery-serve 2\nnixpkgs %s\npackages %s\n", revisionKey(l.URL), strings.Join(img.spec.AllPackages(), " "))
	for _, p := range img.platforms {
		fmt.Fprintf(h, "platform %s\n", p)
	}
	img.locked, img.key = l, hex.EncodeToString(h.Sum(nil))
	return nil
}

// image returns the index digest of img, building it first when the
// storage does not hold it: once for all the requests that want it at
// once, at most Builds at a time.
func (s *Server) image(ctx context.Context, img request) (v1.Hash, error) {
	s.mu.Lock()
	d, ok := s.built[img.key]
	if ok {
		s.useLocked(img.key)
	}
	f, failed := s.failed[img.key]
	s.mu.Unlock()
	if ok {
		s.metrics.manifests.WithLabelValues("hit").Inc()
		return d, nil
	}
	if failed && time.Now().Before(f.until) {
		return v1.Hash{}, f.err
	}
	// One flight per image, shared by every pull that wants it: it asks
	// the store (another server may have built it), else builds.
	ch := s.flight.DoChan(img.key, func() (any, error) {
		lookup, cancel := context.WithTimeout(s.life, s.o.Timeout)
		d, ok := s.store.lookup(lookup, img.key)
		cancel()
		if ok {
			s.keep(img.key, d)
			return flight{d, true}, nil
		}
		// Close waits for the builds and for the flights waiting for a
		// slot; pending is back down before it returns.
		s.building.Add(1)
		defer s.building.Done()
		defer s.pending.Add(-1)
		if s.pending.Add(1) > int64(s.o.Builds*(1+queuedPerBuild)) {
			return nil, errBusy
		}
		// Waiting for a slot and building are bounded apart: a build
		// that waited still gets all of Timeout. A pull that waited a
		// whole Timeout is refused as busy, not remembered as failed.
		wait, cancelWait := context.WithTimeout(s.life, s.o.Timeout)
		err := s.slots.Acquire(wait, 1)
		cancelWait()
		if err != nil {
			if s.life.Err() != nil {
				return nil, errStopping
			}
			return nil, fmt.Errorf("%w (no build slot within %s)", errBusy, s.o.Timeout)
		}
		defer s.slots.Release(1)
		// The build outlives the request that started it (others may
		// wait for it, and it is kept), not the server.
		ctx, cancel := context.WithTimeout(s.life, s.o.Timeout)
		defer cancel()
		s.metrics.running.Inc()
		s.gc.RLock()
		d, err = s.builder(ctx, img)
		s.gc.RUnlock()
		s.metrics.running.Dec()
		if err != nil && s.life.Err() != nil {
			// Cut off by the server stopping, not failed: nothing is
			// remembered, and the pull is told to come back.
			return nil, errStopping
		}
		if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
			err = fmt.Errorf("the build of %s took longer than the server's --timeout (%s)", img.spec.Name(), s.o.Timeout)
		}
		result := "ok"
		if err != nil {
			result = "failed"
		}
		s.metrics.builds.WithLabelValues(result).Inc()
		if err != nil {
			s.fail(img.key, err)
			return nil, err
		}
		s.keep(img.key, d)
		s.prune()
		return flight{d, false}, nil
	})
	select {
	case <-ctx.Done():
		return v1.Hash{}, ctx.Err()
	case <-s.life.Done():
		// The build may take a moment to stop: the pull does not wait.
		return v1.Hash{}, errStopping
	case res := <-ch:
		if res.Err != nil {
			s.metrics.manifests.WithLabelValues("miss").Inc()
			return v1.Hash{}, res.Err
		}
		f := res.Val.(flight)
		cache := "miss"
		if f.stored {
			cache = "hit"
		}
		s.metrics.manifests.WithLabelValues(cache).Inc()
		return f.digest, nil
	}
}

// flight is what one image's flight found: its index digest, and whether
// the store had it already.
type flight struct {
	digest v1.Hash
	stored bool
}

// queuedPerBuild bounds the builds waiting for a slot: past Builds times
// this, a pull of a new image is refused at once (TOOMANYREQUESTS) rather
// than queued for --timeout.
const queuedPerBuild = 4

// errBusy refuses a pull of a new image while too many wait.
var errBusy = errors.New("too many images are being built: try again shortly")

// errStopping answers a pull whose image was to be built as the server
// stops: the build was cancelled, and the pull may be tried again (at
// this server once it is back, or at another).
var errStopping = errors.New("the server is shutting down and cancelled the build of this image: pull again in a moment")

// keep records that key's image is stored as d, and pulled now.
func (s *Server) keep(key string, d v1.Hash) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.built[key] = d
	s.useLocked(key)
	delete(s.failed, key)
}

// useLocked records that key's manifest is served now; s.mu is held.
func (s *Server) useLocked(key string) {
	s.clock++
	s.used[key] = s.clock
	s.servedAt[key] = time.Now()
}

// forget drops key: its image is no longer in the store.
func (s *Server) forget(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropLocked(key)
}

// dropLocked forgets key's image; s.mu is held.
func (s *Server) dropLocked(key string) {
	d := s.built[key]
	delete(s.built, key)
	delete(s.used, key)
	delete(s.servedAt, key)
	for child, idx := range s.served {
		if idx == d {
			delete(s.served, child)
		}
	}
}

// touch records a pull by digest d of an index, or of the one manifest
// an arm64 image is served as: an image pinned by digest is in use too,
// and is not dropped as the least recently pulled.
func (s *Server) touch(d v1.Hash) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if idx, ok := s.served[d]; ok {
		d = idx
	}
	for k, kd := range s.built {
		if kd == d {
			s.useLocked(k)
		}
	}
}

// fail remembers a failed build, and forgets those that stand no more.
func (s *Server) fail(key string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	for k, f := range s.failed {
		if now.After(f.until) {
			delete(s.failed, k)
		}
	}
	s.failed[key] = failure{err: err, until: now.Add(failedFor)}
}

// build builds img into the storage under its key.
func (s *Server) build(ctx context.Context, img request) (v1.Hash, error) {
	start := time.Now()
	name := img.spec.Name()
	s.o.Log.Info("build", "image", name, "nixpkgs", img.locked.URL, "key", img.key)
	req := build.Request{Nixpkgs: img.locked.URL, NixpkgsLocked: &img.locked, Spec: img.spec, Platforms: img.platforms}
	s.store.prepare(&req, img.key)
	res, err := build.Build(ctx, req, s.o.Build)
	if err != nil {
		s.o.Log.Error("build failed", "image", name, "error", err.Error())
		return v1.Hash{}, errors.New(firstLine(err.Error()))
	}
	res.Close()
	d, err := v1.NewHash(res.Digest)
	if err != nil {
		return v1.Hash{}, err
	}
	s.o.Log.Info("built", "image", name, "digest", d.String(), "packed", res.Packed, "reused", res.Reused, "seconds", time.Since(start).Seconds())
	return d, nil
}

// storageFull is what a serve operator can do when a directory
// storage's disk is full (the layers are packed there too, in its
// scratch directory).
const storageFull = "bound the storage with a lower --max-storage or --max-images, or give --storage a directory on a larger disk"

// Pruning removes blobs, which a running build may be reusing or
// writing, so it runs under the gc lock alone. After a build, prune asks
// the pruner, which takes the lock as soon as no build holds it; while
// builds run back to back it waits at most pruneWait, then holds new
// builds back until those running end, so the bounds hold under any load.
const (
	pruneWait  = 30 * time.Second
	pruneRetry = 100 * time.Millisecond
)

// servedGrace is how long an image whose manifest was served is kept
// whatever the bounds: the client fetches its blobs next, which must not
// be pruned under it. The bounds may be exceeded meanwhile; the pruner
// runs again as the grace ends.
const servedGrace = 10 * time.Minute

// prune asks for the storage to be brought within its bounds, soon and
// off the request that asks.
func (s *Server) prune() {
	if s.o.MaxImages <= 0 && s.o.MaxBytes <= 0 {
		return
	}
	s.startPruner.Do(func() {
		s.building.Add(1)
		go s.pruner()
	})
	select {
	case s.pruneAsked <- struct{}{}:
	default: // asked already: the next round sees this image too
	}
}

// pruner prunes once per ask until the server stops.
func (s *Server) pruner() {
	defer s.building.Done()
	for {
		select {
		case <-s.life.Done():
			return
		case <-s.pruneAsked:
		}
		deadline := time.Now().Add(s.pruneWait)
		for !s.gc.TryLock() {
			if time.Now().After(deadline) {
				s.gc.Lock()
				break
			}
			select {
			case <-s.life.Done():
				return
			case <-time.After(pruneRetry):
			}
		}
		again := s.pruneLocked()
		s.gc.Unlock()
		if again > 0 {
			time.AfterFunc(again, s.prune)
		}
	}
}

// pruneNow prunes at once, waiting for the builds running.
func (s *Server) pruneNow() {
	s.gc.Lock()
	defer s.gc.Unlock()
	s.pruneLocked()
}

// pruneLocked drops the images pulled least recently while more than
// MaxImages are kept, or the storage holds more than MaxBytes; the image
// pulled last (or just built) stays, and so do those served within the
// grace. It returns how long until the first of those still over the
// bounds leaves the grace (0: none). The caller holds the gc lock.
func (s *Server) pruneLocked() (again time.Duration) {
	dropped, blobs := 0, 0
	for s.over() {
		s.mu.Lock()
		victim, oldest, last := "", int64(-1), s.lastUsed()
		var wait time.Duration
		for k := range s.built {
			if left := s.grace - time.Since(s.servedAt[k]); k != last && left > 0 {
				if wait == 0 || left < wait {
					wait = left
				}
				continue
			}
			if k != last && (oldest < 0 || s.used[k] < oldest || (s.used[k] == oldest && k < victim)) {
				victim, oldest = k, s.used[k]
			}
		}
		if victim != "" {
			s.dropLocked(victim)
		}
		keep := map[string]bool{}
		for k := range s.built {
			keep[k] = true
		}
		s.mu.Unlock()
		if victim == "" {
			// Only the image pulled last, and those in their grace, are left.
			again = wait
			break
		}
		n, err := s.store.prune(func(name string) bool { return keep[name] })
		if err != nil {
			s.o.Log.Error("prune failed", "error", err.Error())
			return
		}
		dropped++
		blobs += n
		s.metrics.pruned.Inc()
	}
	if dropped > 0 {
		s.o.Log.Info("pruned", "images", dropped, "blobs", blobs)
	}
	return again
}

// lastUsed is the key pulled last ("" for none); s.mu is held.
func (s *Server) lastUsed() string {
	last, at := "", int64(-1)
	for k := range s.built {
		if s.used[k] > at || (s.used[k] == at && k < last) {
			last, at = k, s.used[k]
		}
	}
	return last
}

// over tells whether the storage holds more than its bounds allow.
func (s *Server) over() bool {
	s.mu.Lock()
	n := len(s.built)
	s.mu.Unlock()
	if s.o.MaxImages > 0 && n > s.o.MaxImages {
		return true
	}
	return s.o.MaxBytes > 0 && s.store.size() > s.o.MaxBytes
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
	if err == nil {
		var raw []byte
		if raw, err = s.store.manifest(r.Context(), d); err == nil {
			s.touch(d)
			serveManifest(w, r, d, raw)
			return
		}
	}
	writeError(w, http.StatusNotFound, "MANIFEST_UNKNOWN", "no manifest "+digest)
}

// serveManifest answers with raw, the manifest or index digest, and its
// media type; a blob that is neither is no manifest.
func serveManifest(w http.ResponseWriter, r *http.Request, digest v1.Hash, raw []byte) {
	var probe struct {
		MediaType types.MediaType `json:"mediaType"`
	}
	if json.Unmarshal(raw, &probe) != nil || !(probe.MediaType.IsIndex() || probe.MediaType.IsImage()) {
		writeError(w, http.StatusNotFound, "MANIFEST_UNKNOWN", digest.String()+" is not a manifest")
		return
	}
	if isOCI(probe.MediaType) && !accepts(r, probe.MediaType) {
		// As the CNCF registry answers: a client given a type it did not
		// ask for (one that knows Docker's types only) fails to parse
		// it, with a less clear message.
		what := "manifest"
		if probe.MediaType.IsIndex() {
			what = "index"
		}
		writeError(w, http.StatusNotFound, "MANIFEST_UNKNOWN", fmt.Sprintf("the image is an OCI %s (%s), which the request's Accept header does not allow: pull with a client that accepts OCI media types", what, probe.MediaType))
		return
	}
	w.Header().Set("Content-Type", string(probe.MediaType))
	w.Header().Set("Docker-Content-Digest", digest.String())
	w.Header().Set("ETag", etag(digest))
	if etagMatches(r.Header.Get("If-None-Match"), digest) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("Content-Length", fmt.Sprint(len(raw)))
	if r.Method == http.MethodHead {
		return
	}
	w.Write(raw)
}

// accepts tells whether r's Accept header allows media type mt. A
// request with none takes any (curl, and clients that predate the
// header), as do */* and application/*; q-values are not weighed.
func accepts(r *http.Request, mt types.MediaType) bool {
	listed := false
	for _, header := range r.Header.Values("Accept") {
		for _, item := range strings.Split(header, ",") {
			t, _, _ := strings.Cut(item, ";")
			t = strings.TrimSpace(t)
			if t == "*/*" || t == "application/*" || strings.EqualFold(t, string(mt)) {
				return true
			}
			listed = listed || t != ""
		}
	}
	return !listed
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

// stallLimit is how long a client may take none of a blob before its
// connection is dropped: one that stops reading would otherwise hold the
// connection and the blob's file (and the disk of a blob pruned since)
// for good.
const stallLimit = time.Minute

// stallChunk is how much of a blob is sent within one write deadline: a
// client taking less than that in a stallLimit (4 KiB/s) is stalled.
// Small enough for a slow link shared by several layers, large enough
// that renewing the deadline costs nothing against sendfile's work.
const stallChunk = 256 << 10

// stallBound renews the connection's write deadline before each chunk it
// writes, so that a transfer may take as long as it needs while data
// flows, and fails once none has for limit.
type stallBound struct {
	http.ResponseWriter
	rc    *http.ResponseController
	limit time.Duration
}

func (b *stallBound) renew() { b.rc.SetWriteDeadline(time.Now().Add(b.limit)) }

func (b *stallBound) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		b.renew()
		k, err := b.ResponseWriter.Write(p[:min(len(p), stallChunk)])
		n += k
		if err != nil {
			return n, err
		}
		p = p[k:]
	}
	return n, nil
}

// ReadFrom sends a part of a file (as http.ServeContent sends a blob) a
// chunk at a time, each still by sendfile; anything else (a registry
// storage's answer) is written as it is read, each write renewing the
// deadline, so that a slow source does not count against the client.
func (b *stallBound) ReadFrom(src io.Reader) (int64, error) {
	lr, ok := src.(*io.LimitedReader)
	if ok {
		_, ok = lr.R.(*os.File)
	}
	if !ok {
		return io.Copy(struct{ io.Writer }{b}, src)
	}
	var total int64
	for lr.N > 0 {
		b.renew()
		chunk := &io.LimitedReader{R: lr.R, N: min(lr.N, stallChunk)}
		n, err := io.Copy(b.ResponseWriter, chunk)
		total += n
		lr.N -= n
		if err != nil || n == 0 {
			return total, err
		}
	}
	return total, nil
}

// Unwrap gives http.ResponseController the connection's writer.
func (b *stallBound) Unwrap() http.ResponseWriter { return b.ResponseWriter }

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
