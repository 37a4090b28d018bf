package build

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sync/singleflight"

	"github.com/nixery-action/nixery-action/pkg/archive"
	"github.com/nixery-action/nixery-action/pkg/cache"
	"github.com/nixery-action/nixery-action/pkg/image"
	"github.com/nixery-action/nixery-action/pkg/outfile"
	"github.com/nixery-action/nixery-action/pkg/publish"
)

// layer returns the blob of c: a cached one when an earlier push left a
// blob whose content is proven to be c's, else a newly packed one; either
// way once per build, and offered to the destination as soon as it is
// ready.
func (b *builder) layer(ctx context.Context, c content, r *reporter) (image.Blob, error) {
	cacheKey, err := archive.CacheKey(c.key, b.req.Pack)
	if err != nil {
		return image.Blob{}, err
	}
	if err := b.waitCache(ctx); err != nil {
		return image.Blob{}, err
	}
	l, cached, err := b.blobs.get(cacheKey, func() (image.Blob, bool, error) {
		l, ok := b.fromCache(ctx, cacheKey, c)
		if err := ctx.Err(); err != nil {
			return image.Blob{}, false, err // interrupted, not a cache miss
		}
		if !ok {
			var err error
			if l, err = b.pack(ctx, c, r.packing()); err != nil {
				return image.Blob{}, false, err
			}
		}
		l.CacheKey = cacheKey
		b.req.Destination.Offer(ctx, l.Layer())
		return l, ok, nil
	})
	if err != nil {
		return image.Blob{}, err
	}
	l.CacheKey = cacheKey
	stage := Packed
	if cached {
		stage = Reused
	}
	r.finished(stage, l.Digest.String(), l.Size)
	return l, nil
}

// waitCache waits until the registry cache is read, if one is.
func (b *builder) waitCache(ctx context.Context) error {
	if b.cacheDone == nil {
		return nil
	}
	select {
	case <-b.cacheDone:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// mayBeCached tells whether the cache has a blob under c's key (whose
// content is still to be verified).
func (b *builder) mayBeCached(ctx context.Context, c content) (bool, error) {
	key, err := archive.CacheKey(c.key, b.req.Pack)
	if err != nil {
		return false, err
	}
	if err := b.waitCache(ctx); err != nil {
		return false, err
	}
	_, ok := b.cache[key]
	return ok, nil
}

// fromCache returns the cached blob for key when its content is c's: the
// diffID the registry gave must equal the one computed here from the
// store paths (a plain tar, no compression, so it is several times
// faster than packing). A blob that would have to be copied from another
// repository is copied now, into a file, and checked while it is read.
// Anything missing, different or unreadable means packing instead: the
// cache can make a build faster, never different, never fail it.
func (b *builder) fromCache(ctx context.Context, key string, c content) (image.Blob, bool) {
	cached, ok := b.cache[key]
	if !ok {
		return image.Blob{}, false
	}
	// The key names the compression; a descriptor that says another is
	// not this layer's blob.
	got, want := cached.MediaType, types.MediaType(b.req.Pack.Compression.MediaType())
	if got == "" {
		got = image.LayerMediaType
	}
	if got != want {
		b.note("cache: the layer %s in %s is %s, not %s; packing it", cached.Digest, cached.Where(), got, want)
		return image.Blob{}, false
	}
	// A blob holds one layer: entries naming it with different diffIDs
	// are all suspect, and which one is right would take downloading it.
	if b.shared[cached.Digest] {
		b.note("cache: the layer %s in %s is listed with different diffIDs under more than one cache key; packing it", cached.Digest, cached.Where())
		return image.Blob{}, false
	}
	done := b.timings.start(phaseVerify, "")
	defer done()
	o := b.req.Pack
	o.Uncompressed = true
	o.Context = ctx
	local, err := c.pack(io.Discard, o)
	if ctx.Err() != nil {
		return image.Blob{}, false // interrupted: the caller says so
	}
	if err != nil || local.Digest != cached.DiffID.String() {
		b.note("cache: the layer %s in %s does not hold what its key says (diffID %s, the store paths give %s); packing it", cached.Digest, cached.Where(), cached.DiffID, local.Digest)
		return image.Blob{}, false
	}
	// Compressed, a layer is no larger than its tar but for the format's
	// framing: more is a registry padding it, which would fill the disk
	// and the image.
	if cached.Size > local.Size+local.Size/100+64<<10 {
		b.note("cache: the layer %s in %s is %d bytes, more than its %d-byte tar compresses to; packing it", cached.Digest, cached.Where(), cached.Size, local.Size)
		return image.Blob{}, false
	}
	if b.req.Destination.Holds(cached.Repo, cached.Digest, cached.Size) {
		return cached.Blob, true // already where it goes
	}
	l, err := cache.Fetch(ctx, cached, b.dir, cache.FetchOptions{Backoff: b.opts.Registry.RetryBackoff(), Timeout: fetchTime})
	if err == nil && b.syncBlobs {
		err = outfile.Sync(l.Path)
		l.Synced = err == nil
	}
	if err != nil {
		if ctx.Err() == nil {
			b.note("cache: %v; packing it", err)
		}
		return image.Blob{}, false
	}
	return l, true
}

// sharedDigests are the blob digests that cache entries give different
// diffIDs for: a blob holds one layer, so all but one of them are wrong.
// (Keys that differ only in what gives the same bytes, a compression
// level on a small layer, may name one blob with one diffID: no conflict.)
func sharedDigests(c cache.Cache) map[v1.Hash]bool {
	diffIDs := map[v1.Hash]v1.Hash{}
	shared := map[v1.Hash]bool{}
	for _, b := range c {
		if d, ok := diffIDs[b.Digest]; ok && d != b.DiffID {
			shared[b.Digest] = true
		}
		diffIDs[b.Digest] = b.DiffID
	}
	return shared
}

// unshare packs again each layer of an image taken from the cache whose
// blob digest another of its layers has too: a cache entry naming the
// blob of another layer (a record rewritten, or gone wrong) would
// otherwise give the image one blob for two layers. The packed blob
// replaces the cached one under its key, so another platform sharing the
// layer gets it without packing it again. contents are the layers'
// contents, in the same order.
func (b *builder) unshare(ctx context.Context, layers []image.Blob, contents []content) error {
	count := map[v1.Hash]int{}
	for _, l := range layers {
		count[l.Digest]++
	}
	for i, l := range layers {
		if count[l.Digest] < 2 {
			continue
		}
		packed, err := b.blobs.repack(l.CacheKey, func() (image.Blob, error) {
			b.note("cache: the layer %s in the cache is also another layer's blob in this image; packing it", l.Digest)
			packed, err := b.pack(ctx, contents[i], nil)
			if err != nil {
				return image.Blob{}, err
			}
			packed.CacheKey = l.CacheKey
			b.req.Destination.Offer(ctx, packed.Layer())
			return packed, nil
		})
		if err != nil {
			return err
		}
		packed.Key, packed.Packages = l.Key, l.Packages
		layers[i] = packed
	}
	return nil
}

// streamAbove is the size from which a layer is uploaded while it is
// packed, when the destination can: a big layer would otherwise keep the
// link idle while it is packed. Smaller ones are uploaded once packed,
// after asking the registry whether it has them.
var streamAbove int64 = 16 << 20

// fetchTime is how long copying a cached blob may take (tests shorten it).
var fetchTime = cache.DefaultFetchTime

// pack writes c's blob file and describes it as an image layer. A big
// layer is streamed to a destination that can take it while it grows.
func (b *builder) pack(ctx context.Context, c content, progress func(int)) (l image.Blob, err error) {
	defer func() {
		if err != nil {
			// The blob file's disk, not the store path's, full: say which.
			dir, _, advice := b.opts.tempDir()
			err = outfile.NoSpace(err, dir, advice)
		}
	}()
	f, err := os.CreateTemp(b.dir, "layer-")
	if err != nil {
		return image.Blob{}, err
	}
	defer f.Close()
	var w io.Writer = f
	mediaType := types.MediaType(b.req.Pack.Compression.MediaType())
	if c.size >= streamAbove {
		g := publish.NewGrowing(f)
		g.Type = mediaType
		if b.req.Destination.Stream(ctx, g) {
			defer func() {
				if err != nil {
					g.Fail(err)
				} else {
					g.Finish(l.Digest, l.DiffID)
				}
			}()
			w = g
		}
	}
	o := b.req.Pack
	o.Progress = progress
	o.Context = ctx
	blob, err := c.pack(w, o)
	if err != nil {
		return image.Blob{}, err
	}
	if b.syncBlobs {
		// Here, while other layers still pack, rather than when the
		// layout is written (see syncBlobs).
		if err := f.Sync(); err != nil {
			return image.Blob{}, err
		}
	}
	if err := f.Close(); err != nil {
		return image.Blob{}, err
	}
	digest, err := v1.NewHash(blob.Digest)
	if err != nil {
		return image.Blob{}, err
	}
	diffID, err := v1.NewHash(blob.DiffID)
	if err != nil {
		return image.Blob{}, err
	}
	return image.Blob{Digest: digest, DiffID: diffID, Size: blob.Size, MediaType: mediaType, Path: filepath.Clean(f.Name()), Synced: b.syncBlobs}, nil
}

// note logs a line of no platform.
func (b *builder) note(format string, args ...any) {
	w, end := b.log("")
	fmt.Fprintf(w, format+"\n", args...)
	end()
}

// blobs makes each layer once per build: platforms often share layers
// (architecture-independent data). Concurrent requests for the same key
// wait for the first (singleflight); later ones get what it made.
type blobs struct {
	inflight singleflight.Group
	mu       sync.Mutex
	made     map[string]madeBlob
}

type madeBlob struct {
	layer  image.Blob
	err    error
	cached bool // taken from the cache, not packed in this build
}

// get returns key's blob, which produce makes (cached: taken from the
// cache) the first time, and whether it was taken from the cache.
func (c *blobs) get(key string, produce func() (l image.Blob, cached bool, err error)) (image.Blob, bool, error) {
	m := c.make(key, func(_ madeBlob, ok bool) bool { return !ok }, func() (m madeBlob) {
		m.layer, m.cached, m.err = produce()
		return m
	})
	return m.layer, m.cached, m.err
}

// repack replaces key's blob, when it was taken from the cache, by the
// one produce packs, once; a blob packed in this build stays.
func (c *blobs) repack(key string, produce func() (image.Blob, error)) (image.Blob, error) {
	m := c.make(key, func(m madeBlob, ok bool) bool { return ok && m.cached }, func() (m madeBlob) {
		m.layer, m.err = produce()
		return m
	})
	return m.layer, m.err
}

// counts are how many blobs were packed in this build and how many
// were taken from the cache.
func (c *blobs) counts() (packed, reused int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range c.made {
		switch {
		case m.err != nil:
		case m.cached:
			reused++
		default:
			packed++
		}
	}
	return packed, reused
}

// make returns key's blob, made by produce when again says that what
// was made before (ok: anything) is to be made again.
func (c *blobs) make(key string, again func(m madeBlob, ok bool) bool, produce func() madeBlob) madeBlob {
	v, _, _ := c.inflight.Do(key, func() (any, error) {
		c.mu.Lock()
		m, ok := c.made[key]
		c.mu.Unlock()
		if again(m, ok) {
			m = produce()
			c.mu.Lock()
			if c.made == nil {
				c.made = map[string]madeBlob{}
			}
			c.made[key] = m
			c.mu.Unlock()
		}
		return m, nil
	})
	return v.(madeBlob)
}
