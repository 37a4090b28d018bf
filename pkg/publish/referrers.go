package publish

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/nixery-action/nixery-action/internal/parallel"
	"github.com/nixery-action/nixery-action/pkg/image"
	"github.com/nixery-action/nixery-action/pkg/registry"
)

// Attachments are the referrers (SBOMs, provenance statements, made by
// referrer.New) that a Write stores with an index: for each platform
// manifest's digest, the artifacts whose subject it is. A destination
// writes them before the index's names, so that a tag never names an
// image whose referrers are missing.
type Attachments map[v1.Hash][]v1.Image

// subjects lists the subjects in digest order (writes are reproducible).
func (a Attachments) subjects() []v1.Hash {
	out := make([]v1.Hash, 0, len(a))
	for d := range a {
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

// AttachError is a referrer of Subject that could not be stored. Nothing
// names the image yet when it happens: running the build again finishes
// it.
type AttachError struct {
	Subject v1.Hash
	Err     error
}

func (e *AttachError) Error() string { return e.Err.Error() }
func (e *AttachError) Unwrap() error { return e.Err }

// ErrNoReferrers says where referrers have no
// place (a docker archive holds one image and nothing that refers to
// it). The image itself was written: it is not a failure of the build.
var ErrNoReferrers = errors.New("a docker archive cannot hold referrers")

// AttachReferrers pushes each referrer by digest into the target
// repository, with the credentials and transport of the push: through the
// registry's referrers API where it has one, else into the OCI 1.1
// fallback tag sha256-<subject hex>. The caller attaches one subject's
// referrers in one call, since the fallback tag is read, extended and
// written back (once for all of them). The tag is read here, with the
// bounds of every read (go-containerregistry's own fallback, turned off,
// would read all the registry sends).
func (r *Registry) AttachReferrers(ctx context.Context, subject v1.Descriptor, imgs ...v1.Image) error {
	pusher, err := r.setup(ctx)
	if err != nil {
		return err
	}
	var unlisted []v1.Descriptor
	for _, img := range imgs {
		listed, err := r.pushReferrer(ctx, pusher, img)
		if err != nil {
			return fmt.Errorf("attach a referrer to %s: %w", subject.Digest, r.login.Explain(err, r.target.Repo))
		}
		if !listed {
			desc, err := referrerDescriptor(img)
			if err != nil {
				return err
			}
			unlisted = append(unlisted, desc)
		}
	}
	if len(unlisted) == 0 {
		return nil
	}
	lctx := r.opts.noticing(ctx, r.target.Repo, "the referrers of "+short(subject.Digest.String()))
	err = registry.Retry(lctx, r.opts.RetryBackoff(), registry.Transient, func(ctx context.Context, _ int) error {
		return r.listInFallback(ctx, pusher, subject.Digest, unlisted)
	})
	if err != nil {
		return fmt.Errorf("attach the referrers of %s: %w", subject.Digest, r.login.Explain(err, r.target.Repo))
	}
	return nil
}

// attached asks, for each subject of refs, whether its referrers are
// attached already; the function it returns waits for the answers.
func (r *Registry) attached(ctx context.Context, refs Attachments) func() map[v1.Hash]bool {
	found := make(map[v1.Hash]*atomic.Bool, len(refs))
	var wg sync.WaitGroup
	for subject, imgs := range refs {
		ok := new(atomic.Bool)
		found[subject] = ok
		wg.Go(func() { ok.Store(r.Attached(ctx, v1.Descriptor{Digest: subject}, imgs...)) })
	}
	return func() map[v1.Hash]bool {
		wg.Wait()
		out := map[v1.Hash]bool{}
		for d, ok := range found {
			out[d] = ok.Load()
		}
		return out
	}
}

// attachMissing attaches the referrers of every subject not in already,
// subjects concurrently (one subject's one after the other: a registry
// without the referrers API lists them in one tag).
func (r *Registry) attachMissing(ctx context.Context, refs Attachments, already map[v1.Hash]bool) error {
	var todo []v1.Hash
	for _, d := range refs.subjects() {
		if !already[d] {
			todo = append(todo, d)
		}
	}
	return parallel.Do(ctx, len(todo)+1, len(todo), func(ctx context.Context, i int) error {
		if err := r.AttachReferrers(ctx, v1.Descriptor{Digest: todo[i]}, refs[todo[i]]...); err != nil {
			return &AttachError{Subject: todo[i], Err: err}
		}
		return nil
	})
}

// Attached tells whether subject's referrers list every one of imgs and
// the registry holds their manifests. Any doubt (an error, a list too
// long to read) means no.
func (r *Registry) Attached(ctx context.Context, subject v1.Descriptor, imgs ...v1.Image) bool {
	rd, err := r.reader(ctx)
	if err != nil {
		return false
	}
	im, _, err := rd.Referrers(ctx, subject.Digest)
	if err != nil {
		return false
	}
	descs := make([]v1.Descriptor, len(imgs))
	for i, img := range imgs {
		if descs[i].Digest, err = img.Digest(); err != nil {
			return false
		}
	}
	if len(unlisted(im, descs)) > 0 {
		return false
	}
	found := make([]bool, len(descs))
	var wg sync.WaitGroup
	for i, d := range descs {
		wg.Go(func() { found[i] = rd.ManifestExists(ctx, d.Digest) })
	}
	wg.Wait()
	return !slices.Contains(found, false)
}

// pushReferrer pushes one referrer; listed is false where the registry
// may have no referrers API, and the fallback tag must list it. A push
// broken off (a dropped upload, a registry that said to try again)
// starts over with a fresh pusher, as uploadBlob does. So does a
// manifest refused for blobs the registry has not finished linking:
// builds that push the same image at once upload the same referrer blobs
// at once.
func (r *Registry) pushReferrer(ctx context.Context, pusher *remote.Pusher, img v1.Image) (listed bool, err error) {
	again := func(err error) bool { return registry.BlobNotLinked(err) || registry.Transient(err) }
	what := "a referrer"
	if d, derr := img.Digest(); derr == nil {
		what = "referrer " + short(d.String())
	}
	err = registry.Retry(r.opts.noticing(ctx, r.target.Repo, what), r.opts.RetryBackoff(), again, func(ctx context.Context, try int) error {
		// The pusher's options, like r.ropts, turn the library's own
		// fallback off (a reused pusher keeps its options); a try again
		// starts afresh, not through the pusher, which remembers the
		// blobs it saw.
		opts := r.ropts
		if try == 1 {
			opts = []remote.Option{remote.Reuse(pusher)}
		}
		_, err := pushArtifact(ctx, r.target.Repo, img, r.opts.mountFrom, opts...)
		if err == nil {
			listed = true
			return nil
		}
		// With its fallback off, the library fails after the PUT where
		// the registry has no referrers API: the manifest is then there,
		// and the tag is written by the caller. The library's words say
		// so; a registry that is slow to show what was just written is
		// not asked.
		if strings.Contains(err.Error(), noFallback) {
			return nil
		}
		if d, derr := img.Digest(); derr == nil && r.manifestThere(ctx, d) {
			return nil
		}
		return err
	})
	return listed, err
}

// noFallback is how go-containerregistry says it stored a referrer on a
// registry without the referrers API, but did not list it, its fallback
// being off (TestLibraryNoFallbackWords holds the words).
const noFallback = "referrers tag fallback is disabled"

// manifestThere asks the target repository for the manifest d.
func (r *Registry) manifestThere(ctx context.Context, d v1.Hash) bool {
	rd, err := r.reader(ctx)
	return err == nil && rd.ManifestExists(ctx, d)
}

// fallbackRounds bounds the writes of a fallback tag that keep losing
// to other builds' writes.
const fallbackRounds = 10

// listInFallback adds descs to subject's referrers: nothing to do where
// the registry has the referrers API (it lists what it holds), else the
// fallback tag's index gets those it does not list, the entries sorted
// by digest as go-containerregistry sorts them (the bytes do not depend
// on who wrote last), and is put back. The tag has no atomic update:
// another build that read it before this write puts back its own list
// without descs. So each write is followed, after a wait longer than
// such a build's read and write, by a read, and descs missing from it
// are merged in again.
func (r *Registry) listInFallback(ctx context.Context, pusher *remote.Pusher, subject v1.Hash, descs []v1.Descriptor) error {
	rd, err := r.reader(ctx)
	if err != nil {
		return err
	}
	tag := registry.FallbackTag(r.target.Repo, subject)
	for round := 1; ; round++ {
		start := time.Now()
		var im *v1.IndexManifest
		if round == 1 {
			var api bool
			if im, api, err = rd.Referrers(ctx, subject); err != nil || api {
				return err
			}
		} else if im, err = rd.FallbackReferrers(ctx, subject); err != nil {
			// Round 1 found no referrers API: the tag alone is read.
			return err
		}
		missing := unlisted(im, descs)
		if len(missing) == 0 {
			return nil
		}
		if round > fallbackRounds {
			return fmt.Errorf("the referrers tag %s lost %d of this build's referrers to other writers %d times; run again when the other builds of this image are done", tag, len(missing), fallbackRounds)
		}
		im.SchemaVersion, im.MediaType = 2, types.OCIImageIndex
		im.Manifests = append(im.Manifests, missing...)
		sort.Slice(im.Manifests, func(i, j int) bool { return im.Manifests[i].Digest.String() < im.Manifests[j].Digest.String() })
		raw, err := json.Marshal(im)
		if err != nil {
			return err
		}
		if err := pusher.Put(ctx, tag, image.RawManifest{Bytes: raw, Type: types.OCIImageIndex}); err != nil {
			return err
		}
		if err := registry.Sleep(ctx, settle(time.Since(start), round)); err != nil {
			return err
		}
	}
}

// unlisted are those of descs that im does not list.
func unlisted(im *v1.IndexManifest, descs []v1.Descriptor) []v1.Descriptor {
	listed := map[v1.Hash]bool{}
	for _, d := range im.Manifests {
		listed[d.Digest] = true
	}
	var out []v1.Descriptor
	for _, d := range descs {
		if !listed[d.Digest] {
			out = append(out, d)
		}
	}
	return out
}

// settle is the wait after a round of the fallback tag (its read and
// write) that lasted spent: twice that, for another build's write that
// read the tag before this one landed, and a random share more, growing
// with the round, so that builds that keep colliding spread apart.
func settle(spent time.Duration, round int) time.Duration {
	spent = max(spent, 10*time.Millisecond)
	return 2*spent + rand.N(time.Duration(round)*spent)
}

// referrerDescriptor describes a referrer as the fallback index lists it:
// with its artifact type and annotations.
func referrerDescriptor(img v1.Image) (v1.Descriptor, error) {
	desc, err := partial.Descriptor(img)
	if err != nil {
		return v1.Descriptor{}, err
	}
	m, err := img.Manifest()
	if err != nil {
		return v1.Descriptor{}, err
	}
	desc.Annotations = m.Annotations
	desc.ArtifactType = m.ArtifactType
	if desc.ArtifactType == "" {
		desc.ArtifactType = string(m.Config.MediaType)
	}
	return *desc, nil
}

// Push uploads a referrer made by Referrer into repo (the subject's
// repository) by digest, and returns its digest: its two blobs (those the
// registry has are skipped), then its manifest, which is PUT even when
// the registry has it. go-containerregistry's manifest PUT then asks the
// registry for the referrers API and, where it has none (the CNCF
// registry 2.x), adds the referrer to the OCI 1.1 fallback tag
// sha256-<subject hex> unless it is listed already; it reads that tag
// without a size limit, so Registry turns this off
// (remote.WithReferrersTagFallback(false)) and writes the tag itself. A
// writer that skipped manifests already there would never list one whose
// push was cut short between the manifest and the tag. opts are the
// caller's remote options (auth, transport); with remote.Reuse(pusher)
// the pusher's connections and tokens serve it. Blobs of mountFrom
// (nil: none) are mounted from it where the registry can.
func pushArtifact(ctx context.Context, repo name.Repository, referrer v1.Image, mountFrom *name.Repository, opts ...remote.Option) (v1.Hash, error) {
	d, err := referrer.Digest()
	if err != nil {
		return v1.Hash{}, err
	}
	fail := func(err error) (v1.Hash, error) {
		return v1.Hash{}, fmt.Errorf("pushing referrer %s to %s: %w", d, repo, err)
	}
	opts = append(append([]remote.Option(nil), opts...), remote.WithContext(ctx))
	blobs, err := referrer.Layers()
	if err != nil {
		return fail(err)
	}
	config, err := partial.ConfigLayer(referrer)
	if err != nil {
		return fail(err)
	}
	// One pusher: one token exchange for the three requests' worth.
	pusher, err := remote.NewPusher(opts...)
	if err != nil {
		return fail(err)
	}
	for _, b := range append(blobs, config) {
		bd, err := b.Digest()
		if err != nil {
			return fail(err)
		}
		if err := pusher.Upload(ctx, repo, mountable(mountFrom, repo, b, bd)); err != nil {
			return fail(err)
		}
	}
	if err := pusher.Put(ctx, repo.Digest(d.String()), referrer); err != nil {
		return fail(err)
	}
	return d, nil
}
