package publish

import (
	"context"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Destination is where a build's index goes: a registry repository, an
// OCI layout, a docker archive, or nowhere (a build that only checks).
// A build offers each layer as soon as it is packed, writes the index once
// every platform is done, and closes the destination in any case.
type Destination interface {
	// Check finds, before any work, what would make writing fail: an
	// unreachable registry, refused credentials, an unusable path.
	Check(ctx context.Context) error
	// Offer hands over a layer blob as soon as it is packed, so that a
	// destination can start sending it while other layers are still being
	// packed. It never blocks on the network; failures surface in Write,
	// which sends again whatever an early send did not get there.
	Offer(ctx context.Context, l v1.Layer)
	// Stream starts sending a blob while it is still being packed, and
	// reports whether it did; a destination that cannot (false) is
	// offered the blob once packed.
	Stream(ctx context.Context, g *Growing) bool
	// Holds tells whether the blob d of size bytes, found in the
	// repository repo by the build's cache read, is where the image goes
	// already; Write then neither asks for it nor sends it.
	Holds(repo name.Repository, d v1.Hash, size int64) bool
	// ImageName is what documents about the image (SBOM, provenance)
	// call it: the repository pushed to, or "" where there is none.
	ImageName() string
	// Write writes idx with every blob it needs and, where the
	// destination can hold them, the referrers refs, before the names
	// (tags) that are written last; it reports what it did.
	Write(ctx context.Context, idx v1.ImageIndex, refs Attachments) (*Result, error)
	// Close waits for work started by Offer; after it, no blob file is
	// read any more. Call it after Write, or instead of it on failure.
	Close()
	// String names the destination for people: "ghcr.io/me/tools",
	// "oci:DIR".
	String() string
}

// Discard writes nothing: the build only checks that the image can be
// made, and the result describes it, with the repositories and tags of
// Targets when there are any (where the image would have been pushed,
// the image's repository first).
type Discard struct {
	Targets []Target
}

func (Discard) String() string                             { return "nowhere (not pushed)" }
func (Discard) Offer(context.Context, v1.Layer)            {}
func (Discard) Stream(context.Context, *Growing) bool      { return false }
func (Discard) Holds(name.Repository, v1.Hash, int64) bool { return false }
func (Discard) Close()                                     {}

// ImageName is the repository the image would have gone to, if any.
func (d Discard) ImageName() string {
	if len(d.Targets) > 0 {
		return d.Targets[0].Repo.Name()
	}
	return ""
}

func (d Discard) Write(ctx context.Context, idx v1.ImageIndex, _ Attachments) (*Result, error) {
	// Checking is the whole work here: an interrupted check is no result.
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(d.Targets) > 0 {
		return WouldPush(d.Targets, idx)
	}
	return Describe(idx)
}
