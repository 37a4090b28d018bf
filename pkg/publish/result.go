package publish

import (
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/nixery-action/nixery-action/pkg/image"
)

// Result is what was pushed or written; it is the `--json` output.
type Result struct {
	// Image is the repository ("ghcr.io/owner/name"), or the output
	// ("oci:DIR", "docker:FILE").
	Image string `json:"image"`
	// Digest is the index's digest; for a docker archive, which holds one
	// image and no index, the image manifest's.
	Digest string `json:"digest"`
	// Reference pins the push: Image@Digest. Empty for outputs and for
	// images not pushed.
	Reference string `json:"reference,omitempty"`
	// Tags name the index where it went; when Pushed is false, the tags
	// it would have been pushed under.
	Tags []string `json:"tags"`
	// Pushed is false for a build that went nowhere (publish.Discard).
	Pushed bool `json:"pushed"`

	Manifests []ManifestResult `json:"manifests"`

	// Repositories list every repository the index went to (when Pushed
	// is false, would have gone to), Image's first, when there were
	// several (full references in the tags).
	Repositories []RepositoryResult `json:"repositories,omitempty"`

	// ReferrersAttached tells that the destination holds every referrer
	// Write was given (a docker archive, or a build that went nowhere,
	// holds none).
	ReferrersAttached bool `json:"-"`
}

// RepositoryResult is one repository an index was pushed to, or would
// have been: Reference, Image@Digest, is empty then, as Result's is.
type RepositoryResult struct {
	Image     string   `json:"image"`
	Reference string   `json:"reference,omitempty"`
	Tags      []string `json:"tags"`
}

// ManifestResult is one platform's image.
type ManifestResult struct {
	// Platform is named as --platforms names it: "linux/arm64", not
	// "linux/arm64/v8" (see PlatformName).
	Platform string `json:"platform"`
	// OCIPlatform is the platform as the index's descriptor has it.
	OCIPlatform *v1.Platform  `json:"ociPlatform,omitempty"`
	Digest      string        `json:"digest"`
	Layers      []LayerResult `json:"layers"`
}

// PlatformName names p as platforms are requested: os/architecture, and
// the variant where the architecture has several (linux/arm/v7), but not
// arm64's only one, v8.
func PlatformName(p v1.Platform) string {
	name := p.OS + "/" + p.Architecture
	if p.Variant != "" && !(p.Architecture == "arm64" && p.Variant == "v8") {
		name += "/" + p.Variant
	}
	return name
}

// LayerResult is one layer blob of an image.
type LayerResult struct {
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
	// Uploaded is true when this run sent the blob (to the registry, or
	// into the layout or archive), false when it was there already.
	Uploaded bool `json:"uploaded"`
	// Key is the layer's key: the layer plan's for store paths, the
	// customisation's for the customisation layer.
	Key      string   `json:"key,omitempty"`
	Packages []string `json:"packages"`
	// Customisation marks the layer that makes the packages usable from
	// the image's root (symlinks, /tmp, the CA bundle); a build sets it.
	Customisation bool `json:"customisation"`
}

// Describe is the result of an index that is neither pushed nor written
// (a build that only checks that the image can be made): every layer is
// reported as not uploaded.
func Describe(idx v1.ImageIndex) (*Result, error) {
	manifests, _, err := describe(idx)
	if err != nil {
		return nil, err
	}
	digest, err := idx.Digest()
	if err != nil {
		return nil, err
	}
	return &Result{Digest: digest.String(), Tags: []string{}, Manifests: manifests}, nil
}

// WouldPush returns the result of an index not pushed to targets (at
// least one): the repositories and the tags it would have been pushed
// under, as Registries.Write reports a push, the first's as the image's.
func WouldPush(targets []Target, idx v1.ImageIndex) (*Result, error) {
	res, err := Describe(idx)
	if err != nil {
		return nil, err
	}
	res.Image, res.Tags = targets[0].Repo.Name(), targets[0].TagNames()
	if len(targets) > 1 {
		res.Repositories = unpushed(targets)
	}
	return res, nil
}

// unpushed are targets as the repositories of a push that did not
// happen: their names and tags.
func unpushed(targets []Target) []RepositoryResult {
	var out []RepositoryResult
	for _, t := range targets {
		out = append(out, RepositoryResult{Image: t.Repo.Name(), Tags: t.TagNames()})
	}
	return out
}

// describe lists the platforms and layers of idx and its images, in index
// order; the caller fills in Uploaded.
func describe(idx v1.ImageIndex) ([]ManifestResult, []v1.Image, error) {
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, nil, err
	}
	var images []v1.Image
	var out []ManifestResult
	for _, d := range im.Manifests {
		img, err := idx.Image(d.Digest)
		if err != nil {
			return nil, nil, err
		}
		m, err := img.Manifest()
		if err != nil {
			return nil, nil, err
		}
		mr := ManifestResult{Digest: d.Digest.String(), Layers: layerResults(m)}
		if d.Platform != nil {
			mr.Platform, mr.OCIPlatform = PlatformName(*d.Platform), d.Platform
		}
		images = append(images, img)
		out = append(out, mr)
	}
	return out, images, nil
}

// layerResults are the layers of m as its descriptors tell them; none is
// Uploaded.
func layerResults(m *v1.Manifest) []LayerResult {
	out := []LayerResult{}
	for _, l := range m.Layers {
		pkgs := image.LayerPackages(l.Annotations)
		if pkgs == nil {
			pkgs = []string{}
		}
		out = append(out, LayerResult{
			Digest:   l.Digest.String(),
			Size:     l.Size,
			Key:      l.Annotations[image.AnnotationLayerKey],
			Packages: pkgs,
		})
	}
	return out
}

// markUploaded sets Uploaded on every layer whose digest is in sent.
func markUploaded(ms []ManifestResult, sent func(digest string) bool) {
	for i := range ms {
		for j := range ms[i].Layers {
			ms[i].Layers[j].Uploaded = sent(ms[i].Layers[j].Digest)
		}
	}
}
