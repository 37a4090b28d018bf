package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/nixery-action/nixery-action/pkg/archive"
	"github.com/nixery-action/nixery-action/pkg/image"
	"github.com/nixery-action/nixery-action/pkg/layers"
	"github.com/nixery-action/nixery-action/pkg/nix"
	"github.com/nixery-action/nixery-action/pkg/popularity"
	"github.com/nixery-action/nixery-action/pkg/push"
	"github.com/nixery-action/nixery-action/pkg/spec"
)

// pipeline turns a checked build job into an image index: per platform,
// Nix realises the closure, the layer plan groups it and the packer writes
// each layer to a blob file. Platforms run concurrently.
type pipeline struct {
	job     *buildJob
	nixpkgs string
	timeout time.Duration
	logs    logSink
	timings *timings

	dir       string        // blob files
	blobs     blobCache     // layers packed once, even when platforms share them
	cache     push.Cache    // layers earlier pushes left in the registry
	cacheDone chan struct{} // closed once cache is read; nil without one

	packed, reused atomic.Int64
}

// buildIndex returns the index and a cleanup that removes its blob files;
// cleanup must be called after the index has been written.
func (p *pipeline) buildIndex(ctx context.Context) (*image.Index, func(), error) {
	dir, err := os.MkdirTemp("", "nixery-build-")
	if err != nil {
		return nil, func() {}, fmt.Errorf("create a directory for layer blobs: %w", err)
	}
	p.dir = dir
	cleanup := func() { os.RemoveAll(dir) }

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// One Builder for every platform, locked before they fan out: all
	// build the same revision, and the lock is the only Nix command
	// running, which a never-used store needs (concurrent first commands
	// corrupt its database).
	w, end := p.logs("")
	builder := &nix.Builder{Flake: p.nixpkgs, Timeout: p.timeout, Log: w}
	_, err = builder.Lock(ctx)
	end()
	if err != nil {
		return nil, cleanup, err
	}
	images := make([]*image.Image, len(p.job.platforms))
	errs := make([]error, len(p.job.platforms))
	var wg sync.WaitGroup
	for i, plat := range p.job.platforms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			log, end := p.logs(plat.System)
			defer end()
			images[i], errs[i] = p.buildImage(ctx, builder, plat, log)
			if errs[i] != nil {
				cancel() // no point finishing the other platforms
			}
		}()
	}
	wg.Wait()
	if err := firstError(errs); err != nil {
		return nil, cleanup, err
	}
	idx, err := image.NewIndex(images, p.job.annots)
	if err != nil {
		return nil, cleanup, fmt.Errorf("assemble the image index: %w", err)
	}
	return idx, cleanup, nil
}

// firstError prefers a real error to the cancellations it caused; when
// several platforms fail on their own (missing packages), all are
// reported on one line.
func firstError(errs []error) error {
	var msgs []string
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
			msgs = append(msgs, err.Error())
		}
	}
	if len(msgs) > 1 {
		return fmt.Errorf("%s", strings.Join(msgs, "; "))
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

func (p *pipeline) buildImage(ctx context.Context, builder *nix.Builder, plat spec.Platform, log io.Writer) (*image.Image, error) {
	sys := plat.System
	fmt.Fprintf(log, "[%s] building %s\n", sys, strings.Join(p.job.spec.Packages, " "))
	done := p.timings.start("nix " + sys)
	res, err := builder.BuildLogged(ctx, sys, p.job.spec.Packages, log)
	done()
	if err != nil {
		return nil, err
	}

	done = p.timings.start("layering " + sys)
	g, err := layers.ParseGraph(res.Closure)
	if err != nil {
		return nil, fmt.Errorf("read the closure for %s: %w", sys, err)
	}
	if err := g.SetRoots(res.Roots()); err != nil {
		return nil, fmt.Errorf("closure for %s: %w", sys, err)
	}
	plan, err := layers.Build(g, p.job.layerOpts)
	done()
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(log, "[%s] %s in %s\n", sys, plural(len(g.Paths), "store path", "store paths"), plural(len(plan.Layers), "layer", "layers"))

	done = p.timings.start("packing " + sys)
	defer done()
	var imgLayers []image.Layer
	for _, l := range plan.Layers {
		paths := l.Paths
		blob, err := p.layer(l.Key, func(w io.Writer) (archive.Blob, error) {
			return archive.PackPaths(w, paths, p.job.packOpts)
		})
		if err != nil {
			return nil, fmt.Errorf("pack a layer of %s: %w", sys, err)
		}
		blob.Key = l.Key
		blob.Packages = packageNames(l.Paths)
		imgLayers = append(imgLayers, blob)
	}
	custom, err := p.customisation(res)
	if err != nil {
		return nil, fmt.Errorf("pack the customisation layer of %s: %w", sys, err)
	}
	imgLayers = append(imgLayers, custom)

	img, err := image.NewImage(v1.Platform{OS: plat.OS, Architecture: plat.Architecture, Variant: plat.Variant}, imgLayers, p.job.imageOpts)
	if err != nil {
		return nil, fmt.Errorf("assemble the image for %s: %w", sys, err)
	}
	return img, nil
}

// customisation packs the layer that makes the packages usable from the
// image's root: symlinks into bin/, lib/, ... and /tmp.
func (p *pipeline) customisation(res *nix.Result) (image.Layer, error) {
	c := archive.Customisation{}
	for _, pkg := range res.Packages {
		c.Packages = append(c.Packages, pkg.Paths()...)
		if pkg.Attr == "cacert" {
			if paths := pkg.Paths(); len(paths) > 0 {
				c.CACert = paths[0]
			}
		}
	}
	// Its content follows from the packages' store paths alone.
	key := layers.KeyOf(append([]string{"customisation", "cacert=" + c.CACert}, c.Packages...))
	return p.layer(key, func(w io.Writer) (archive.Blob, error) {
		return archive.PackCustomisation(w, c, p.job.packOpts)
	})
}

// layer returns the blob for content named key: from the registry when an
// earlier push left it there, else packed by write, once per run.
func (p *pipeline) layer(key string, write func(io.Writer) (archive.Blob, error)) (image.Layer, error) {
	cacheKey, err := archive.CacheKey(key, p.job.packOpts)
	if err != nil {
		return image.Layer{}, err
	}
	if p.cacheDone != nil {
		<-p.cacheDone
	}
	l, err := p.blobs.get(cacheKey, func() (image.Layer, error) {
		if cached, ok := p.cache[cacheKey]; ok {
			p.reused.Add(1)
			return cached, nil
		}
		p.packed.Add(1)
		return p.pack(write)
	})
	l.CacheKey = cacheKey
	return l, err
}

// pack writes one blob file and describes it as an image layer.
func (p *pipeline) pack(write func(io.Writer) (archive.Blob, error)) (image.Layer, error) {
	f, err := os.CreateTemp(p.dir, "layer-")
	if err != nil {
		return image.Layer{}, err
	}
	defer f.Close()
	blob, err := write(f)
	if err != nil {
		return image.Layer{}, err
	}
	if err := f.Close(); err != nil {
		return image.Layer{}, err
	}
	digest, err := v1.NewHash(blob.Digest)
	if err != nil {
		return image.Layer{}, err
	}
	diffID, err := v1.NewHash(blob.DiffID)
	if err != nil {
		return image.Layer{}, err
	}
	return image.Layer{Digest: digest, DiffID: diffID, Size: blob.Size, Path: filepath.Clean(f.Name())}, nil
}

// packageNames are the sorted, distinct package names of store paths.
func packageNames(paths []string) []string {
	seen := map[string]bool{}
	var names []string
	for _, p := range paths {
		n := popularity.Name(p)
		if !seen[n] {
			seen[n] = true
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

// blobCache packs each layer once per run: platforms often share layers
// (architecture-independent data), and concurrent requests for the same
// key wait for the first.
type blobCache struct {
	mu      sync.Mutex
	entries map[string]*blobEntry
}

type blobEntry struct {
	done  chan struct{}
	layer image.Layer
	err   error
}

func (c *blobCache) get(key string, pack func() (image.Layer, error)) (image.Layer, error) {
	c.mu.Lock()
	if c.entries == nil {
		c.entries = map[string]*blobEntry{}
	}
	e, ok := c.entries[key]
	if !ok {
		e = &blobEntry{done: make(chan struct{})}
		c.entries[key] = e
	}
	c.mu.Unlock()
	if ok {
		<-e.done
		return e.layer, e.err
	}
	e.layer, e.err = pack()
	close(e.done)
	return e.layer, e.err
}

// timings adds up how long each phase took.
type timings struct {
	mu sync.Mutex
	d  map[string]time.Duration
}

func newTimings() *timings { return &timings{d: map[string]time.Duration{}} }

// start begins timing a phase; the returned function ends it.
func (t *timings) start(phase string) func() {
	begin := time.Now()
	return func() {
		t.mu.Lock()
		t.d[phase] += time.Since(begin)
		t.mu.Unlock()
	}
}

func (t *timings) seconds() map[string]float64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := map[string]float64{}
	for k, v := range t.d {
		out[k] = v.Seconds()
	}
	return out
}

func (t *timings) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var keys []string
	for k := range t.d {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %.2fs", k, t.d[k].Seconds()))
	}
	return strings.Join(parts, ", ")
}
