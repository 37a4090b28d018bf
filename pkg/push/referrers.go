package push

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/nixery-action/nixery-action/pkg/sbom"
)

// Referrers is a Destination that can attach artifacts (SBOMs, provenance
// statements, made by sbom.Referrer) to an image it wrote, as OCI 1.1
// referrers. A build calls it after Write, with the subject being one of
// the index's platform manifests.
type Referrers interface {
	// AttachReferrers stores each of imgs, whose subject is subject. It
	// is idempotent: attaching the same artifacts again changes nothing.
	// Calls for different subjects may run concurrently. A destination
	// that cannot hold referrers returns ErrNoReferrers.
	AttachReferrers(ctx context.Context, subject v1.Descriptor, imgs ...v1.Image) error
	// Attached tells whether subject already has every one of imgs as a
	// referrer, so that attaching them would change nothing (a rebuild of
	// an unchanged image). It only reads: a build asks while it writes
	// the index. Any doubt means false.
	Attached(ctx context.Context, subject v1.Descriptor, imgs ...v1.Image) bool
}

// ErrNoReferrers is what AttachReferrers returns where referrers have no
// place (a docker archive holds one image and nothing that refers to
// it). The image itself was written: it is not a failure of the build.
var ErrNoReferrers = errors.New("a docker archive cannot hold referrers")

// AttachReferrers pushes each referrer by digest into the target
// repository, with the credentials and transport of the push: through the
// registry's referrers API where it has one, else into the OCI 1.1
// fallback tag sha256-<subject hex> (see sbom.Push). The caller attaches
// one subject's referrers in one call, since the fallback tag is read,
// extended and written back.
func (r *Registry) AttachReferrers(ctx context.Context, subject v1.Descriptor, imgs ...v1.Image) error {
	pusher, err := r.setup(ctx)
	if err != nil {
		return err
	}
	for _, img := range imgs {
		if err := r.pushReferrer(ctx, pusher, img); err != nil {
			return fmt.Errorf("attach a referrer to %s: %w", subject.Digest, redact(explain(err, r.target.Repo, r.login), r.login.secrets))
		}
	}
	return nil
}

// Attached tells whether subject's referrers list every one of imgs and
// the registry holds their manifests. Any doubt (an error, a list too
// long to read) means no.
func (r *Registry) Attached(ctx context.Context, subject v1.Descriptor, imgs ...v1.Image) bool {
	rd, err := r.reader(ctx)
	if err != nil {
		return false
	}
	listed, err := rd.referrers(ctx, subject.Digest)
	if err != nil {
		return false
	}
	digests := make([]v1.Hash, len(imgs))
	for i, img := range imgs {
		d, err := img.Digest()
		if err != nil || !listed[d] {
			return false
		}
		digests[i] = d
	}
	found := make([]bool, len(digests))
	var wg sync.WaitGroup
	for i, d := range digests {
		wg.Go(func() { found[i] = rd.manifestExists(ctx, d) })
	}
	wg.Wait()
	return !slices.Contains(found, false)
}

// pushReferrer pushes one referrer. Builds that push the same image at
// once upload the same referrer blobs at once, and a registry may then
// refuse a manifest for a blob it has not finished linking: that is
// tried again, uploading afresh (not through the pusher, which remembers
// the blobs it saw).
func (r *Registry) pushReferrer(ctx context.Context, pusher *remote.Pusher, img v1.Image) error {
	opts := []remote.Option{remote.Reuse(pusher)}
	for try := 1; ; try++ {
		_, err := sbom.Push(ctx, r.target.Repo, img, opts...)
		if err == nil || try == 3 || !blobNotLinked(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(try) * 300 * time.Millisecond):
		}
		opts = r.ropts
	}
}

// blobNotLinked tells a manifest refused for blobs the registry does not
// (yet) know.
func blobNotLinked(err error) bool {
	var terr *transport.Error
	return errors.As(err, &terr) && (hasCode(terr, transport.ManifestBlobUnknownErrorCode) ||
		hasCode(terr, transport.BlobUnknownErrorCode) || hasCode(terr, transport.DigestInvalidErrorCode))
}

// Attached is false: writing referrers into a layout again is cheap, and
// leaves it as it was.
func (l *Layout) Attached(context.Context, v1.Descriptor, ...v1.Image) bool { return false }

// AttachReferrers writes each referrer into an OCI layout, listed in its
// index.json beside the image (see sbom.WriteLayout); a docker archive
// has no place for them: ErrNoReferrers.
func (l *Layout) AttachReferrers(ctx context.Context, subject v1.Descriptor, imgs ...v1.Image) error {
	if l.out.Kind != OCILayout {
		return ErrNoReferrers
	}
	// index.json is read, extended and written back: one writer at a time.
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, img := range imgs {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := sbom.WriteLayout(layout.Path(l.out.Path), img); err != nil {
			return err
		}
	}
	return nil
}
