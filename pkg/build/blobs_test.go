package build

import (
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"gotest.tools/v3/assert"

	"github.com/nixery-action/nixery-action/pkg/cache"
	"github.com/nixery-action/nixery-action/pkg/image"
)

// Each key is made once per build: callers at the same time wait for the
// first, later ones get its layer (or its error) without making it again.
func TestBlobsOnce(t *testing.T) {
	var c blobs
	var made atomic.Int32
	want := image.Blob{Digest: v1.Hash{Algorithm: "sha256", Hex: "aa"}}
	produce := func() (image.Blob, bool, error) {
		made.Add(1)
		time.Sleep(50 * time.Millisecond)
		return want, false, nil
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			l, _, err := c.get("k", produce)
			assert.Check(t, err)
			assert.Check(t, l.Digest == want.Digest)
		})
	}
	wg.Wait()
	l, _, err := c.get("k", produce)
	assert.NilError(t, err)
	assert.Equal(t, l.Digest, want.Digest)
	assert.Equal(t, made.Load(), int32(1))

	boom := errors.New("boom")
	_, _, err = c.get("bad", func() (image.Blob, bool, error) { made.Add(1); return image.Blob{}, false, boom })
	assert.Equal(t, err, boom)
	_, _, err = c.get("bad", produce)
	assert.Equal(t, err, boom)
	assert.Equal(t, made.Load(), int32(2))
	packed, reused := c.counts() // a failed blob is neither
	assert.Check(t, packed == 1 && reused == 0, "packed %d, reused %d", packed, reused)
}

// A blob taken from the cache is packed again once, however many
// platforms find it shares its digest, and every later caller gets the
// packed one; a blob packed in this build is never packed again.
func TestBlobsRepackOnce(t *testing.T) {
	var c blobs
	h := func(s string) v1.Hash { return v1.Hash{Algorithm: "sha256", Hex: strings.Repeat(s, 64)} }
	cached, packed := image.Blob{Digest: h("a")}, image.Blob{Digest: h("b")}
	_, fromCache, err := c.get("from-cache", func() (image.Blob, bool, error) { return cached, true, nil })
	assert.NilError(t, err)
	assert.Check(t, fromCache)
	_, fromCache, err = c.get("packed", func() (image.Blob, bool, error) { return packed, false, nil })
	assert.NilError(t, err)
	assert.Check(t, !fromCache)
	p, r := c.counts()
	assert.Check(t, p == 1 && r == 1, "packed %d, reused %d", p, r)

	var made atomic.Int32
	repack := func() (image.Blob, error) {
		made.Add(1)
		time.Sleep(50 * time.Millisecond)
		return packed, nil
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			l, err := c.repack("from-cache", repack)
			assert.Check(t, err)
			assert.Check(t, l.Digest == packed.Digest)
		})
	}
	wg.Wait()
	l, err := c.repack("from-cache", repack)
	assert.NilError(t, err)
	assert.Equal(t, l.Digest, packed.Digest)
	l, fromCache, err = c.get("from-cache", func() (image.Blob, bool, error) { return cached, true, nil })
	assert.NilError(t, err)
	assert.Equal(t, l.Digest, packed.Digest)
	assert.Check(t, !fromCache)
	assert.Equal(t, made.Load(), int32(1))

	l, err = c.repack("packed", repack)
	assert.NilError(t, err)
	assert.Equal(t, l.Digest, packed.Digest)
	assert.Equal(t, made.Load(), int32(1))
	p, r = c.counts()
	assert.Check(t, p == 2 && r == 0, "packed %d, reused %d", p, r)
}

// A blob named by cache entries with different diffIDs is suspect under
// every key; one named under two keys with the same diffID (two
// compression levels giving the same bytes) is not.
func TestSharedDigests(t *testing.T) {
	h := func(s string) v1.Hash { return v1.Hash{Algorithm: "sha256", Hex: strings.Repeat(s, 64)} }
	entry := func(digest, diffID string) cache.Blob {
		return cache.Blob{Blob: image.Blob{Digest: h(digest), DiffID: h(diffID)}}
	}
	got := sharedDigests(cache.Cache{
		"custom": entry("a", "1"), "other": entry("a", "2"),
		"level6": entry("b", "3"), "level9": entry("b", "3"),
		"alone": entry("c", "4"),
	})
	assert.DeepEqual(t, got, map[v1.Hash]bool{h("a"): true})
}
