//go:build integration

package publish

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math/rand"
	"os"
	"path/filepath"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"gotest.tools/v3/assert"

	"github.com/nixery-action/nixery-action/internal/testenv"
	"github.com/nixery-action/nixery-action/pkg/registry"
)

// TestStreamWhileGrowing uploads a blob to a real registry while it is
// still being written, slowly, and checks that the registry has exactly
// its bytes under the digest given at the end, and that Write would take
// the upload as done. A blob that fails is never committed.
func TestStreamWhileGrowing(t *testing.T) {
	host := testenv.StartRegistry(t)
	target, err := NewTarget(host+"/stream/test", []string{"v1"}, false)
	assert.NilError(t, err)
	ctx := context.Background()

	grow := func(t *testing.T, fail bool) (v1.Hash, *Registry) {
		f, err := os.Create(filepath.Join(t.TempDir(), "blob"))
		assert.NilError(t, err)
		defer f.Close()
		r := NewRegistry(target, Options{Options: registry.Options{Backoff: fastBackoff}})
		g := NewGrowing(f)
		r.Stream(ctx, g)
		h := sha256.New()
		rng := rand.New(rand.NewSource(1))
		chunk := make([]byte, 1<<20)
		for i := 0; i < 8; i++ {
			rng.Read(chunk)
			h.Write(chunk)
			_, err := g.Write(chunk)
			assert.NilError(t, err)
			time.Sleep(20 * time.Millisecond) // the reader catches up and waits
		}
		d := v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}
		if fail {
			g.Fail(errors.New("packing broke"))
		} else {
			g.Finish(d, d)
		}
		r.Close()
		return d, r
	}

	d, r := grow(t, false)
	sent, ok, err := r.earlyResult(ctx, d)
	assert.NilError(t, err)
	assert.Assert(t, ok && sent, "the streamed upload is not counted: sent %v ok %v", sent, ok)
	l, err := remote.Layer(target.Repo.Digest(d.String()))
	assert.NilError(t, err)
	size, err := l.Size()
	assert.NilError(t, err)
	assert.Equal(t, size, int64(8<<20))

	d, r = grow(t, true)
	_, ok, _ = r.earlyResult(ctx, d)
	assert.Assert(t, !ok, "a failed blob counts as uploaded")
	_, err = remote.Head(target.Repo.Digest(d.String()))
	assert.Assert(t, err != nil, "a failed blob was committed")
}
