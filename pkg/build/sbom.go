package build

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"

	"github.com/nixery-action/nixery-action/pkg/image"
	"github.com/nixery-action/nixery-action/pkg/layers"
	"github.com/nixery-action/nixery-action/pkg/nix"
	"github.com/nixery-action/nixery-action/pkg/popularity"
	"github.com/nixery-action/nixery-action/pkg/provenance"
	"github.com/nixery-action/nixery-action/pkg/publish"
	"github.com/nixery-action/nixery-action/pkg/referrer"
	"github.com/nixery-action/nixery-action/pkg/sbom"
)

// SBOMOptions ask for a CycloneDX SBOM and an in-toto SLSA provenance
// statement for every platform image, attached to it as OCI referrers
// where the destination can hold them (publish.Referrers: a registry, an
// OCI layout). Their only time is the image's creation time
// (Request.Image.Created, SOURCE_DATE_EPOCH).
type SBOMOptions struct {
	// Name is what the documents call the image, e.g. ghcr.io/me/tools;
	// "" means the repository pushed to, else the packages' name.
	Name string
	// ToolVersion is nixery's version.
	ToolVersion string
	// GitHub is the GitHub Actions run that builds, for the provenance;
	// nil outside Actions.
	GitHub *provenance.GitHub
}

// SBOMResult is what was made about one platform image.
type SBOMResult struct {
	Platform string `json:"platform"` // as in Manifests, e.g. linux/arm64
	// Manifest is the platform image's manifest digest: the referrers'
	// subject.
	Manifest   string   `json:"manifest"`
	SBOM       Referrer `json:"sbom"`
	Provenance Referrer `json:"provenance"`
	// File is where the caller saved the SBOM, if it did.
	File string `json:"file,omitempty"`
}

// Referrer is one document and the artifact manifest that attaches it.
type Referrer struct {
	ArtifactType string `json:"artifactType"`
	Digest       string `json:"digest"`   // the artifact manifest's digest
	Document     string `json:"document"` // the document's: sha256 of its bytes
	// Attached is false where the destination holds no referrers (a
	// docker archive, or a build that pushes nothing).
	Attached bool   `json:"attached"`
	Data     []byte `json:"-"` // the document

	image v1.Image
}

// documents makes the SBOM and the provenance of one platform's image,
// whose closure is g, and keeps them until the index is written.
func (b *builder) documents(img *image.Image, g *layers.Graph, res *nix.Result) error {
	o := b.req.SBOM
	name := o.Name
	if name == "" {
		name = b.req.Destination.ImageName()
	}
	if name == "" {
		name = b.req.Spec.Name()
	}
	platform := publish.PlatformName(img.Platform())
	created := b.req.Image.Created
	if created.Unix() == 0 {
		// The epoch stands for "no time" in the image (reproducible):
		// an SBOM and its referrers say none rather than 1970.
		created = time.Time{}
	}
	subject, err := partial.Descriptor(img)
	if err != nil {
		return err
	}
	doc, err := sbom.Generate(g, res.Packages, sbom.Options{Image: name, Platform: platform, Nixpkgs: res.Flake, ToolVersion: o.ToolVersion, Time: created})
	if err != nil {
		return fmt.Errorf("make the SBOM of %s: %w", platform, err)
	}
	sum, _, err := v1.SHA256(bytes.NewReader(doc))
	if err != nil {
		return err
	}
	var flakes []provenance.Flake
	for _, p := range res.Packages {
		if p.Installable != nil {
			flakes = append(flakes, provenance.Flake{Installable: p.Attr, URL: p.Flake.URL})
		}
	}
	settings, err := b.settings(img)
	if err != nil {
		return err
	}
	prov, err := provenance.New(provenance.Options{
		Name: name, Subject: subject.Digest, Nixpkgs: res.Flake, Packages: b.req.Spec.AllPackages(), Flakes: flakes,
		Platform: platform, Version: o.ToolVersion, SBOM: &sum, GitHub: o.GitHub, Settings: settings,
	})
	if err != nil {
		return fmt.Errorf("make the provenance of %s: %w", platform, err)
	}
	r := &SBOMResult{Platform: platform, Manifest: subject.Digest.String()}
	for _, d := range []struct {
		doc referrer.Document
		out *Referrer
	}{{referrer.CycloneDX(doc), &r.SBOM}, {referrer.InToto(prov, provenance.PredicateType), &r.Provenance}} {
		ref, err := referrer.New(*subject, d.doc, created)
		if err != nil {
			return err
		}
		digest, err := ref.Digest()
		if err != nil {
			return err
		}
		docSum, _, err := v1.SHA256(bytes.NewReader(d.doc.Data))
		if err != nil {
			return err
		}
		*d.out = Referrer{ArtifactType: d.doc.ArtifactType, Digest: digest.String(), Document: docSum.String(), Data: d.doc.Data, image: ref}
	}
	b.sbomMu.Lock()
	defer b.sbomMu.Unlock()
	if b.sboms == nil {
		b.sboms = map[v1.Hash]*SBOMResult{}
	}
	b.sboms[subject.Digest] = r
	return nil
}

// attachments are the referrers to write with idx: each platform
// image's SBOM and provenance. The destination writes them before the
// index's names, so a tag never names an image without them.
func (b *builder) attachments(idx v1.ImageIndex) (publish.Attachments, error) {
	if b.req.SBOM == nil {
		return nil, nil
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	refs := publish.Attachments{}
	for _, m := range im.Manifests {
		r := b.sboms[m.Digest]
		if r == nil {
			return nil, fmt.Errorf("no SBOM was made for the image %s", m.Digest)
		}
		refs[m.Digest] = []v1.Image{r.SBOM.image, r.Provenance.image}
	}
	return refs, nil
}

// attachError explains a referrer that could not be written: nothing
// names the image yet. Running again finishes a push to a registry (a
// refusal or a dropped connection may pass); a full disk fails the same
// way again, and says to free space.
func (b *builder) attachError(err error) error {
	var aerr *publish.AttachError
	if !errors.As(err, &aerr) {
		return err
	}
	platform := aerr.Subject.String()
	if r := b.sboms[aerr.Subject]; r != nil {
		platform = r.Platform
	}
	_, layout := b.req.Destination.(*publish.Layout)
	hint := " (run again to finish the push)"
	if layout || errors.Is(err, syscall.ENOSPC) {
		hint = ""
	}
	return fmt.Errorf("attaching the SBOM and provenance of %s to %s failed, so no tag was written%s: %w", platform, b.req.Destination, hint, err)
}

// sbomResults are the documents of each platform image, in the index's
// order, marked attached where the destination holds them.
func (b *builder) sbomResults(idx v1.ImageIndex, res *publish.Result) ([]SBOMResult, error) {
	if b.req.SBOM == nil {
		return nil, nil
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	out := make([]SBOMResult, len(im.Manifests))
	for i, m := range im.Manifests {
		out[i] = *b.sboms[m.Digest]
		out[i].SBOM.Attached, out[i].Provenance.Attached = res.ReferrersAttached, res.ReferrersAttached
	}
	if res.Pushed && !res.ReferrersAttached {
		b.note("%s: %v; the SBOM and provenance are not attached", b.req.Destination, publish.ErrNoReferrers)
	}
	return out, nil
}

// settings are the provenance's record of the choices that shaped img
// beyond its packages: its config as built (defaults and the
// entrypoint taken from an installable included), its annotations and
// how its layers were made.
func (b *builder) settings(img *image.Image) (*provenance.Settings, error) {
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	c := cf.Config
	s := &provenance.Settings{
		Entrypoint: c.Entrypoint, Cmd: c.Cmd, WorkingDir: c.WorkingDir, User: c.User, Labels: c.Labels,
		Annotations: b.req.Image.Annotations,
		Created:     image.FormatCreated(b.req.Image.Created),
		LayerBudget: cmp.Or(b.req.Layers.Budget, layers.DefaultBudget),
		Strategy:    cmp.Or(b.req.Layers.Strategy, layers.DefaultStrategy),
		Compression: fmt.Sprintf("%s:%d", b.req.Pack.Compression, cmp.Or(b.req.Pack.Level, b.req.Pack.Compression.DefaultLevel())),
	}
	for _, kv := range c.Env {
		k, _, _ := strings.Cut(kv, "=")
		s.EnvNames = append(s.EnvNames, k)
	}
	if b.req.Layers.Popularity != nil {
		b.popularityOnce.Do(func() { b.popularityDigest, b.popularityErr = popularity.Digest(b.req.Layers.Popularity) })
		if b.popularityErr != nil {
			return nil, b.popularityErr
		}
		s.Popularity = b.popularityDigest
	}
	return s, nil
}
