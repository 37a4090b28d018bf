// Package serve is a registry that builds images on pull, as Nixery does:
// the repository path names the packages (shell/git/htop), and the
// manifest is built on the first request, kept in an OCI layout on disk,
// and served from there afterwards. It serves the pull side of the OCI
// distribution API (manifests and blobs, GET and HEAD, range reads) and
// refuses pushes.
package serve

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sync/semaphore"
	"golang.org/x/sync/singleflight"

	"github.com/nixery-action/nixery-action/pkg/build"
	"github.com/nixery-action/nixery-action/pkg/cache"
	"github.com/nixery-action/nixery-action/pkg/flakeref"
	"github.com/nixery-action/nixery-action/pkg/nix"
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
	// recorded is when the store last dated each index's pull (at most
	// once a minute: see useLocked).
	recorded map[v1.Hash]time.Time
	clock    int64
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
	pruneAgain  *time.Timer   // the pruner's next round past a grace; its goroutine's alone

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
	s := &Server{o: o, slots: semaphore.NewWeighted(int64(o.Builds)), used: map[string]int64{}, recorded: map[v1.Hash]time.Time{}, servedAt: map[string]time.Time{}, grace: servedGrace, stall: stallLimit, failed: map[string]failure{}, locks: map[string]lockEntry{}, relocking: map[string]time.Time{}, relockWait: relockWait, secrets: secrets, metrics: newMetrics(),
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
		s.store = layoutStore{dir: dir, layers: new(cache.LayoutReader), log: o.Log}
	}
	if s.built, err = s.store.load(); err != nil {
		return nil, err
	}
	if s.bounded() {
		s.recallPulls()
	}
	s.life, s.end = context.WithCancel(context.Background())
	if s.bounded() {
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
