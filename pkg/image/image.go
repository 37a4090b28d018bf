// Package image assembles OCI images from layer blobs that were packed
// elsewhere: one image manifest and config per platform, and one index over
// them all. Everything is built from the layers' known hashes and the
// options, never from the clock or the machine, so the same inputs give
// byte-identical configs, manifests and index.
package image

import (
	"bytes"
	"encoding/json"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Image is a single-platform OCI image. It implements v1.Image; its layers
// read their blobs only when a writer copies them.
type Image struct {
	platform    v1.Platform
	rawConfig   []byte
	rawManifest []byte
	configName  v1.Hash
	digest      v1.Hash
	layers      []blobLayer
	byDigest    map[v1.Hash]blobLayer
	byDiffID    map[v1.Hash]blobLayer
	// descriptorAnnotations go on the image's descriptor in an index.
	descriptorAnnotations map[string]string
}

var _ v1.Image = (*Image)(nil)

// NewImage builds the image for platform p from layers, bottom first: the
// caller passes the plan's order with the customisation layer last.
// An arm64 platform without a variant gets "v8", as registries and
// runtimes expect.
func NewImage(p v1.Platform, layers []Blob, o Options) (*Image, error) {
	p = normalizePlatform(p)
	if p.OS == "" || p.Architecture == "" {
		return nil, fmt.Errorf("platform %q needs an OS and an architecture", p)
	}
	if len(layers) == 0 {
		return nil, fmt.Errorf("image for %s has no layers", p)
	}
	img := &Image{
		platform: p,
		byDigest: map[v1.Hash]blobLayer{},
		byDiffID: map[v1.Hash]blobLayer{},
	}
	for _, l := range layers {
		if err := l.check(); err != nil {
			return nil, fmt.Errorf("image for %s: %w", p, err)
		}
		if _, dup := img.byDigest[l.Digest]; dup {
			return nil, fmt.Errorf("image for %s: layer %s is given twice", p, l.Digest)
		}
		bl := blobLayer{l}
		img.layers = append(img.layers, bl)
		img.byDigest[l.Digest] = bl
		img.byDiffID[l.DiffID] = bl
	}

	cf, err := configFile(p, layers, o)
	if err != nil {
		return nil, fmt.Errorf("image for %s: %w", p, err)
	}
	if img.rawConfig, err = json.Marshal(cf); err != nil {
		return nil, fmt.Errorf("image for %s: encode config: %w", p, err)
	}
	var cfgSize int64
	if img.configName, cfgSize, err = v1.SHA256(bytes.NewReader(img.rawConfig)); err != nil {
		return nil, err
	}

	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		Config: v1.Descriptor{
			MediaType: types.OCIConfigJSON,
			Size:      cfgSize,
			Digest:    img.configName,
		},
		Annotations: nonEmpty(o.Annotations),
	}
	img.descriptorAnnotations = nonEmpty(o.DescriptorAnnotations)
	for _, l := range layers {
		m.Layers = append(m.Layers, v1.Descriptor{
			MediaType:   l.mediaType(),
			Size:        l.Size,
			Digest:      l.Digest,
			Annotations: l.annotations(),
		})
	}
	if img.rawManifest, err = json.Marshal(m); err != nil {
		return nil, fmt.Errorf("image for %s: encode manifest: %w", p, err)
	}
	if img.digest, _, err = v1.SHA256(bytes.NewReader(img.rawManifest)); err != nil {
		return nil, err
	}
	return img, nil
}

// Platform returns the platform the image was built for, normalized.
func (i *Image) Platform() v1.Platform { return i.platform }

func (i *Image) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }
func (i *Image) Size() (int64, error)                { return int64(len(i.rawManifest)), nil }
func (i *Image) Digest() (v1.Hash, error)            { return i.digest, nil }
func (i *Image) ConfigName() (v1.Hash, error)        { return i.configName, nil }
func (i *Image) RawManifest() ([]byte, error)        { return i.rawManifest, nil }
func (i *Image) RawConfigFile() ([]byte, error)      { return i.rawConfig, nil }

// ConfigFile returns a fresh copy of the config, which the caller may change.
func (i *Image) ConfigFile() (*v1.ConfigFile, error) {
	return v1.ParseConfigFile(bytes.NewReader(i.rawConfig))
}

// Manifest returns a fresh copy of the manifest, which the caller may change.
func (i *Image) Manifest() (*v1.Manifest, error) {
	return v1.ParseManifest(bytes.NewReader(i.rawManifest))
}

func (i *Image) Layers() ([]v1.Layer, error) {
	ls := make([]v1.Layer, len(i.layers))
	for n, l := range i.layers {
		ls[n] = l
	}
	return ls, nil
}

func (i *Image) LayerByDigest(h v1.Hash) (v1.Layer, error) {
	if l, ok := i.byDigest[h]; ok {
		return l, nil
	}
	if h == i.configName {
		return partial.ConfigLayer(i)
	}
	return nil, fmt.Errorf("image for %s has no layer %s", i.platform, h)
}

func (i *Image) LayerByDiffID(h v1.Hash) (v1.Layer, error) {
	if l, ok := i.byDiffID[h]; ok {
		return l, nil
	}
	return nil, fmt.Errorf("image for %s has no layer with diffID %s", i.platform, h)
}

// normalizePlatform fills in the variant that arm64 images carry.
func normalizePlatform(p v1.Platform) v1.Platform {
	if p.Architecture == "arm64" && p.Variant == "" {
		p.Variant = "v8"
	}
	return p
}
