package build

import (
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sync/singleflight"

	"github.com/nixery-action/nixery-action/pkg/archive"
	"github.com/nixery-action/nixery-action/pkg/image"
	"github.com/nixery-action/nixery-action/pkg/push"
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
	reused := false
	l, err := b.blobs.get(cacheKey, func() (image.Blob, error) {
		l, ok := b.fromCache(ctx, cacheKey, c)
		if err := ctx.Err(); err != nil {
			return image.Blob{}, err // interrupted, not a cache miss
		}
		if ok {
			b.reused.Add(1)
			reused = true
		} else {
			b.packed.Add(1)
			var err error
			if l, err = b.pack(ctx, c, r.packing()); err != nil {
				return image.Blob{}, err
			}
		}
		l.CacheKey = cacheKey
		b.req.Destination.Offer(ctx, l.Layer())
		return l, nil
	})
	if err != nil {
		return image.Blob{}, err
	}
	l.CacheKey = cacheKey
	stage := Packed
	if reused {
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
		b.note("cache: the layer %s in %s does not hold what its key says (diffID %s, the store paths give %s); packing it", cached.Digest, cached.Repo, cached.DiffID, local.Digest)
		return image.Blob{}, false
	}
	if b.req.Destination.Holds(cached.Repo, cached.Digest) {
		return cached.Blob, true // already where it goes
	}
	// A download broken off is started over, with the registry options'
	// retries; a blob that is not what it should be is not.
	var l image.Blob
	err = push.Retry(ctx, b.opts.Registry.RetryBackoff(), push.Transient, func(int) error {
		l, err = b.fetch(ctx, cached)
		return err
	})
	if err != nil {
		if ctx.Err() == nil {
			b.note("cache: %v; packing it", err)
		}
		return image.Blob{}, false
	}
	return l, true
}

// fetch copies a cached blob into a blob file, checking its size, digest
// and diffID on the way.
func (b *builder) fetch(ctx context.Context, cached push.CachedBlob) (image.Blob, error) {
	if err := ctx.Err(); err != nil {
		return image.Blob{}, err
	}
	rc, err := cached.Open()
	if err != nil {
		return image.Blob{}, fmt.Errorf("read layer %s from %s: %w", cached.Digest, cached.Repo, err)
	}
	defer rc.Close()
	// A registry that sends the blob slowly, or not at all, is given up on
	// (closing the body ends the read), and the layer is packed instead.
	limit := fetchTime(cached.Size)
	stop := time.AfterFunc(limit, func() { rc.Close() })
	defer stop.Stop()
	// A signal ends the read the same way.
	defer context.AfterFunc(ctx, func() { rc.Close() })()
	f, err := os.CreateTemp(b.dir, "cached-")
	if err != nil {
		return image.Blob{}, err
	}
	defer f.Close()
	digest, diffID := sha256.New(), sha256.New()
	pr, pw := io.Pipe()
	unzipped := make(chan error, 1)
	go func() {
		zr, err := gzip.NewReader(pr)
		if err == nil {
			_, err = io.Copy(diffID, zr)
		}
		pr.CloseWithError(err)
		unzipped <- err
	}()
	// One byte more than described tells a longer blob apart.
	n, err := io.Copy(io.MultiWriter(f, digest, pw), io.LimitReader(rc, cached.Size+1))
	pw.Close()
	zerr := <-unzipped
	switch {
	case ctx.Err() != nil:
		return image.Blob{}, ctx.Err()
	case err != nil && !stop.Stop():
		return image.Blob{}, fmt.Errorf("read layer %s from %s: gave up after %s", cached.Digest, cached.Repo, limit)
	case err != nil:
		return image.Blob{}, fmt.Errorf("read layer %s from %s: %w", cached.Digest, cached.Repo, err)
	case n != cached.Size:
		return image.Blob{}, fmt.Errorf("layer %s from %s is not %d bytes long", cached.Digest, cached.Repo, cached.Size)
	case "sha256:"+hex.EncodeToString(digest.Sum(nil)) != cached.Digest.String():
		return image.Blob{}, fmt.Errorf("layer %s from %s has other bytes than its digest says", cached.Digest, cached.Repo)
	case zerr != nil:
		return image.Blob{}, fmt.Errorf("layer %s from %s does not decompress: %w", cached.Digest, cached.Repo, zerr)
	case "sha256:"+hex.EncodeToString(diffID.Sum(nil)) != cached.DiffID.String():
		return image.Blob{}, fmt.Errorf("layer %s from %s decompresses to other content than its diffID says", cached.Digest, cached.Repo)
	}
	if err := f.Close(); err != nil {
		return image.Blob{}, err
	}
	l := cached.Blob
	l.Open, l.Path = nil, filepath.Clean(f.Name())
	return l, nil
}

// streamAbove is the size from which a layer is uploaded while it is
// packed, when the destination can: a big layer would otherwise keep the
// link idle while it is packed. Smaller ones are uploaded once packed,
// after asking the registry whether it has them.
var streamAbove int64 = 16 << 20

// fetchTime is how long copying a cached blob of size bytes may take: a
// minute, and a second per MB (packing it is faster than that).
var fetchTime = func(size int64) time.Duration {
	return time.Minute + time.Duration(size/1_000_000)*time.Second
}

// pack writes c's blob file and describes it as an image layer. A big
// layer is streamed to a destination that can take it while it grows.
func (b *builder) pack(ctx context.Context, c content, progress func(int)) (l image.Blob, err error) {
	f, err := os.CreateTemp(b.dir, "layer-")
	if err != nil {
		return image.Blob{}, err
	}
	defer f.Close()
	var w io.Writer = f
	if c.size >= streamAbove {
		if g := push.NewGrowing(f); b.req.Destination.Stream(ctx, g) {
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
	return image.Blob{Digest: digest, DiffID: diffID, Size: blob.Size, Path: filepath.Clean(f.Name())}, nil
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
	layer image.Blob
	err   error
}

func (c *blobs) get(key string, produce func() (image.Blob, error)) (image.Blob, error) {
	v, _, _ := c.inflight.Do(key, func() (any, error) {
		c.mu.Lock()
		m, ok := c.made[key]
		c.mu.Unlock()
		if !ok {
			m.layer, m.err = produce()
			c.mu.Lock()
			if c.made == nil {
				c.made = map[string]madeBlob{}
			}
			c.made[key] = m
			c.mu.Unlock()
		}
		return m, nil
	})
	m := v.(madeBlob)
	return m.layer, m.err
}
