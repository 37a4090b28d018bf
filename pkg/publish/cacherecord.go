package publish

import (
	"context"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/nixery-action/nixery-action/pkg/cache"
	"github.com/nixery-action/nixery-action/pkg/image"
	"github.com/nixery-action/nixery-action/pkg/registry"
)

// CacheRecorder is a Destination that keeps a cache record (see
// cache.RecordTag). A build reads the record while Nix works and updates
// it after Write. The record is a hint: a failure to update it is not a
// failure of the build, and concurrent builds may each overwrite the
// other's entries.
type CacheRecorder interface {
	// CacheSources are what a build reads its cache from, before any
	// other: the tags pushed to, and the record.
	CacheSources() []name.Reference
	// ReadCacheRecord reads the record as it is now; a missing or
	// unreadable one reads as empty.
	ReadCacheRecord(ctx context.Context) cache.Record
	// RecordCache adds the cache-keyed layers of idx, which Write has
	// pushed, to the record, and returns how many layers it lists (as
	// last read). When seen (what ReadCacheRecord gave) lists them first already,
	// the record is neither read nor written again.
	RecordCache(ctx context.Context, idx v1.ImageIndex, seen cache.Record) (int, error)
}

// CacheSources are the target's tags and its repository's cache record.
func (r *Registry) CacheSources() []name.Reference {
	var refs []name.Reference
	for _, tag := range r.target.Tags {
		refs = append(refs, tag)
	}
	return append(refs, cache.RecordRef(r.target.Repo))
}

// ReadCacheRecord reads the repository's record.
func (r *Registry) ReadCacheRecord(ctx context.Context) cache.Record {
	rd, err := r.reader(ctx)
	if err != nil {
		return cache.Record{}
	}
	return cache.ReadRecord(ctx, rd, cache.RecordRef(r.target.Repo), r.opts.Options)
}

// RecordCache puts the layers of idx before the entries of the record (a
// key listed twice keeps the newer), and pushes the result under
// cache.RecordTag, unless that is the record as it is: a rebuild of an
// unchanged image, found in seen without a request, or in the record as
// read now (seen may be stale; writing from the fresh one loses fewer of
// concurrent builds' entries). An older entry whose blob the registry no
// longer holds makes it refuse the manifest: the record is then written
// again with this build's layers only.
func (r *Registry) RecordCache(ctx context.Context, idx v1.ImageIndex, seen cache.Record) (int, error) {
	pusher, err := r.setup(ctx)
	if err != nil {
		return 0, err
	}
	fresh, err := cache.RecordOf(idx)
	if err != nil {
		return 0, err
	}
	if fresh.Len() == 0 {
		return 0, nil // nothing a later build could reuse
	}
	if rec := fresh.Before(seen); rec.Equal(seen) {
		return rec.Len(), nil
	}
	tag := cache.RecordRef(r.target.Repo)
	old := r.ReadCacheRecord(ctx) // unreadable: start afresh
	rec := fresh.Before(old)
	if rec.Equal(old) {
		return rec.Len(), nil
	}
	err = putRecord(ctx, pusher, tag, rec)
	if err != nil && registry.BlobNotLinked(err) && rec.Len() > fresh.Len() {
		rec = fresh.Before(cache.Record{})
		err = putRecord(ctx, pusher, tag, rec)
	}
	if err != nil {
		return 0, r.login.Explain(err, r.target.Repo)
	}
	return rec.Len(), nil
}

// putRecord uploads the record's config and puts its manifest under tag.
func putRecord(ctx context.Context, pusher *remote.Pusher, tag name.Tag, rec cache.Record) error {
	manifest, err := rec.Manifest()
	if err != nil {
		return err
	}
	if err := pusher.Upload(ctx, tag.Context(), image.EmptyBlob()); err != nil {
		return err
	}
	return pusher.Put(ctx, tag, image.RawManifest{Bytes: manifest, Type: types.OCIManifestSchema1})
}
