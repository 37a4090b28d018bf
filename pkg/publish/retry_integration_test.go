//go:build integration

package publish

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"gotest.tools/v3/assert"

	"github.com/nixery-action/nixery-action/internal/testenv"
	"github.com/nixery-action/nixery-action/pkg/registry"
)

// TestPushToFullRegistry: a registry that answers 500 to every upload
// gets each blob's upload opened at most Backoff.Steps times in all (one
// layer of retries, not the transport's tries for each of the upload's
// restarts, nor a second upload after a failed early one); every retry
// is told as a line, and the error says how many tries were made and
// what to check. No tag is written.
func TestPushToFullRegistry(t *testing.T) {
	testenv.Require(t, "docker-registry")
	host, upstream, opened := testenv.StartFullRegistry(t)
	idx := testIndex(t, "full", amd64, arm64)
	blobs := countBlobs(t, idx)

	var mu sync.Mutex
	var lines []string
	steps := registry.DefaultBackoff.Steps
	o := Options{
		Options: registry.Options{Backoff: remote.Backoff{Duration: 10 * time.Millisecond, Factor: 2, Steps: steps}},
		OnRetry: func(line string) {
			mu.Lock()
			defer mu.Unlock()
			lines = append(lines, line)
		},
	}
	r := NewRegistry(mustTarget(t, host+"/full/app", "v1"), o)
	// Offered early too, as a build does: a failed early upload is
	// not started all over again by the push.
	layers, err := idx.Images()[0].Layers()
	assert.NilError(t, err)
	for _, l := range layers {
		r.Offer(context.Background(), l)
	}
	_, err = r.Write(context.Background(), idx, nil)
	r.Close()

	assert.Assert(t, err != nil)
	t.Logf("%d uploads opened for %d blobs; %d retry lines; error: %v", opened.Load(), blobs, len(lines), err)
	assert.Check(t, opened.Load() <= int32(steps*blobs), "%d uploads opened for %d blobs: the retries multiplied", opened.Load(), blobs)
	assert.Check(t, strings.Contains(err.Error(), "push to "+host+"/full/app: registry answered 500 Internal Server Error (UNKNOWN: unknown error) 5 times; check the registry (its logs, its free disk space)"), err.Error())
	assert.Check(t, !strings.Contains(err.Error(), "\n"), "unclear error: %q", err)

	mu.Lock()
	defer mu.Unlock()
	assert.Assert(t, len(lines) > 0, "no retry was told")
	assert.Assert(t, len(lines) < int(opened.Load()), "more retry lines (%d) than tries made (%d)", len(lines), opened.Load())
	for _, line := range lines {
		assert.Check(t, strings.HasPrefix(line, "push to "+host+"/full/app: blob sha256:"), line)
		assert.Check(t, strings.Contains(line, ": registry answered 500 Internal Server Error (UNKNOWN: unknown error); retrying in "), line)
		assert.Check(t, !strings.Contains(line, "\n"), line)
	}
	assert.Check(t, containsSuffix(lines, "(2/5)") && containsSuffix(lines, "(5/5)"), "%v", lines)
	checkNoTag(t, upstream, "full/app", "v1")
}

// countBlobs is how many distinct layer and config blobs idx has.
func countBlobs(t *testing.T, idx v1.ImageIndex) int {
	t.Helper()
	im, err := idx.IndexManifest()
	assert.NilError(t, err)
	seen := map[v1.Hash]bool{}
	for _, m := range im.Manifests {
		img, err := idx.Image(m.Digest)
		assert.NilError(t, err)
		layers, err := img.Layers()
		assert.NilError(t, err)
		cfg, err := partial.ConfigLayer(img)
		assert.NilError(t, err)
		for _, l := range append(layers, cfg) {
			d, err := l.Digest()
			assert.NilError(t, err)
			seen[d] = true
		}
	}
	return len(seen)
}

func containsSuffix(lines []string, suffix string) bool {
	for _, l := range lines {
		if strings.HasSuffix(l, suffix) {
			return true
		}
	}
	return false
}
