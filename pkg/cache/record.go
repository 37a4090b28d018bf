package cache

import (
	"bytes"
	"context"
	"encoding/json"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/nixery-action/nixery-action/pkg/image"
	"github.com/nixery-action/nixery-action/pkg/registry"
)

// RecordTag is the tag of a repository's cache record: an image
// manifest whose layers are the layer blobs the latest builds pushed to
// the repository, each annotated with its cache key as in the images
// themselves. A build reads it like any cache image (Read), so a
// rebuild under a new tag finds the layers that older tags hold.
//
// A tag rather than a referrer: a referrer needs a subject, and the
// record is about the repository, not one image; a tag is readable and
// writable with the same pull and push rights as the images, on every
// registry. It is a plain OCI image manifest rather than an index so that
// Read reads it in three requests.
const RecordTag = "nixery-cache"

// MaxRecordLayers bounds the record: the newest build's layers come
// first, then the older record's, up to this many.
const MaxRecordLayers = 500

// AnnotationRecord marks the record's manifest, so that it is not
// mistaken for an image (its platform is unknown/unknown, as BuildKit
// marks manifests that are not runnable).
const AnnotationRecord = "org.nixery-action.cache-record"

// RecordRef is the tag of repo's cache record.
func RecordRef(repo name.Repository) name.Tag {
	return repo.Tag(RecordTag)
}

// Record is a cache record's layers, newest first.
type Record struct {
	entries []recordEntry
}

// recordEntry is one layer of the record.
type recordEntry struct {
	desc   v1.Descriptor
	diffID v1.Hash
}

// Len is how many layers the record lists.
func (r Record) Len() int { return len(r.entries) }

// RecordOf is the record of idx's cache-keyed layers, in index and layer
// order.
func RecordOf(idx v1.ImageIndex) (Record, error) {
	entries, err := indexEntries(idx)
	return Record{entries: entries}, err
}

// Before is r's layers then older's, each cache key once (the newer
// wins), at most MaxRecordLayers.
func (r Record) Before(older Record) Record {
	return Record{entries: mergeRecord(r.entries, older.entries, MaxRecordLayers)}
}

// Equal tells whether r and o list the same layers in the same order: a
// record written as it is.
func (r Record) Equal(o Record) bool { return sameEntries(r.entries, o.entries) }

// Blobs are the record's config and manifest, as written under RecordTag.
func (r Record) Blobs() (cfg, manifest []byte, err error) { return recordBlobs(r.entries) }

// ReadRecord reads the record under tag with rd, within the registry
// timeout; a record that is missing, unreadable or not one reads as
// empty.
func ReadRecord(ctx context.Context, rd *registry.Reader, tag name.Tag, o registry.Options) Record {
	ctx, cancel := context.WithTimeout(ctx, o.WithDefaults().RegistryTimeout)
	defer cancel()
	raw, mt, err := rd.Manifest(ctx, tag)
	if err != nil || !mt.IsImage() {
		return Record{}
	}
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return Record{}
	}
	cfg, err := rd.Config(ctx, m.Config)
	if err != nil {
		return Record{}
	}
	return Record{entries: layerEntries(m, cfg)}
}

// indexEntries lists the cache-keyed layers of idx's images, in index and
// layer order.
func indexEntries(idx v1.ImageIndex) ([]recordEntry, error) {
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	return manifestEntries(im, func(d v1.Descriptor) (*v1.Manifest, *v1.ConfigFile, error) {
		img, err := idx.Image(d.Digest)
		if err != nil {
			return nil, nil, err
		}
		m, err := img.Manifest()
		if err != nil {
			return nil, nil, err
		}
		cfg, err := img.ConfigFile()
		return m, cfg, err
	})
}

// manifestEntries lists the cache-keyed layers of the images im lists,
// in index and layer order, each image's manifest and config got by read.
func manifestEntries(im *v1.IndexManifest, read func(v1.Descriptor) (*v1.Manifest, *v1.ConfigFile, error)) ([]recordEntry, error) {
	var out []recordEntry
	for _, d := range im.Manifests {
		m, cfg, err := read(d)
		if err != nil {
			return nil, err
		}
		out = append(out, layerEntries(m, cfg)...)
	}
	return out, nil
}

// layerEntries pairs a manifest's cache-keyed layers with their diffIDs;
// an inconsistent image gives none, as in Read.
func layerEntries(m *v1.Manifest, cfg *v1.ConfigFile) []recordEntry {
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		return nil
	}
	var out []recordEntry
	for i, l := range m.Layers {
		key := l.Annotations[image.AnnotationLayerCache]
		if key == "" || !image.IsLayerMediaType(l.MediaType) || l.Size <= 0 {
			continue
		}
		out = append(out, recordEntry{
			desc: v1.Descriptor{
				MediaType: l.MediaType, Digest: l.Digest, Size: l.Size,
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

// recordBlobs is the record's config and manifest.
func recordBlobs(entries []recordEntry) (cfg, manifest []byte, err error) {
	var c recordConfig
	c.Architecture, c.OS = "unknown", "unknown"
	c.RootFS.Type = "layers"
	c.RootFS.DiffIDs = []v1.Hash{}
	m := v1.Manifest{
		SchemaVersion: 2, MediaType: types.OCIManifestSchema1,
		Layers:      []v1.Descriptor{},
		Annotations: map[string]string{AnnotationRecord: "true"},
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
