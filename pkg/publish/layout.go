package publish

import (
	"context"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Layout writes an OCI image layout or a docker archive (see Write).
type Layout struct {
	out  Output
	opts WriteOptions
	// Note, when set, is told once what Write waits for: another
	// process writing the same OCI layout.
	Note func(string)
}

// NewLayout returns the destination that writes to out.
func NewLayout(out Output, o WriteOptions) *Layout { return &Layout{out: out, opts: o} }

func (l *Layout) String() string                        { return l.out.String() }
func (l *Layout) Offer(context.Context, v1.Layer)       {}
func (l *Layout) Stream(context.Context, *Growing) bool { return false }

// Holds tells whether an OCI layout holds the blob d of size bytes
// already (a docker archive is written whole, and holds nothing before):
// a regular file of that size whose bytes are d's. Unlike a registry, a
// directory checks nothing its files are given, so the bytes are hashed
// (a file of another size is not read); a file that is not d's is
// replaced by the write (see writeLayers).
func (l *Layout) Holds(_ name.Repository, d v1.Hash, size int64) bool {
	return l.out.Kind == OCILayout && holdsBlob(blobPath(l.out.Path, d.String()), d, size)
}
func (l *Layout) ImageName() string { return "" }

// KeepsBlobs tells an OCI layout, which keeps the layers' blob files
// (linked where it can): each is best synced to disk by the goroutine
// that packed it, while others still pack, before index.json names it.
func (l *Layout) KeepsBlobs() bool { return l.out.Kind == OCILayout }
func (l *Layout) Close()           {}

// Write writes idx, then, into an OCI layout, the referrers refs beside
// it; a docker archive has no place for them.
func (l *Layout) Write(ctx context.Context, idx v1.ImageIndex, refs Attachments) (*Result, error) {
	res, err := write(ctx, l.out, idx, l.opts, refs, l.Note)
	if err != nil {
		return nil, err
	}
	res.ReferrersAttached = len(refs) > 0 && l.out.Kind == OCILayout
	return res, nil
}
