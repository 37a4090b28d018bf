package build

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"

	"github.com/nixery-action/nixery-action/pkg/image"
	"github.com/nixery-action/nixery-action/pkg/layers"
	"github.com/nixery-action/nixery-action/pkg/nix"
	"github.com/nixery-action/nixery-action/pkg/provenance"
	"github.com/nixery-action/nixery-action/pkg/push"
	"github.com/nixery-action/nixery-action/pkg/sbom"
)

// SBOMOptions ask for a CycloneDX SBOM and an in-toto SLSA provenance
// statement for every platform image, attached to it as OCI referrers
// where the destination can hold them (push.Referrers: a registry, an
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
		if reg, ok := b.req.Destination.(*push.Registry); ok {
			name = reg.Target().Repo.Name()
		} else {
			name = b.req.Spec.Name()
		}
	}
	platform := push.PlatformName(img.Platform())
	created := b.req.Image.Created
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
	prov, err := provenance.New(provenance.Options{
		Name: name, Subject: subject.Digest, Nixpkgs: res.Flake, Packages: b.req.Spec.Packages,
		Platform: platform, Version: o.ToolVersion, SBOM: &sum, GitHub: o.GitHub,
	})
	if err != nil {
		return fmt.Errorf("make the provenance of %s: %w", platform, err)
	}
	r := &SBOMResult{Platform: platform, Manifest: subject.Digest.String()}
	for _, d := range []struct {
		doc sbom.Document
		out *Referrer
	}{{sbom.CycloneDX(doc), &r.SBOM}, {sbom.InToto(prov, provenance.PredicateType), &r.Provenance}} {
		ref, err := sbom.Referrer(*subject, d.doc, created)
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

// alreadyAttached asks the destination, while the index is being written,
// which platform images have their documents attached already (an
// unchanged image, pushed before): attach skips those. The function it
// returns waits for the answer.
func (b *builder) alreadyAttached(ctx context.Context, idx v1.ImageIndex) func() map[v1.Hash]bool {
	dest, ok := b.req.Destination.(push.Referrers)
	im, err := idx.IndexManifest()
	if b.req.SBOM == nil || !ok || err != nil {
		return func() map[v1.Hash]bool { return nil }
	}
	found := make([]bool, len(im.Manifests))
	var wg sync.WaitGroup
	for i, m := range im.Manifests {
		if r := b.sboms[m.Digest]; r != nil {
			wg.Go(func() { found[i] = dest.Attached(ctx, m, r.SBOM.image, r.Provenance.image) })
		}
	}
	return func() map[v1.Hash]bool {
		wg.Wait()
		out := map[v1.Hash]bool{}
		for i, m := range im.Manifests {
			if found[i] {
				out[m.Digest] = true
			}
		}
		return out
	}
}

// attach attaches each platform's documents to its manifest, once the
// index is written, platforms concurrently (one subject's referrers one
// after the other: a registry without the referrers API keeps them in one
// tag), except where they are attached already. It returns the results
// in the index's order.
func (b *builder) attach(ctx context.Context, idx v1.ImageIndex, already map[v1.Hash]bool) ([]SBOMResult, error) {
	if b.req.SBOM == nil {
		return nil, nil
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	out := make([]SBOMResult, len(im.Manifests))
	for i, m := range im.Manifests {
		r := b.sboms[m.Digest]
		if r == nil {
			return nil, fmt.Errorf("no SBOM was made for the image %s", m.Digest)
		}
		out[i] = *r
	}
	dest, ok := b.req.Destination.(push.Referrers)
	if !ok {
		return out, nil // nothing written, nothing to attach to
	}
	done := b.timings.start(phaseRefs, "")
	defer done()
	errs := make([]error, len(out))
	var wg sync.WaitGroup
	for i, m := range im.Manifests {
		if !already[m.Digest] {
			wg.Go(func() { errs[i] = dest.AttachReferrers(ctx, m, out[i].SBOM.image, out[i].Provenance.image) })
		}
	}
	wg.Wait()
	for i, err := range errs {
		switch {
		case errors.Is(err, push.ErrNoReferrers):
			if i == 0 {
				b.note("%s: %v; the SBOM and provenance are not attached", b.req.Destination, err)
			}
		case err != nil:
			return nil, fmt.Errorf("the image is in %s, but attaching the SBOM and provenance of %s failed (run again to attach them): %w", b.req.Destination, out[i].Platform, err)
		default:
			out[i].SBOM.Attached, out[i].Provenance.Attached = true, true
		}
	}
	return out, nil
}
