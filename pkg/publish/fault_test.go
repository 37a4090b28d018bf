//go:build integration

package publish

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"gotest.tools/v3/assert"

	"github.com/nixery-action/nixery-action/internal/faultproxy"
	"github.com/nixery-action/nixery-action/internal/testenv"
	"github.com/nixery-action/nixery-action/pkg/referrer"
	"github.com/nixery-action/nixery-action/pkg/registry"
)

// TestPushThroughFaults: with 15% of requests failing in every way the
// proxy knows (5xx, 429, dropped connections, stalls, answers cut short;
// a few less, as faultproxy's bound lets some through),
// two-platform pushes with an SBOM and a provenance statement per
// platform complete (at least 19 of 20) with every referrer listed, or
// fail with a one-line error and no tag; no tag ever names an index
// whose blobs are not all there.
func TestPushThroughFaults(t *testing.T) {
	testenv.Require(t, "docker-registry", "skopeo")
	registry := testenv.StartRegistry(t)
	proxy := faultproxy.Start(t, registry, 0.15, 1)
	const runs = 20
	var ok atomic.Int32
	faultproxy.Concurrently(runs, func(i int) {
		idx := testIndex(t, fmt.Sprintf("fault-%d", i), amd64, arm64)
		refs := allReferrers(t, idx)
		tag := fmt.Sprintf("run-%d", i)
		target := mustTarget(t, proxy.Host+"/faults/image", tag)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		r := NewRegistry(target, faultOptions)
		_, err := r.Write(ctx, idx, refs)
		r.Close()
		if err == nil {
			ok.Add(1)
			checkAttached(t, registry, "faults/image", refs)
		} else {
			msg := err.Error()
			assert.Check(t, !strings.Contains(msg, "\n") && !strings.Contains(msg, "goroutine"), "unclear error: %q", msg)
			t.Logf("run %d failed: %v", i, err)
			checkNoTag(t, registry, "faults/image", tag)
		}
	})
	testenv.CheckTags(t, registry, "faults/image")
	t.Logf("%d of %d pushes completed; %s", ok.Load(), runs, proxy.Report())
	assert.Assert(t, ok.Load() >= 19, "only %d of %d pushes completed", ok.Load(), runs)
	// Uploads, most of a push, are among what failed.
	assert.Assert(t, proxy.UploadFaults() >= runs, "too few faults in blob uploads: %s", proxy.Report())
	assert.Assert(t, proxy.Faults() >= runs, "too few faults to prove anything: %s", proxy.Report())
	// skopeo, reading the registry directly, sees both platforms.
	raw := testenv.Run(t, "skopeo", "inspect", "--tls-verify=false", "--raw", "docker://"+registry+"/faults/image:run-0")
	assert.DeepEqual(t, platformsOf(t, raw), []string{"linux/amd64", "linux/arm64/v8"})
}

// TestMergeThroughFaults: the scale-out form under the same faults. Each
// platform is pushed by digest with its referrers, then merged under a
// tag; at least 19 of 20 complete with every referrer listed, and a
// failed one leaves no tag.
func TestMergeThroughFaults(t *testing.T) {
	testenv.Require(t, "docker-registry")
	registry := testenv.StartRegistry(t)
	proxy := faultproxy.Start(t, registry, 0.15, 2)
	const runs = 20
	var ok atomic.Int32
	faultproxy.Concurrently(runs, func(i int) {
		tag := fmt.Sprintf("merged-%d", i)
		err := func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			var digests []string
			for _, p := range []v1.Platform{amd64, arm64} {
				idx := testIndex(t, fmt.Sprintf("merge-%d", i), p)
				refs := allReferrers(t, idx)
				r := NewRegistry(mustTarget(t, proxy.Host+"/faults/merge"), faultOptions)
				res, err := r.Write(ctx, idx, refs)
				r.Close()
				if err != nil {
					return err
				}
				checkAttached(t, registry, "faults/merge", refs)
				digests = append(digests, res.Digest)
			}
			_, err := mergeOne(ctx, mustTarget(t, proxy.Host+"/faults/merge", tag), digests, faultOptions)
			return err
		}()
		if err == nil {
			ok.Add(1)
		} else {
			assert.Check(t, !strings.Contains(err.Error(), "\n"), "unclear error: %q", err)
			t.Logf("run %d failed: %v", i, err)
			checkNoTag(t, registry, "faults/merge", tag)
		}
	})
	testenv.CheckTags(t, registry, "faults/merge")
	t.Logf("%d of %d merges completed; %s", ok.Load(), runs, proxy.Report())
	assert.Assert(t, ok.Load() >= 19, "only %d of %d merges completed", ok.Load(), runs)
	// Uploads, most of a push, are among what failed.
	assert.Assert(t, proxy.UploadFaults() >= runs, "too few faults in blob uploads: %s", proxy.Report())
}

// TestWriteOrder: a proxy that records the writes the registry accepted
// shows them in the order that makes the tags the commit point: blobs,
// platform manifests, referrers, and last the index under its tags (by
// digest when there are none).
func TestWriteOrder(t *testing.T) {
	testenv.Require(t, "docker-registry")
	registry := testenv.StartRegistry(t)
	proxy := faultproxy.Start(t, registry, 0, 1)
	idx := testIndex(t, "order", amd64, arm64)
	refs := allReferrers(t, idx)
	tags := []string{"a", "b"}
	r := NewRegistry(mustTarget(t, proxy.Host+"/order/img", tags...), Options{})
	res, err := r.Write(context.Background(), idx, refs)
	r.Close()
	assert.NilError(t, err)
	assert.Assert(t, res.ReferrersAttached)

	platforms, referrerDigests := map[string]bool{}, map[string]bool{}
	for subject, imgs := range refs {
		platforms[subject.String()] = true
		for _, img := range imgs {
			d, err := img.Digest()
			assert.NilError(t, err)
			referrerDigests[d.String()] = true
		}
	}
	rank := map[string]int{"blob": 0, "manifest": 1, "referrer": 2, "index": 3, "tag": 4}
	writes := proxy.Writes()
	seen := map[string]int{}
	last := 0
	for _, w := range writes {
		kind := writeKind(w, platforms, referrerDigests, res.Digest, tags)
		r, known := rank[kind]
		assert.Assert(t, known, "unexpected write %s in %v", kind, writes)
		// Blobs after the manifests are the referrers' own.
		if kind == "blob" && last >= rank["manifest"] {
			r = rank["referrer"]
		}
		assert.Assert(t, r >= last, "%s came after a later step: %v", w, writes)
		last = r
		seen[kind]++
	}
	assert.Equal(t, seen["manifest"], 2, "%v", writes)
	assert.Equal(t, seen["index"], 0, "a PUT by digest before the tags: %v", writes)
	assert.Equal(t, seen["tag"], 2, "%v", writes)
	assert.Assert(t, seen["referrer"] >= 4, "%v", writes) // 4 manifests, and the fallback tags
	assert.Equal(t, writeKind(writes[len(writes)-1], platforms, referrerDigests, res.Digest, tags), "tag")

	// An unchanged push again writes nothing at all.
	r = NewRegistry(mustTarget(t, proxy.Host+"/order/img", tags...), Options{})
	_, err = r.Write(context.Background(), idx, refs)
	r.Close()
	assert.NilError(t, err)
	assert.DeepEqual(t, proxy.Writes(), []string(nil))

	// Without tags, the index by digest is the last write.
	idx2 := testIndex(t, "order-by-digest", amd64)
	refs2 := allReferrers(t, idx2)
	r = NewRegistry(mustTarget(t, proxy.Host+"/order/img"), Options{})
	res, err = r.Write(context.Background(), idx2, refs2)
	r.Close()
	assert.NilError(t, err)
	writes = proxy.Writes()
	assert.Assert(t, len(writes) > 0)
	assert.Equal(t, writes[len(writes)-1], "PUT /v2/order/img/manifests/"+res.Digest, "%v", writes)
	for _, w := range writes[:len(writes)-1] {
		assert.Check(t, !strings.HasSuffix(w, "/manifests/"+res.Digest), "the index went out before the end: %v", writes)
	}
}

// faultOptions are the default options, with a quicker backoff than the
// default's (1 s, doubling) so that 20 pushes take seconds, not minutes;
// the tries are as many.
var faultOptions = Options{Options: registry.Options{Backoff: remote.Backoff{Duration: 20 * time.Millisecond, Factor: 2, Steps: registry.DefaultBackoff.Steps}}}

// allReferrers makes an SBOM and a provenance statement for every
// platform image of idx, as a build does.
func allReferrers(t *testing.T, idx v1.ImageIndex) Attachments {
	t.Helper()
	im, err := idx.IndexManifest()
	assert.NilError(t, err)
	refs := Attachments{}
	for _, m := range im.Manifests {
		for _, doc := range []referrer.Document{
			referrer.CycloneDX([]byte(`{"bomFormat":"CycloneDX","subject":"` + m.Digest.String() + `"}`)),
			referrer.InToto([]byte(`{"_type":"https://in-toto.io/Statement/v1"}`), "https://slsa.dev/provenance/v1"),
		} {
			r, err := referrer.New(m, doc, time.Unix(1, 0))
			assert.NilError(t, err)
			refs[m.Digest] = append(refs[m.Digest], r)
		}
	}
	return refs
}

// checkAttached reads, from the registry itself (not through the faults),
// the referrers of every platform image refs names, and fails unless each
// lists both of its documents.
func checkAttached(t *testing.T, registry, repo string, refs Attachments) {
	t.Helper()
	r := NewRegistry(mustTarget(t, registry+"/"+repo), Options{})
	for subject, imgs := range refs {
		assert.Check(t, r.Attached(context.Background(), v1.Descriptor{Digest: subject}, imgs...), "the referrers of %s are not all listed", subject)
	}
}

// checkNoTag fails if tag exists in the repository.
func checkNoTag(t *testing.T, registry, repo, tag string) {
	t.Helper()
	ref, err := name.NewTag(registry+"/"+repo+":"+tag, name.Insecure)
	if err != nil {
		t.Error(err)
	} else if _, err := remote.Head(ref); err == nil {
		t.Errorf("the failed push left the tag %s", tag)
	}
}

// writeKind names what a write the registry accepted was, for the order
// test: a blob, a platform manifest, a referrer (its manifest or the
// fallback tag that lists it), the index by digest, or a tag.
func writeKind(w string, platforms, referrers map[string]bool, index string, tags []string) string {
	path := w[strings.Index(w, " ")+1:]
	id := path[strings.LastIndex(path, "/")+1:]
	switch {
	case strings.Contains(path, "/blobs/"):
		return "blob"
	case !strings.Contains(path, "/manifests/"):
		return "other " + w
	case platforms[id]:
		return "manifest"
	case referrers[id] || strings.HasPrefix(id, "sha256-"):
		return "referrer"
	case id == index:
		return "index"
	}
	for _, tag := range tags {
		if id == tag {
			return "tag"
		}
	}
	return "other " + w
}

// TestMergeBlobUnchecked: a registry that answers every HEAD of a blob
// with 503 fails the merge with one line asking for it to be run again
// (not "does not hold": the blob may well be there), after the
// transport's tries (and no more rounds of them), and tags nothing.
func TestMergeBlobUnchecked(t *testing.T) {
	testenv.Require(t, "docker-registry")
	reg := testenv.StartRegistry(t)
	var digests []string
	for _, p := range []v1.Platform{amd64, arm64} {
		r := NewRegistry(mustTarget(t, reg+"/unchecked/app"), Options{})
		res, err := r.Write(context.Background(), testIndex(t, "unchecked", p), nil)
		r.Close()
		assert.NilError(t, err)
		digests = append(digests, res.Digest)
	}
	var heads atomic.Int32
	host := testenv.Front(t, reg, func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodHead || !strings.Contains(r.URL.Path, "/blobs/") {
			return false
		}
		heads.Add(1)
		http.Error(w, "unavailable", http.StatusServiceUnavailable)
		return true
	})
	o := Options{Options: registry.Options{Backoff: remote.Backoff{Duration: time.Millisecond, Steps: 3}}}
	_, err := mergeOne(context.Background(), mustTarget(t, host+"/unchecked/app", "merged"), digests, o)
	assert.ErrorContains(t, err, "could not check that "+host+"/unchecked/app holds the ")
	assert.ErrorContains(t, err, "(the registry answered 503 Service Unavailable): run the merge again")
	assert.Check(t, !strings.Contains(err.Error(), "\n"), "unclear error: %q", err)
	assert.Check(t, !strings.Contains(err.Error(), "does not hold"), err.Error())
	// Each blob asked about once, with the transport's 3 tries; the
	// merge stops at the first that stays unanswered (up to ReadJobs
	// blobs are asked about at the same time).
	assert.Check(t, heads.Load() >= 3 && heads.Load() <= int32(3*registry.ReadJobs), "%d HEADs", heads.Load())
	checkNoTag(t, reg, "unchecked/app", "merged")
}
