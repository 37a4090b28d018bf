package serve

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os/exec"
	"strings"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/nixery-action/nixery-action/pkg/build"
	"github.com/nixery-action/nixery-action/pkg/nix"
	"github.com/nixery-action/nixery-action/pkg/registry"
	"github.com/nixery-action/nixery-action/pkg/spec"
)

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

// infraError is a build or lock that failed for the server's own means,
// its storage or its Nix, not for what was asked: the client is told
// that the server failed (its log says why), never the storage's address
// or the server's credentials.
type infraError struct{ err error }

func (e *infraError) Error() string { return firstLine(e.err.Error()) }

func (e *infraError) Unwrap() error { return e.err }

// ours tells whether err is the server's own failure (see infraError):
// its storage registry refused or failed (a *registry.RegistryError), the
// system did, a file or Nix that could not be read, written or run
// (ENOSPC, EROFS, EACCES and such), or Nix could not use its store (its
// daemon down, its disk full).
func ours(err error) bool {
	var re *registry.RegistryError
	var errno syscall.Errno
	var pe *fs.PathError
	var ee *exec.Error
	var ce *nix.CommandError
	return errors.As(err, &re) || errors.As(err, &errno) || errors.As(err, &pe) || errors.As(err, &ee) ||
		(errors.As(err, &ce) && ce.StoreFailed())
}

// storageError is the store failing to answer.
type storageError struct{ err error }

func (e *storageError) Error() string { return "storage: " + e.err.Error() }

// gone tells whether err says the store does not hold what was asked
// for (nothing, or no manifest under that digest), rather than that it
// could not be read.
func gone(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || registry.IsNotFound(err) || errors.Is(err, registry.ErrNotManifest)
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

// imageVersion is in every image's key (see resolve).
const imageVersion = 3

// resolve locks img's nixpkgs and keys img by its revision, its packages
// and its platforms.
func (s *Server) resolve(ctx context.Context, img *request) error {
	l, err := s.lock(ctx, img.nixpkgs)
	if err != nil {
		return err
	}
	h := sha256.New()
	// Raised when images of the same inputs change (3: /etc/passwd in
	// every image), so that kept images are built again, once.
	fmt.Fprintf(h, "nixery-serve %d\nnixpkgs %s\npackages %s\n", imageVersion, revisionKey(l.URL), strings.Join(img.spec.AllPackages(), " "))
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
	var date v1.Hash
	if ok {
		date = s.useLocked(img.key)
	}
	f, failed := s.failed[img.key]
	s.mu.Unlock()
	s.date(date)
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
		// Only a registry storage finds another server's image, and
		// it is never pruned (its registry's garbage collection bounds
		// it): no gc lock to take.
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
		if err == nil {
			// Known as kept before a prune waiting for the lock runs:
			// it would drop an image it does not know of.
			s.keep(img.key, d)
		}
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
			// Remembered for failedFor, the server's own failures too
			// (they keep their 500): a storage or Nix that is down
			// must not have every pull build the image again.
			s.fail(img.key, err)
			return nil, err
		}
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
	s.built[key] = d
	date := s.useLocked(key)
	delete(s.failed, key)
	s.mu.Unlock()
	s.date(date)
}

// useLocked records that key's manifest is served now; s.mu is held. It
// returns the index to date in the store (see date), at most once a
// minute per image, or the zero hash.
func (s *Server) useLocked(key string) v1.Hash {
	s.clock++
	s.used[key] = s.clock
	s.servedAt[key] = time.Now()
	d, ok := s.built[key]
	if !ok || !s.bounded() || time.Since(s.recorded[d]) < time.Minute {
		return v1.Hash{}
	}
	s.recorded[d] = time.Now()
	return d
}

// date has the store date a pull of the index d (the zero hash: none),
// for the next start to know the order of pulls, which pruning goes by.
// Called without s.mu: it is a file's time.
func (s *Server) date(d v1.Hash) {
	if d != (v1.Hash{}) {
		s.store.pulled(d)
	}
}

// bounded tells whether the storage is pruned, the only use of the order
// of pulls.
func (s *Server) bounded() bool { return s.o.MaxImages > 0 || s.o.MaxBytes > 0 }

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
	delete(s.recorded, d)
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
	if idx, ok := s.served[d]; ok {
		d = idx
	}
	var dates []v1.Hash
	for k, kd := range s.built {
		if kd == d {
			dates = append(dates, s.useLocked(k))
		}
	}
	s.mu.Unlock()
	for _, date := range dates {
		s.date(date)
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
		if ours(err) {
			return v1.Hash{}, &infraError{err}
		}
		return v1.Hash{}, errors.New(firstLine(err.Error()))
	}
	res.Close()
	d, err := v1.NewHash(res.Digest)
	if err != nil {
		return v1.Hash{}, err
	}
	s.o.Log.Info("built", "image", name, "digest", d.String(), "packed", res.Packed, "reused", res.Reused, "seconds", time.Since(start).Seconds(), "timings", res.Timings)
	return d, nil
}

// storageFull is what a serve operator can do when a directory
// storage's disk is full (the layers are packed there too, in its
// scratch directory).
const storageFull = "bound the storage with a lower --max-storage or --max-images, or give --storage a directory on a larger disk"
