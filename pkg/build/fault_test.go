//go:build integration

package build

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"gotest.tools/v3/assert"

	"github.com/nixery-action/nixery-action/internal/faultproxy"
	"github.com/nixery-action/nixery-action/internal/testenv"
	"github.com/nixery-action/nixery-action/pkg/publish"
	"github.com/nixery-action/nixery-action/pkg/registry"
)

// TestBuildThroughFaults: whole builds as the CLI runs them by default,
// an SBOM and a provenance statement per platform, two platforms, pushed
// through a proxy that fails 15% of the registry requests (5xx, 429,
// dropped connections, stalls, answers cut short; a few less, as
// faultproxy's bound lets some through). At least 19 of 20
// complete, each with both referrers of each platform listed when read
// back from the registry itself; a failed one leaves no tag, and every
// tag names a complete index.
func TestBuildThroughFaults(t *testing.T) {
	testenv.Require(t, "docker-registry")
	host := testenv.StartRegistry(t)
	proxy := faultproxy.Start(t, host, 0.15, 3)
	// The default number of tries, paced for a test.
	opts := publish.Options{Options: registry.Options{Backoff: remote.Backoff{Duration: 20 * time.Millisecond, Factor: 2, Steps: registry.DefaultBackoff.Steps}}}
	const runs = 20
	var ok atomic.Int32
	faultproxy.Concurrently(runs, func(i int) {
		tag := fmt.Sprintf("run-%d", i)
		target := mustTarget(t, proxy.Host+"/faults/build", tag)
		// With the CLI's cache sources: the tags, and the cache record.
		req := sbomRequest(t, publish.NewRegistry(target, opts))
		// Another creation time each run: new configs, manifests
		// and referrers to push every time.
		req.Image.Created = sbomCreated.Add(time.Duration(i) * time.Hour)
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		res, err := Build(ctx, req, Options{Registry: opts})
		if err != nil {
			assert.Check(t, !strings.Contains(err.Error(), "\n"), "unclear error: %q", err)
			t.Logf("run %d failed: %v", i, err)
			ref, _ := name.NewTag(host+"/faults/build:"+tag, name.Insecure)
			_, herr := remote.Head(ref)
			assert.Check(t, herr != nil, "the failed build left the tag %s", tag)
			return
		}
		defer res.Close()
		ok.Add(1)
		for _, s := range res.SBOMs {
			assert.Check(t, s.SBOM.Attached && s.Provenance.Attached)
			subject, err := v1.NewHash(s.Manifest)
			assert.Check(t, err)
			listed := referrersOf(t, host+"/faults/build", subject)
			assert.Check(t, listed[s.SBOM.Digest] && listed[s.Provenance.Digest], "run %d: the referrers of %s lack the SBOM or provenance: %v", i, s.Platform, listed)
		}
	})
	testenv.CheckTags(t, host, "faults/build")
	t.Logf("%d of %d builds completed; %s", ok.Load(), runs, proxy.Report())
	assert.Assert(t, ok.Load() >= 19, "only %d of %d builds completed", ok.Load(), runs)
	// Uploads, most of a push, are among what failed.
	assert.Assert(t, proxy.UploadFaults() >= runs, "too few faults in blob uploads: %s", proxy.Report())
}

// referrersOf lists the referrers of subject in repo, read straight from
// the registry by go-containerregistry (the CNCF registry keeps them in
// the OCI 1.1 fallback tag).
func referrersOf(t *testing.T, repo string, subject v1.Hash) map[string]bool {
	t.Helper()
	r, err := name.NewRepository(repo, name.Insecure)
	assert.Check(t, err)
	idx, err := remote.Referrers(r.Digest(subject.String()))
	listed := map[string]bool{}
	if !assert.Check(t, err) {
		return listed
	}
	im, err := idx.IndexManifest()
	if !assert.Check(t, err) {
		return listed
	}
	for _, d := range im.Manifests {
		listed[d.Digest.String()] = true
	}
	return listed
}

// TestBuildCachedBlobDropped: a --cache-from registry that drops the
// connection half-way through each layer blob the first time it is asked
// for it: the download starts over and the layers are reused, not packed.
func TestBuildCachedBlobDropped(t *testing.T) {
	ctx := context.Background()
	var mu sync.Mutex
	dropped := map[string]bool{}
	cold, front := coldWithBlobProxy(t, "dropped", func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		blob := r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]
		mu.Lock()
		again := dropped[blob]
		dropped[blob] = true
		mu.Unlock()
		if again {
			next.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		// Without a length, as a stream: the transport hands it on as
		// it comes, and the download itself sees it end early.
		w.Header().Del("Content-Length")
		w.WriteHeader(rec.Code)
		w.Write(rec.Body.Bytes()[:rec.Body.Len()/2])
		w.(http.Flusher).Flush()
		if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
			conn.Close()
		}
	})
	ref, err := name.ParseReference(front+"/build/dropped:v1", name.Insecure)
	assert.NilError(t, err)

	req := request(t, publish.NewLayout(publish.Output{Kind: publish.OCILayout, Path: filepath.Join(t.TempDir(), "layout")}, publish.WriteOptions{}), 6)
	req.CacheFrom = []name.Reference{ref}
	var log bytes.Buffer
	res, err := Build(ctx, req, Options{Log: logTo(&log), Registry: publish.Options{Options: registry.Options{Backoff: remote.Backoff{Duration: 10 * time.Millisecond, Factor: 2, Steps: 3}}}})
	assert.NilError(t, err)
	res.Close()
	assert.Equal(t, res.Digest, cold.Digest)
	mu.Lock()
	n := len(dropped)
	mu.Unlock()
	assert.Assert(t, n > 0, "no blob download was dropped")
	assert.Check(t, res.Reused >= n && res.Packed == 0, "reused %d, packed %d, %d downloads dropped: %s", res.Reused, res.Packed, n, log.String())
}
