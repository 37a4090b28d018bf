package cache

import (
	"bytes"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/nixery-action/nixery-action/pkg/image"
)

// TestSameEntries tells a record to write apart from one as it is.
func TestSameEntries(t *testing.T) {
	e := func(key, digest string) recordEntry {
		return recordEntry{desc: v1.Descriptor{Digest: v1.Hash{Algorithm: "sha256", Hex: digest}, Size: 1, Annotations: map[string]string{image.AnnotationLayerCache: key}}}
	}
	a := []recordEntry{e("k1", "aa"), e("k2", "bb")}
	assert.Check(t, sameEntries(a, []recordEntry{e("k1", "aa"), e("k2", "bb")}))
	assert.Check(t, !sameEntries(a, []recordEntry{e("k2", "bb"), e("k1", "aa")}), "order")
	assert.Check(t, !sameEntries(a, []recordEntry{e("k1", "aa"), e("k2", "cc")}), "digest")
	assert.Check(t, !sameEntries(a, []recordEntry{e("k1", "aa"), e("k3", "bb")}), "key")
	assert.Check(t, !sameEntries(a, a[:1]), "length")
	assert.Check(t, !sameEntries(a, nil), "no record")
	d := e("k1", "aa")
	d.diffID = v1.Hash{Algorithm: "sha256", Hex: "ff"}
	assert.Check(t, !sameEntries(a[:1], []recordEntry{d}), "diffID")
}

// TestMergeRecord puts this build's layers first, each key once, and
// keeps at most the limit.
func TestMergeRecord(t *testing.T) {
	e := func(key string) recordEntry {
		return recordEntry{desc: v1.Descriptor{Annotations: map[string]string{image.AnnotationLayerCache: key}}}
	}
	keys := func(es []recordEntry) []string {
		var out []string
		for _, x := range es {
			out = append(out, x.desc.Annotations[image.AnnotationLayerCache])
		}
		return out
	}
	fresh := []recordEntry{e("c"), e("a")}
	old := []recordEntry{e("a"), e("x"), e("y"), e("z")}
	assert.Check(t, is.DeepEqual(keys(mergeRecord(fresh, old, 10)), []string{"c", "a", "x", "y", "z"}))
	assert.Check(t, is.DeepEqual(keys(mergeRecord(fresh, old, 3)), []string{"c", "a", "x"}))
	assert.Check(t, is.DeepEqual(keys(mergeRecord(fresh, nil, 1)), []string{"c"}))
}

// TestRecordBlobsArtifact: the record is an artifact with the empty
// config, whose layers carry their keys and diffIDs; read back, it lists
// the same entries.
func TestRecordBlobsArtifact(t *testing.T) {
	h := func(c string) v1.Hash { return v1.Hash{Algorithm: "sha256", Hex: strings.Repeat(c, 64)} }
	entries := []recordEntry{
		{desc: v1.Descriptor{MediaType: image.LayerMediaType, Digest: h("a"), Size: 10, Annotations: map[string]string{image.AnnotationLayerCache: "k1"}}, diffID: h("b")},
		{desc: v1.Descriptor{MediaType: image.LayerMediaTypeZstd, Digest: h("c"), Size: 20, Annotations: map[string]string{image.AnnotationLayerCache: "k2"}}, diffID: h("d")},
	}
	raw, err := recordManifest(entries)
	assert.NilError(t, err)
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	assert.NilError(t, err)
	assert.Check(t, is.Equal(m.ArtifactType, RecordArtifactType))
	assert.Check(t, is.DeepEqual(m.Config, image.EmptyDescriptor()))
	assert.Check(t, is.Equal(m.Annotations[AnnotationRecord], "true"))
	assert.Check(t, is.Equal(m.Layers[1].Annotations[AnnotationDiffID], h("d").String()))

	ids, ok := recordDiffIDs(m)
	assert.Assert(t, ok)
	assert.Check(t, sameEntries(layerEntries(m, ids), entries))

	// A layer whose diffID is missing is left out, the others kept.
	delete(m.Layers[0].Annotations, AnnotationDiffID)
	ids, _ = recordDiffIDs(m)
	assert.Check(t, sameEntries(layerEntries(m, ids), entries[1:]))

	// An image (its diffIDs in its config) is no artifact record.
	m.ArtifactType = ""
	_, ok = recordDiffIDs(m)
	assert.Check(t, !ok)
}
