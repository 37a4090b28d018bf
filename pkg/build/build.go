// Package build runs one image build from package names to a destination:
// Nix realises the packages for every platform from one locked nixpkgs,
// the layer plan groups each closure, the packer writes each layer to a
// blob file, and the destination is handed each blob as soon as it is
// packed (a registry starts uploading it while the next one is packed).
// Once every platform is done, the index goes out, names last.
//
// Data flows one way: spec → nix → layers → archive → image → publish. This
// package only sequences those packages; it reads no flags and no
// environment (the caller passes SOURCE_DATE_EPOCH, credentials and the
// GitHub context in the Request and Options).
package build

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/nixery-action/nixery-action/pkg/account"
	"github.com/nixery-action/nixery-action/pkg/archive"
	"github.com/nixery-action/nixery-action/pkg/cache"
	"github.com/nixery-action/nixery-action/pkg/flakeref"
	"github.com/nixery-action/nixery-action/pkg/image"
	"github.com/nixery-action/nixery-action/pkg/layers"
	"github.com/nixery-action/nixery-action/pkg/nix"
	"github.com/nixery-action/nixery-action/pkg/outfile"
	"github.com/nixery-action/nixery-action/pkg/publish"
	"github.com/nixery-action/nixery-action/pkg/registry"
	"github.com/nixery-action/nixery-action/pkg/spec"
	"github.com/nixery-action/nixery-action/pkg/storepath"
)

// Annotations of the index: the locked nixpkgs flake reference the image
// was built from, and its revision when it has one; for the other flakes
// whose packages went in (installables), AnnotationFlake with the
// installable after it (org.nixery-action.flake..#app), and ".revision"
// after that for the revision.
const (
	AnnotationNixpkgs         = "org.nixery-action.nixpkgs"
	AnnotationNixpkgsRevision = "org.nixery-action.nixpkgs.revision"
	AnnotationFlake           = "org.nixery-action.flake."
)

// Request is what to build and where it goes.
type Request struct {
	// Nixpkgs is the nixpkgs flake reference; it is locked once, so every
	// platform builds from the same revision.
	Nixpkgs string
	// NixpkgsLocked, when set, is Nixpkgs locked already (a server keys
	// images by it); the build takes it instead of locking again.
	NixpkgsLocked *nix.Locked
	Spec          *spec.Spec
	Platforms     []spec.Platform

	Layers layers.Options
	Pack   archive.Options
	Image  image.Options
	// Annotations go on the index; the build adds AnnotationNixpkgs.
	Annotations map[string]string

	// CacheFrom are images whose layers may be reused instead of packed,
	// besides the Record's cache sources (the tags pushed to, and the
	// cache record), which come first. A cached layer is reused only when
	// its content is proven: its diffID, computed here from the store
	// paths, equals the cached one. NoCache reads no cache at all.
	CacheFrom []name.Reference
	NoCache   bool
	// LocalCache are layers whose blobs are at hand already (e.g. in the
	// OCI layout written to: cache.ReadLayout), used like the registry
	// cache, their diffIDs checked the same way, before it.
	LocalCache cache.Cache

	// Destination receives the layers and the index; nil means
	// publish.Discard (build and check only).
	Destination publish.Destination
	// Record, when set, is the cache record of the repository pushed to
	// (publish.Registry is one): read while Nix works, written after the
	// tags, so that builds under other tags find the layers.
	Record publish.CacheRecorder

	// SBOM, when set, makes an SBOM and a provenance statement per
	// platform image and attaches them to it (see SBOMOptions).
	SBOM *SBOMOptions

	// User, when set, is the non-root user the image runs as: it gets
	// /etc/passwd and /etc/group entries, a home directory it owns and
	// HOME, and the config's User is its uid:gid.
	User *account.User
}

// defaults fills in what a request leaves to the library: bash as the
// command of a shell image (unless one installable is the entrypoint, or
// a command was given), the index's created and title annotations, and
// the cache sources. The creation time never reaches the layers: their
// entries are dated archive.DefaultModTime, so they stay the same.
func (r *Request) defaults() {
	if r.Image.Cmd == nil && r.Image.Entrypoint == nil && r.Spec.Shell && len(r.Spec.Installables) != 1 {
		r.Image.Cmd = []string{"bash"}
	}
	annots := map[string]string{
		image.AnnotationCreated: image.FormatCreated(r.Image.Created),
		image.AnnotationTitle:   r.Spec.Name(),
	}
	for k, v := range r.Annotations {
		annots[k] = v
	}
	r.Annotations = annots
	switch {
	case r.NoCache:
		r.CacheFrom, r.LocalCache = nil, nil
	case r.Record != nil:
		r.CacheFrom = append(r.Record.CacheSources(), r.CacheFrom...)
	}
}

// Pusher is a destination that keeps a cache record: a publish.Registry,
// or publish.Registries.
type Pusher interface {
	publish.Destination
	publish.CacheRecorder
}

// PushTo makes p the request's destination and cache record.
func (r *Request) PushTo(p Pusher) { r.Destination, r.Record = p, p }

// Validate checks the request before any work; each error is one line
// naming the problem.
func (r *Request) Validate() error {
	switch {
	case r.Spec == nil || len(r.Spec.Packages)+len(r.Spec.Installables) == 0:
		return errors.New("no packages to build")
	case len(r.Platforms) == 0:
		return errors.New("no platforms to build for")
	case strings.TrimSpace(r.Nixpkgs) == "":
		return errors.New("no nixpkgs flake reference to take packages from (e.g. github:NixOS/nixpkgs/nixos-26.05)")
	}
	if err := r.Layers.Validate(); err != nil {
		return err
	}
	if err := r.Image.Validate(); err != nil {
		return err
	}
	if err := image.CheckKeyValues("annotation", r.Annotations); err != nil {
		return err
	}
	return r.Pack.Validate()
}

// Realiser is what a build needs of Nix; *nix.Builder is the real one.
// Locks are taken once, before the platforms fan out; then each platform
// realises the request's nixpkgs attributes (and installables) and reads
// their closure.
type Realiser interface {
	Lock(ctx context.Context) (nix.Locked, error)
	LockFlake(ctx context.Context, ref string) (nix.Locked, error)
	BuildLogged(ctx context.Context, system string, attrs []string, log io.Writer) (*nix.Result, error)
}

// Options tune how a build runs, not what it makes.
type Options struct {
	// Realiser replaces Nix (tests); nil means a nix.Builder for the
	// request, with the Nix settings below.
	Realiser Realiser
	// Log gives the writer for a platform's progress (the platform named
	// as linux/amd64; "" for progress of no platform) and a function to
	// call when that platform is done. Every platform's writer is asked
	// for in platform order before any platform's work starts. The
	// writers of different platforms, and of none, are written at once.
	// Nil discards progress.
	Log func(platform string) (io.Writer, func())
	// Progress, when set, is told how each layer goes. It is called from
	// several goroutines at once.
	Progress func(Event)
	// NixTimeout limits Nix's work per platform; zero means no limit.
	NixTimeout time.Duration
	// PrintBuildLogs passes Nix's build logs through to Log.
	PrintBuildLogs bool
	// Caseless finds nixpkgs attributes regardless of case (see
	// nix.Builder's Caseless): for names from registry clients.
	Caseless bool
	// Nix is the nix program ("" means nix from PATH); NixEnv its
	// environment (nil means this process's).
	Nix    string
	NixEnv []string
	// Registry tunes reading CacheFrom (credentials, transport).
	Registry publish.Options
	// TempDir holds the blob files; "" means os.TempDir().
	TempDir string
	// TempDirFull is what to do when TempDir's disk fills; "" is the
	// CLI's advice (name another directory).
	TempDirFull string
}

// tempDir is the directory the blob files go in, named for people (as
// TMPDIR, or as the option that set it), and what to do when it fills.
func (o Options) tempDir() (dir, name, advice string) {
	if o.TempDir != "" {
		advice = o.TempDirFull
		if advice == "" {
			advice = "name another directory for layer blobs"
		}
		return o.TempDir, "the directory for layer blobs (" + o.TempDir + ")", advice
	}
	return os.TempDir(), "TMPDIR (" + os.TempDir() + ")", "point TMPDIR elsewhere"
}

// tempDirError explains a directory for the blob files that could not
// be made: TMPDIR missing, read-only, full.
func (o Options) tempDirError(err error) error {
	dir, name, advice := o.tempDir()
	if errors.Is(err, syscall.ENOSPC) {
		return outfile.NoSpace(err, dir, advice)
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err // the path is named already
	}
	if o.TempDir != "" {
		return fmt.Errorf("%s is not a writable directory (%w): name one", name, err)
	}
	return fmt.Errorf("%s is not a writable directory (%w): set TMPDIR to one", name, err)
}

// SchemaVersion is the version of Result's JSON form (docs/json.md); it
// changes when a field changes meaning or goes away, not when one is added.
const SchemaVersion = 1

// Result is what a build made and where it went. Its JSON form is the
// CLI's --json output, described in docs/json.md.
type Result struct {
	SchemaVersion int `json:"schemaVersion"`
	*publish.Result
	// Nixpkgs is the locked flake reference every platform built from,
	// NixpkgsRevision its revision when it has one (a git or github
	// flake).
	Nixpkgs         string `json:"nixpkgs,omitempty"`
	NixpkgsRevision string `json:"nixpkgsRevision,omitempty"`
	// Installables are the packages of other flakes that went in, with
	// the flakes they were locked to.
	Installables []InstallableResult `json:"installables,omitempty"`
	// Created is the images' creation time (RFC 3339), as their configs
	// and the index's annotation say it.
	Created string `json:"created,omitempty"`
	// Contents say what makes each platform's image big, in the index's
	// platform order.
	Contents []ContentsResult `json:"contents,omitempty"`
	Timings  Timings          `json:"timings"`
	Packed   int              `json:"packed"` // layers packed by this build
	Reused   int              `json:"reused"` // layers taken from the cache instead
	// SBOMs are the documents about each platform image, in the index's
	// order; none unless the request asked for them.
	SBOMs []SBOMResult `json:"sboms,omitempty"`
	// CacheWarnings say why images of CacheFrom gave no layers (each a
	// *cache.Warning); the build logged them and went on.
	CacheWarnings []error `json:"-"`

	dir string
}

// ContentsResult is the size of one platform image's store paths.
type ContentsResult struct {
	Platform string `json:"platform"`
	// Bytes is the store paths' size unpacked (their NAR sizes).
	Bytes uint64 `json:"bytes"`
	// Largest are the biggest packages (a package's paths together),
	// largest first, at most LargestPackages.
	Largest []PackageSize `json:"largest"`
}

// PackageSize is the unpacked size of a package's store paths.
type PackageSize struct {
	Package string `json:"package"`
	Bytes   uint64 `json:"bytes"`
}

// LargestPackages is how many packages ContentsResult lists.
const LargestPackages = 5

// contentsOf sums a closure's paths by package name.
func contentsOf(platform string, g *layers.Graph) ContentsResult {
	c := ContentsResult{Platform: platform, Largest: []PackageSize{}}
	byName := map[string]uint64{}
	for _, p := range g.Paths {
		c.Bytes += p.NarSize
		byName[storepath.Name(p.Name)] += p.NarSize
	}
	for name, n := range byName {
		c.Largest = append(c.Largest, PackageSize{Package: name, Bytes: n})
	}
	sort.Slice(c.Largest, func(i, j int) bool {
		a, b := c.Largest[i], c.Largest[j]
		return a.Bytes > b.Bytes || (a.Bytes == b.Bytes && a.Package < b.Package)
	})
	if len(c.Largest) > LargestPackages {
		c.Largest = c.Largest[:LargestPackages]
	}
	return c
}

// InstallableResult is one package of another flake than nixpkgs.
type InstallableResult struct {
	Installable string `json:"installable"` // as given, e.g. .#app
	Flake       string `json:"flake"`       // the locked flake reference
	Revision    string `json:"revision,omitempty"`
	// MainProgram is what nix run would start from it; Entrypoint tells
	// that the image starts it (the only installable, with no --entrypoint
	// or --cmd given).
	MainProgram string `json:"mainProgram,omitempty"`
	Entrypoint  bool   `json:"entrypoint"`

	// shown and recorded are what the index's annotation says: the
	// installable and its flake with no directory of this machine and no
	// branch (flakeref.WithoutDirectory, flakeref.Recorded), so that the
	// same commit gives the same index wherever it is checked out.
	shown, recorded string
}

// Close removes the build's blob files.
func (r *Result) Close() error {
	if r == nil || r.dir == "" {
		return nil
	}
	return os.RemoveAll(r.dir)
}

// Build runs the request. On error nothing is left behind: the blob files
// are removed and, since the index goes out last, no tag names a partly
// written image.
func Build(ctx context.Context, req Request, o Options) (*Result, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	req.defaults()
	if req.Destination == nil {
		req.Destination = publish.Discard{}
	}
	dir, err := os.MkdirTemp(o.TempDir, "nixery-build-")
	if err != nil {
		return nil, o.tempDirError(err)
	}
	b := &builder{req: req, opts: o, dir: dir, timings: newTimings(), cache: cache.Cache{}}
	if l, ok := req.Destination.(*publish.Layout); ok {
		b.syncBlobs = l.KeepsBlobs()
	}
	for k, v := range req.LocalCache {
		b.cache[k] = v
	}
	if len(req.CacheFrom) == 0 {
		b.shared = sharedDigests(b.cache) // else readCache, with the registry's entries too
	}
	res, err := b.run(ctx)
	req.Destination.Close()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return res, nil
}

// notFoundGrace is how long the other platforms may go on after one found
// packages missing, so that every platform's missing packages are told.
const notFoundGrace = 10 * time.Second

// builder is the state of one build.
type builder struct {
	req     Request
	opts    Options
	dir     string
	timings *timings
	// syncBlobs syncs each layer file once written: the destination
	// keeps it (an OCI layout).
	syncBlobs bool

	blobs     blobs             // each layer packed once, even when platforms share it
	cache     cache.Cache       // layers earlier pushes left in registries
	cacheDone chan struct{}     // closed once cache is read; nil without one
	cacheWarn []error           // why cache images gave no layers, once cacheDone is closed
	shared    map[v1.Hash]bool  // blob digests more than one cache entry gives (sharedDigests)
	record    chan cache.Record // the cache record as read at the start

	sbomMu sync.Mutex
	sboms  map[v1.Hash]*SBOMResult // by platform manifest digest

	installables []InstallableResult // locked before the platforms start

	contentsMu sync.Mutex
	contents   map[string]ContentsResult // by platform name

	popularityOnce   sync.Once // the popularity data's digest, for provenance
	popularityDigest string
	popularityErr    error
}

// contentsInOrder are the platforms' contents in the result's order.
func (b *builder) contentsInOrder(res *publish.Result) []ContentsResult {
	b.contentsMu.Lock()
	defer b.contentsMu.Unlock()
	var out []ContentsResult
	for _, m := range res.Manifests {
		if c, ok := b.contents[m.Platform]; ok {
			out = append(out, c)
		}
	}
	return out
}

// lockFlakes locks the flake of every installable, each once, before
// the platforms fan out: one lock per flake for the whole build.
func (b *builder) lockFlakes(ctx context.Context, nb Realiser) error {
	for _, inst := range b.req.Spec.Installables {
		l, err := nb.LockFlake(ctx, inst.Flake)
		if err != nil {
			return err
		}
		b.installables = append(b.installables, InstallableResult{
			Installable: flakeref.Redacted(inst.Ref), Flake: flakeref.Redacted(l.URL), Revision: l.Rev, Entrypoint: b.appEntrypoint(),
			shown: flakeref.WithoutDirectory(inst.Ref), recorded: flakeref.Recorded(inst.Flake, l.URL, l.Rev, l.NarHash),
		})
	}
	return nil
}

// appEntrypoint tells whether the image starts its one installable's
// main program: it is the only one, and no command was given.
func (b *builder) appEntrypoint() bool {
	return len(b.req.Spec.Installables) == 1 && b.req.Image.Entrypoint == nil && b.req.Image.Cmd == nil
}

// platformName names a Nix system as the image platform it builds
// (x86_64-linux: linux/amd64), so that logs name platforms one way.
func platformName(system string) string {
	p, err := spec.ParsePlatform(system)
	if err != nil {
		return system
	}
	return p.String()
}

func (b *builder) log(platform string) (io.Writer, func()) {
	if b.opts.Log == nil {
		return io.Discard, func() {}
	}
	return b.opts.Log(platform)
}

func (b *builder) run(ctx context.Context) (*Result, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The destination is checked while Nix works: a registry that is
	// down, or refuses the credentials, stops the build within seconds.
	checked := make(chan error, 1)
	go func() {
		err := b.req.Destination.Check(ctx)
		if err != nil && ctx.Err() == nil {
			cancel()
			checked <- err
			return
		}
		checked <- nil // or the build failed first, and cancelled it
	}()
	if len(b.req.CacheFrom) > 0 {
		b.cacheDone = make(chan struct{})
		go b.readCache(ctx)
	}
	if rec := b.req.Record; rec != nil {
		// Read while Nix works, so that a rebuild that changes nothing
		// in the record need not read it again at the end.
		b.record = make(chan cache.Record, 1)
		go func() { b.record <- rec.ReadCacheRecord(ctx) }()
	}
	res, err := b.work(ctx)
	if err != nil {
		cancel()
	}
	if cerr := <-checked; cerr != nil {
		return nil, cerr
	}
	return res, err
}

// work runs Nix, packs every platform and writes the index.
func (b *builder) work(ctx context.Context) (*Result, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	nixLog, end := b.log("")
	var nb Realiser = b.opts.Realiser
	if nb == nil {
		nb = &nix.Builder{
			Flake: b.req.Nixpkgs, Locked: b.req.NixpkgsLocked, Installables: b.req.Spec.Installables, Timeout: b.opts.NixTimeout, Log: nixLog,
			PrintBuildLogs: b.opts.PrintBuildLogs, Nix: b.opts.Nix, Env: b.opts.NixEnv, Label: platformName, Caseless: b.opts.Caseless,
		}
	}
	// One lock for every platform, and the first contact with Nix made
	// once before the platforms fan out.
	done := b.timings.start(phaseLock, "")
	locked, err := nb.Lock(ctx)
	if err == nil {
		err = b.lockFlakes(ctx, nb)
	}
	done()
	end()
	if err != nil {
		return nil, err
	}

	images := make([]*image.Image, len(b.req.Platforms))
	errs := make([]error, len(b.req.Platforms))
	var wg sync.WaitGroup
	// Every platform's log is opened here, in platform order, so that a
	// Log that groups them knows the order before any platform is done.
	logs := make([]io.Writer, len(b.req.Platforms))
	ends := make([]func(), len(b.req.Platforms))
	for i, plat := range b.req.Platforms {
		logs[i], ends[i] = b.log(plat.String())
	}
	for i, plat := range b.req.Platforms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			log := logs[i]
			defer ends[i]()
			images[i], errs[i] = b.platform(ctx, nb, plat, log)
			var nf *nix.NotFoundError
			switch {
			case errors.As(errs[i], &nf):
				// The other platforms' evaluations are about as far:
				// give them a moment to report their missing packages.
				time.AfterFunc(notFoundGrace, cancel)
			case errs[i] != nil:
				cancel() // no point finishing the other platforms
			}
		}()
	}
	wg.Wait()
	if err := firstError(errs); err != nil {
		return nil, err
	}

	idx, err := image.NewIndex(images, indexAnnotations(b.req.Annotations, b.req.Nixpkgs, locked, b.installables))
	if err != nil {
		return nil, fmt.Errorf("assemble the image index: %w", err)
	}

	w, end := b.log("")
	fmt.Fprintf(w, "writing to %s\n", b.req.Destination)
	end()
	if l, ok := b.req.Destination.(*publish.Layout); ok && l.Note == nil {
		l.Note = func(s string) { b.note("%s", s) } // a layout another process holds
	}
	refs, err := b.attachments(idx)
	if err != nil {
		return nil, err
	}
	done = b.timings.start(phaseUpload, "")
	res, err := b.req.Destination.Write(ctx, idx, refs)
	done()
	if err != nil {
		return nil, b.attachError(err)
	}
	// After the tags, only the cache record: a hint, whose failure is
	// a note.
	if rec := b.req.Record; rec != nil && res.Pushed {
		b.recordCache(ctx, rec, idx)
	}
	sboms, err := b.sbomResults(idx, res)
	if err != nil {
		return nil, err
	}
	t := b.timings.result()
	if !res.Pushed {
		t.Upload = 0 // nothing went anywhere
	}
	b.markCustomisation(res)
	if err := b.waitCache(ctx); err != nil { // read by now: every layer waited for it
		return nil, err
	}
	packed, reused := b.blobs.counts()
	return &Result{
		SchemaVersion: SchemaVersion,
		Result:        res, Nixpkgs: flakeref.Redacted(locked.URL), NixpkgsRevision: locked.Rev, Installables: b.installables, Timings: t,
		Created: image.FormatCreated(b.req.Image.Created), Contents: b.contentsInOrder(res),
		Packed: packed, Reused: reused, SBOMs: sboms, CacheWarnings: b.cacheWarn, dir: b.dir,
	}, nil
}

// markCustomisation marks each image's customisation layer in the
// result: the last, as platform puts it (its key is annotated like any
// layer's).
func (b *builder) markCustomisation(res *publish.Result) {
	for i := range res.Manifests {
		if ls := res.Manifests[i].Layers; len(ls) > 0 {
			ls[len(ls)-1].Customisation = true
		}
	}
}

// readCache reads the registry cache while Nix works; packing waits for it.
func (b *builder) readCache(ctx context.Context) {
	defer close(b.cacheDone)
	done := b.timings.start(phaseCache, "")
	remote, reads := cache.Read(ctx, b.req.CacheFrom, b.opts.Registry.Options)
	done()
	for k, v := range remote {
		if _, ok := b.cache[k]; !ok { // a blob at hand beats a download
			b.cache[k] = v
		}
	}
	b.shared = sharedDigests(b.cache)
	w, end := b.log("")
	for _, r := range reads {
		fmt.Fprintln(w, r)
		if r.Err != nil {
			b.cacheWarn = append(b.cacheWarn, r.Err)
		}
	}
	end()
}

// recordCache adds the image's layers to the repository's cache record,
// so that a build under another tag finds them. The record is a hint:
// failing to write it (a read-only token, a registry that limits tags)
// is only a note.
func (b *builder) recordCache(ctx context.Context, rec publish.CacheRecorder, idx v1.ImageIndex) {
	var seen cache.Record
	select {
	case seen = <-b.record:
	case <-ctx.Done():
	}
	n, err := rec.RecordCache(ctx, idx, seen)
	w, end := b.log("")
	defer end()
	if err != nil {
		fmt.Fprintf(w, "cache record %s: not updated (%s); builds under other tags may pack these layers again\n", cache.RecordTag, registry.OneLine(err))
		return
	}
	if n > 0 {
		fmt.Fprintf(w, "cache record %s: %d layers\n", cache.RecordTag, n)
	}
}

// firstError prefers a real error to the cancellations it caused; when
// several platforms miss packages, all of them are reported on one line.
func firstError(errs []error) error {
	var notFound []*nix.NotFoundError
	var first error
	for _, err := range errs {
		if err == nil || errors.Is(err, context.Canceled) {
			continue
		}
		if first == nil {
			first = err
		}
		var nf *nix.NotFoundError
		if errors.As(err, &nf) {
			notFound = append(notFound, nf)
		}
	}
	if len(notFound) > 1 {
		return nix.JoinNotFound(notFound)
	}
	if first != nil {
		return first
	}
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// indexAnnotations are the index's annotations: those asked for, and
// what the image was built from (nixpkgs as given and as locked),
// credentials hidden, and a local flake's directory and branch left out
// (flakeref.Recorded).
func indexAnnotations(asked map[string]string, nixpkgs string, locked nix.Locked, installables []InstallableResult) map[string]string {
	annots := map[string]string{}
	for k, v := range asked {
		annots[k] = v
	}
	annots[AnnotationNixpkgs] = flakeref.Recorded(nixpkgs, locked.URL, locked.Rev, locked.NarHash)
	if locked.Rev != "" {
		annots[AnnotationNixpkgsRevision] = locked.Rev
	}
	for _, r := range installables {
		annots[AnnotationFlake+r.shown] = r.recorded
		if r.Revision != "" {
			annots[AnnotationFlake+r.shown+".revision"] = r.Revision
		}
	}
	return annots
}
