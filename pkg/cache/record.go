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

// RecordTag is the tag of a repository's cache record: an OCI artifact
// (an image manifest with RecordArtifactType and the empty config, so
// that no runtime pulls or runs it, and registry UIs and scanners do not
// take it for an image) whose layers are the layer blobs the latest
// builds pushed to the repository, each annotated with its cache key as
// in the images themselves, and with its diffID (AnnotationDiffID), which
// an image keeps in its config. A build reads it like any cache image
// (Read), so a rebuild under a new tag finds the layers that older tags
// hold. Records that earlier versions wrote, with an image config for
// no platform (unknown/unknown) holding the diffIDs, are read too.
//
// A tag rather than a referrer: a referrer needs a subject, and the
// record is about the repository, not one image; a tag is readable and
// writable with the same pull and push rights as the images, on every
// registry. It is a manifest rather than an index so that Read reads it
// in two requests.
const RecordTag = "nixery-cache"

// RecordArtifactType is the record manifest's artifactType.
const RecordArtifactType = "application/vnd.nixery-action.cache.v1+json"

// AnnotationDiffID is the diffID (the uncompressed tar's digest) of a
// record's layer, on its descriptor.
const AnnotationDiffID = "org.nixery-action.layer.diff-id"

// MaxRecordLayers bounds the record: the newest build's layers come
// first, then the older record's, up to this many.
const MaxRecordLayers = 500

// AnnotationRecord marks the record's manifest, so that it is not
// mistaken for a platform image (nixery merge refuses it); records of
// earlier versions carry it too.
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

// Manifest is the record's manifest, as written under RecordTag; its
// config is image.EmptyBlob.
func (r Record) Manifest() ([]byte, error) { return recordManifest(r.entries) }

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
	if ids, ok := recordDiffIDs(m); ok {
		return Record{entries: layerEntries(m, ids)}
	}
	cfg, err := rd.Config(ctx, m.Config) // a record of an earlier version
	if err != nil {
		return Record{}
	}
	return Record{entries: layerEntries(m, cfg.RootFS.DiffIDs)}
}

// IsRecordArtifact tells a record written as an artifact: its diffIDs
// are on its layers, and its config is empty.
func IsRecordArtifact(m *v1.Manifest) bool {
	return m.ArtifactType == RecordArtifactType && m.Config.MediaType == types.OCIEmptyJSON
}

// recordDiffIDs are the diffIDs of an artifact record's layers, from
// their annotations, in layer order (a zero hash where one is missing or
// malformed); ok is false for any other manifest.
func recordDiffIDs(m *v1.Manifest) (ids []v1.Hash, ok bool) {
	if !IsRecordArtifact(m) {
		return nil, false
	}
	ids = make([]v1.Hash, len(m.Layers))
	for i, l := range m.Layers {
		if h, err := v1.NewHash(l.Annotations[AnnotationDiffID]); err == nil {
			ids[i] = h
		}
	}
	return ids, true
}

// indexEntries lists the cache-keyed layers of idx's images, in index and
// layer order.
func indexEntries(idx v1.ImageIndex) ([]recordEntry, error) {
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	return manifestEntries(im, func(d v1.Descriptor) (*v1.Manifest, []v1.Hash, error) {
		img, err := idx.Image(d.Digest)
		if err != nil {
			return nil, nil, err
		}
		m, err := img.Manifest()
		if err != nil {
			return nil, nil, err
		}
		cfg, err := img.ConfigFile()
		if err != nil {
			return nil, nil, err
		}
		return m, cfg.RootFS.DiffIDs, nil
	})
}

// manifestEntries lists the cache-keyed layers of the images im lists,
// in index and layer order, each image's manifest and its config's
// diffIDs got by read.
func manifestEntries(im *v1.IndexManifest, read func(v1.Descriptor) (*v1.Manifest, []v1.Hash, error)) ([]recordEntry, error) {
	var out []recordEntry
	for _, d := range im.Manifests {
		m, diffIDs, err := read(d)
		if err != nil {
			return nil, err
		}
		out = append(out, layerEntries(m, diffIDs)...)
	}
	return out, nil
}

// layerEntries pairs a manifest's cache-keyed layers with their diffIDs
// (one per layer); an inconsistent image gives none, as in Read.
func layerEntries(m *v1.Manifest, diffIDs []v1.Hash) []recordEntry {
	if len(diffIDs) != len(m.Layers) {
		return nil
	}
	var out []recordEntry
	for i, l := range m.Layers {
		key := l.Annotations[image.AnnotationLayerCache]
		if key == "" || !image.IsLayerMediaType(l.MediaType) || l.Size <= 0 || diffIDs[i] == (v1.Hash{}) {
			continue
		}
		out = append(out, recordEntry{
			desc: v1.Descriptor{
				MediaType: l.MediaType, Digest: l.Digest, Size: l.Size,
				Annotations: map[string]string{image.AnnotationLayerCache: key},
			},
			diffID: diffIDs[i],
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

// recordManifest is the record's manifest: an artifact with the empty
// config, whose layers carry their cache keys and diffIDs. Nothing
// varies but the entries, so the same entries give the same record.
func recordManifest(entries []recordEntry) ([]byte, error) {
	m := v1.Manifest{
		SchemaVersion: 2, MediaType: types.OCIManifestSchema1,
		ArtifactType: RecordArtifactType,
		Config:       image.EmptyDescriptor(),
		Layers:       []v1.Descriptor{},
		Annotations:  map[string]string{AnnotationRecord: "true"},
	}
	for _, e := range entries {
		d := e.desc
		d.Annotations = map[string]string{
			image.AnnotationLayerCache: e.desc.Annotations[image.AnnotationLayerCache],
			AnnotationDiffID:           e.diffID.String(),
		}
		m.Layers = append(m.Layers, d)
	}
	return json.Marshal(m)
}
