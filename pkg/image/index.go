package image

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Index is an OCI image index over single-platform images. It implements
// v1.ImageIndex.
type Index struct {
	images []*Image
	raw    []byte
	digest v1.Hash
}

var _ v1.ImageIndex = (*Index)(nil)

// NewIndex builds the index over images. The manifests are listed in a
// canonical platform order (OS, architecture, variant, OS version), so the
// order the caller built them in does not change the index. Annotations
// with an empty value are left out.
func NewIndex(images []*Image, annotations map[string]string) (*Index, error) {
	if len(images) == 0 {
		return nil, fmt.Errorf("index has no images")
	}
	sorted := append([]*Image(nil), images...)
	sort.SliceStable(sorted, func(a, b int) bool {
		return platformLess(sorted[a].platform, sorted[b].platform)
	})
	for n := 1; n < len(sorted); n++ {
		if sorted[n].platform.Equals(sorted[n-1].platform) {
			return nil, fmt.Errorf("index has two images for %s", sorted[n].platform)
		}
	}

	var descs []v1.Descriptor
	for _, img := range sorted {
		p := img.platform
		descs = append(descs, v1.Descriptor{
			MediaType:   types.OCIManifestSchema1,
			Size:        int64(len(img.rawManifest)),
			Digest:      img.digest,
			Platform:    &p,
			Annotations: img.descriptorAnnotations,
		})
	}
	raw, err := RawIndex(descs, annotations)
	if err != nil {
		return nil, err
	}
	digest, _, err := v1.SHA256(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	return &Index{images: sorted, raw: raw, digest: digest}, nil
}

// RawIndex encodes an OCI index over manifests that each have a platform,
// in the canonical platform order. Annotations with an empty value are
// left out. NewIndex uses it, and so does merging per-platform pushes,
// which therefore gives the same bytes as one build of all platforms.
func RawIndex(manifests []v1.Descriptor, annotations map[string]string) ([]byte, error) {
	descs := append([]v1.Descriptor(nil), manifests...)
	for _, d := range descs {
		if d.Platform == nil {
			return nil, fmt.Errorf("manifest %s has no platform", d.Digest)
		}
	}
	sort.SliceStable(descs, func(a, b int) bool { return platformLess(*descs[a].Platform, *descs[b].Platform) })
	m := v1.IndexManifest{
		SchemaVersion: 2,
		MediaType:     types.OCIImageIndex,
		Manifests:     descs,
	}
	for k, v := range annotations {
		if k == "" || strings.TrimSpace(k) != k {
			return nil, fmt.Errorf("annotation key %q is empty or has spaces around it", k)
		}
		if v == "" {
			continue
		}
		if m.Annotations == nil {
			m.Annotations = map[string]string{}
		}
		m.Annotations[k] = v
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode index: %w", err)
	}
	return raw, nil
}

// platformLess orders platforms for the index.
func platformLess(a, b v1.Platform) bool {
	ka := []string{a.OS, a.Architecture, a.Variant, a.OSVersion}
	kb := []string{b.OS, b.Architecture, b.Variant, b.OSVersion}
	for n := range ka {
		if ka[n] != kb[n] {
			return ka[n] < kb[n]
		}
	}
	return false
}

// Images returns the index's images in the index's order.
func (x *Index) Images() []*Image { return append([]*Image(nil), x.images...) }

func (x *Index) MediaType() (types.MediaType, error) { return types.OCIImageIndex, nil }
func (x *Index) Digest() (v1.Hash, error)            { return x.digest, nil }
func (x *Index) Size() (int64, error)                { return int64(len(x.raw)), nil }
func (x *Index) RawManifest() ([]byte, error)        { return x.raw, nil }

// IndexManifest returns a fresh copy of the index manifest.
func (x *Index) IndexManifest() (*v1.IndexManifest, error) {
	return v1.ParseIndexManifest(bytes.NewReader(x.raw))
}

func (x *Index) Image(h v1.Hash) (v1.Image, error) {
	for _, img := range x.images {
		if img.digest == h {
			return img, nil
		}
	}
	return nil, fmt.Errorf("index has no image %s", h)
}

// ImageIndex always fails: an Index holds no nested indexes.
func (x *Index) ImageIndex(h v1.Hash) (v1.ImageIndex, error) {
	return nil, fmt.Errorf("index has no nested index %s", h)
}
