package push

import (
	"bytes"
	"context"
	"encoding/json"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/nixery-action/nixery-action/pkg/image"
)

// CacheRecordTag is the tag of a repository's cache record: an image
// manifest whose layers are the layer blobs the latest builds pushed to
// the repository, each annotated with its cache key as in the images
// themselves. A build reads it like any cache image (ReadCache), so a
// rebuild under a new tag finds the layers that older tags hold.
//
// A tag rather than a referrer: a referrer needs a subject, and the
// record is about the repository, not one image; a tag is readable and
// writable with the same pull and push rights as the images, on every
// registry. It is a plain OCI image manifest rather than an index so that
// ReadCache reads it in three requests.
const CacheRecordTag = "nixery-cache"

// MaxCacheRecordLayers bounds the record: the newest build's layers come
// first, then the older record's, up to this many.
const MaxCacheRecordLayers = 500

// AnnotationCacheRecord marks the record's manifest, so that it is not
// mistaken for an image (its platform is unknown/unknown, as BuildKit
// marks manifests that are not runnable).
const AnnotationCacheRecord = "org.nixery-action.cache-record"

// CacheRecord is the tag of repo's cache record.
func CacheRecord(repo name.Repository) name.Tag {
	return repo.Tag(CacheRecordTag)
}

// CacheRecorder is a Destination that keeps a cache record (see
// CacheRecordTag). A build reads the record while Nix works and updates
// it after Write. The record is a hint: a failure to update it is not a
// failure of the build, and concurrent builds may each overwrite the
// other's entries.
type CacheRecorder interface {
	// CacheSources are what a build reads its cache from, before any
	// other: the tags pushed to, and the record.
	CacheSources() []name.Reference
	// ReadCacheRecord reads the record as it is now; a missing or
	// unreadable one reads as empty.
	ReadCacheRecord(ctx context.Context) CacheRecordSnapshot
	// RecordCache adds the cache-keyed layers of idx, which Write has
	// pushed, to the record, and returns how many layers it lists (as
	// last read). When seen (what ReadCacheRecord gave) lists them first already,
	// the record is neither read nor written again.
	RecordCache(ctx context.Context, idx v1.ImageIndex, seen CacheRecordSnapshot) (int, error)
}

// CacheSources are the target's tags and its repository's cache record.
func (r *Registry) CacheSources() []name.Reference {
	var refs []name.Reference
	for _, tag := range r.target.Tags {
		refs = append(refs, tag)
	}
	return append(refs, CacheRecord(r.target.Repo))
}

// CacheRecordSnapshot is a cache record as read at one time.
type CacheRecordSnapshot struct {
	entries []recordEntry
}

// recordEntry is one layer of the record.
type recordEntry struct {
	desc   v1.Descriptor
	diffID v1.Hash
}

// ReadCacheRecord reads the repository's record.
func (r *Registry) ReadCacheRecord(ctx context.Context) CacheRecordSnapshot {
	return CacheRecordSnapshot{entries: r.readRecord(ctx, CacheRecord(r.target.Repo))}
}

// RecordCache puts the layers of idx before the entries of the record (a
// key listed twice keeps the newer), and pushes the result under
// CacheRecordTag, unless that is the record as it is: a rebuild of an
// unchanged image, found in seen without a request, or in the record as
// read now (seen may be stale; writing from the fresh one loses fewer of
// concurrent builds' entries). An older entry whose blob the registry no
// longer holds makes it refuse the manifest: the record is then written
// again with this build's layers only.
func (r *Registry) RecordCache(ctx context.Context, idx v1.ImageIndex, seen CacheRecordSnapshot) (int, error) {
	pusher, err := r.setup(ctx)
	if err != nil {
		return 0, err
	}
	fresh, err := indexEntries(idx)
	if err != nil {
		return 0, err
	}
	if len(fresh) == 0 {
		return 0, nil // nothing a later build could reuse
	}
	if entries := mergeRecord(fresh, seen.entries, MaxCacheRecordLayers); sameEntries(entries, seen.entries) {
		return len(entries), nil
	}
	tag := CacheRecord(r.target.Repo)
	old := r.readRecord(ctx, tag) // unreadable: start afresh
	entries := mergeRecord(fresh, old, MaxCacheRecordLayers)
	if sameEntries(entries, old) {
		return len(entries), nil
	}
	err = r.putRecord(ctx, pusher, tag, entries)
	if err != nil && blobNotLinked(err) && len(entries) > len(fresh) {
		entries = mergeRecord(fresh, nil, MaxCacheRecordLayers)
		err = r.putRecord(ctx, pusher, tag, entries)
	}
	if err != nil {
		return 0, redact(explain(err, r.target.Repo, r.login), r.login.secrets)
	}
	return len(entries), nil
}

// indexEntries lists the cache-keyed layers of idx's images, in index and
// layer order.
func indexEntries(idx v1.ImageIndex) ([]recordEntry, error) {
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	var out []recordEntry
	for _, d := range im.Manifests {
		img, err := idx.Image(d.Digest)
		if err != nil {
			return nil, err
		}
		m, err := img.Manifest()
		if err != nil {
			return nil, err
		}
		cfg, err := img.ConfigFile()
		if err != nil {
			return nil, err
		}
		out = append(out, layerEntries(m, cfg)...)
	}
	return out, nil
}

// layerEntries pairs a manifest's cache-keyed layers with their diffIDs;
// an inconsistent image gives none, as in ReadCache.
func layerEntries(m *v1.Manifest, cfg *v1.ConfigFile) []recordEntry {
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		return nil
	}
	var out []recordEntry
	for i, l := range m.Layers {
		key := l.Annotations[image.AnnotationLayerCache]
		if key == "" || l.MediaType != image.LayerMediaType || l.Size <= 0 {
			continue
		}
		out = append(out, recordEntry{
			desc: v1.Descriptor{
				MediaType: image.LayerMediaType, Digest: l.Digest, Size: l.Size,
				Annotations: map[string]string{image.AnnotationLayerCache: key},
			},
			diffID: cfg.RootFS.DiffIDs[i],
		})
	}
	return out
}

// mergeRecord is fresh then old, each key once, at most limit entries.
func mergeRecord(fresh, old []recordEntry, limit int) []recordEntry {
	seen := map[string]bool{}
	var out []recordEntry
	for _, list := range [][]recordEntry{fresh, old} {
		for _, e := range list {
			key := e.desc.Annotations[image.AnnotationLayerCache]
			if seen[key] || len(out) == limit {
				continue
			}
			seen[key] = true
			out = append(out, e)
		}
	}
	return out
}

// readRecord reads the record's entries with the bounds of reader; a
// record that is missing, unreadable or not one gives none.
func (r *Registry) readRecord(ctx context.Context, tag name.Tag) []recordEntry {
	ctx, cancel := context.WithTimeout(ctx, r.opts.registryTimeout())
	defer cancel()
	rd, err := r.reader(ctx)
	if err != nil {
		return nil
	}
	raw, mt, err := rd.manifest(ctx, tag)
	if err != nil || !mt.IsImage() {
		return nil
	}
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return nil
	}
	cfg, err := rd.config(ctx, m.Config)
	if err != nil {
		return nil
	}
	return layerEntries(m, cfg)
}

// sameEntries tells whether a and b list the same layers in the same
// order: the record would be written as it is.
func sameEntries(a, b []recordEntry) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		ka, kb := a[i].desc.Annotations[image.AnnotationLayerCache], b[i].desc.Annotations[image.AnnotationLayerCache]
		if ka != kb || a[i].desc.Digest != b[i].desc.Digest || a[i].desc.Size != b[i].desc.Size || a[i].diffID != b[i].diffID {
			return false
		}
	}
	return true
}

// recordConfig is the record's config: a valid image config whose diffIDs
// pair with its layers, for no platform. Nothing varies but the entries,
// so the same entries give the same record.
type recordConfig struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
	RootFS       struct {
		Type    string    `json:"type"`
		DiffIDs []v1.Hash `json:"diff_ids"`
	} `json:"rootfs"`
}

// putRecord uploads the record's config and puts its manifest under tag.
func (r *Registry) putRecord(ctx context.Context, pusher *remote.Pusher, tag name.Tag, entries []recordEntry) error {
	cfg, manifest, err := recordBlobs(entries)
	if err != nil {
		return err
	}
	if err := pusher.Upload(ctx, tag.Context(), static.NewLayer(cfg, types.OCIConfigJSON)); err != nil {
		return err
	}
	return pusher.Put(ctx, tag, image.RawManifest{Bytes: manifest, Type: types.OCIManifestSchema1})
}

// recordBlobs is the record's config and manifest.
func recordBlobs(entries []recordEntry) (cfg, manifest []byte, err error) {
	var c recordConfig
	c.Architecture, c.OS = "unknown", "unknown"
	c.RootFS.Type = "layers"
	c.RootFS.DiffIDs = []v1.Hash{}
	m := v1.Manifest{
		SchemaVersion: 2, MediaType: types.OCIManifestSchema1,
		Layers:      []v1.Descriptor{},
		Annotations: map[string]string{AnnotationCacheRecord: "true"},
	}
	for _, e := range entries {
		c.RootFS.DiffIDs = append(c.RootFS.DiffIDs, e.diffID)
		m.Layers = append(m.Layers, e.desc)
	}
	if cfg, err = json.Marshal(c); err != nil {
		return nil, nil, err
	}
	m.Config = v1.Descriptor{MediaType: types.OCIConfigJSON, Size: int64(len(cfg))}
	if m.Config.Digest, _, err = v1.SHA256(bytes.NewReader(cfg)); err != nil {
		return nil, nil, err
	}
	manifest, err = json.Marshal(m)
	return cfg, manifest, err
}
