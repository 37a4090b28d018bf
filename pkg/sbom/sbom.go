// Package sbom describes an image's Nix closure as a CycloneDX 1.6 JSON
// SBOM, and attaches documents about an image (SBOMs, provenance) to it as
// OCI 1.1 referrers, in a registry or an OCI layout.
//
// The SBOM has one component per store path of the closure (name and
// version split as nixpkgs names them, a purl, the store path and narHash
// as properties of the registered nix taxonomy), the requested packages as
// the image's direct dependencies, with what their meta says of licences,
// homepage and description, and the dependency graph from the store
// paths' references. It is a function of its inputs alone: the same
// closure gives the same bytes, its serial number is derived from its
// content, and its only time is the one it is given (SOURCE_DATE_EPOCH).
package sbom

import (
	"bytes"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/github/go-spdx/v2/spdxexp"
	"github.com/github/go-spdx/v2/spdxexp/spdxlicenses"
	"github.com/google/uuid"
	"github.com/package-url/packageurl-go"

	"github.com/nixery-action/nixery-action/pkg/flakeref"
	"github.com/nixery-action/nixery-action/pkg/layers"
	"github.com/nixery-action/nixery-action/pkg/nix"
	"github.com/nixery-action/nixery-action/pkg/referrer"
)

// MediaType is the media type of a CycloneDX JSON document, the artifact
// type its referrer carries.
const MediaType = referrer.CycloneDXMediaType

// Options describe the image an SBOM is for.
type Options struct {
	// Image names the image, e.g. ghcr.io/me/tools: the BOM's
	// metadata.component. Empty means "image".
	Image string
	// Platform is the image's platform, e.g. linux/arm64.
	Platform string
	// Nixpkgs is the locked nixpkgs flake reference the packages came from.
	Nixpkgs string
	// ToolVersion is nixery's version, named as the BOM's tool.
	ToolVersion string
	// Time is the BOM's timestamp: SOURCE_DATE_EPOCH. Zero leaves the
	// timestamp out, so that no other time can enter the document.
	Time time.Time
}

// Property names. nix:* are the nix namespace of the CycloneDX property
// taxonomy (defined in the Nixpkgs manual); nixery:* are this tool's.
const (
	propStorePath = "nix:store_path"
	propNarHash   = "nix:narinfo:nar_hash"
	propNarSize   = "nix:narinfo:nar_size"
	propAttribute = "nixery:attribute"
	propOutput    = "nixery:output"
	propPlatform  = "nixery:platform"
	propNixpkgs   = "nixery:nixpkgs"
	propFlake     = "nixery:flake"
	propFlakeRev  = "nixery:flake:revision"
)

// rootRef is the bom-ref of the image; store paths cannot collide with it.
const rootRef = "image"

// serialNamespace turns a BOM's content into its serial number (a name-
// based UUID), so that the same content always has the same one.
var serialNamespace = uuid.NewSHA1(uuid.NameSpaceURL, []byte("https://github.com/nixery-action/nixery-action/sbom"))

// Generate returns the CycloneDX 1.6 JSON SBOM of the closure g, whose
// requested packages are pkgs (their outputs must be paths of g).
func Generate(g *layers.Graph, pkgs []nix.Package, o Options) ([]byte, error) {
	if g == nil || len(g.Paths) == 0 {
		return nil, fmt.Errorf("sbom: the closure is empty")
	}
	requested, err := requestedPaths(g, pkgs)
	if err != nil {
		return nil, err
	}

	components := make([]cdx.Component, len(g.Paths))
	deps := make([]cdx.Dependency, 0, len(g.Paths)+1)
	var rootDeps []string
	for i, p := range g.Paths {
		c, err := component(p, requested[i])
		if err != nil {
			return nil, err
		}
		components[i] = c
		d := cdx.Dependency{Ref: p.Name}
		if len(g.Refs[i]) > 0 {
			on := make([]string, len(g.Refs[i]))
			for k, r := range g.Refs[i] {
				on[k] = g.Paths[r].Name
			}
			d.Dependencies = &on
		}
		deps = append(deps, d)
		if requested[i] != nil {
			rootDeps = append(rootDeps, p.Name)
		}
	}
	if len(pkgs) == 0 {
		// Nothing was named: the image holds the closure's roots.
		for _, i := range g.Roots {
			rootDeps = append(rootDeps, g.Paths[i].Name)
		}
	}
	// Paths are sorted by name, so components and dependencies are too.
	deps = append([]cdx.Dependency{{Ref: rootRef, Dependencies: &rootDeps}}, deps...)
	all := make([]cdx.BOMReference, 0, len(deps))
	for _, d := range deps {
		all = append(all, cdx.BOMReference(d.Ref))
	}

	image := o.Image
	if image == "" {
		image = "image"
	}
	root := &cdx.Component{
		BOMRef:     rootRef,
		Type:       cdx.ComponentTypeContainer,
		Name:       image,
		Properties: properties(propPlatform, o.Platform, propNixpkgs, flakeref.Redacted(o.Nixpkgs)),
	}
	tool := cdx.Component{Type: cdx.ComponentTypeApplication, Name: "nixery", Version: o.ToolVersion,
		ExternalReferences: &[]cdx.ExternalReference{{Type: cdx.ERTypeVCS, URL: "https://github.com/nixery-action/nixery-action"}}}
	bom := &cdx.BOM{
		BOMFormat:   cdx.BOMFormat,
		SpecVersion: cdx.SpecVersion1_6,
		JSONSchema:  jsonSchema,
		Version:     1,
		Metadata: &cdx.Metadata{
			Tools:     &cdx.ToolsChoice{Components: &[]cdx.Component{tool}},
			Component: root,
		},
		Components:   &components,
		Dependencies: &deps,
		// A Nix closure is complete by construction: every reference
		// of every path is in it.
		Compositions: &[]cdx.Composition{{Aggregate: cdx.CompositionAggregateComplete, Dependencies: &all}},
	}
	if !o.Time.IsZero() {
		bom.Metadata.Timestamp = o.Time.UTC().Format(time.RFC3339)
	}

	content, err := encode(bom)
	if err != nil {
		return nil, err
	}
	bom.SerialNumber = "urn:uuid:" + uuid.NewSHA1(serialNamespace, content).String()
	return encode(bom)
}

// jsonSchema is CycloneDX 1.6's JSON schema, as the library names it.
const jsonSchema = "http://cyclonedx.org/schema/bom-1.6.schema.json"

// encode writes bom as it is: every field it uses is in CycloneDX 1.6.
// The library's EncodeVersion would give the same bytes, but it first
// deep-copies the BOM through encoding/gob, which cost more than the rest
// of an image rebuild from cache (TestEncodeAsVersion holds the two equal).
func encode(bom *cdx.BOM) ([]byte, error) {
	var buf bytes.Buffer
	enc := cdx.NewBOMEncoder(&buf, cdx.BOMFileFormatJSON)
	enc.SetPretty(true)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(bom); err != nil {
		return nil, fmt.Errorf("sbom: encoding CycloneDX JSON: %w", err)
	}
	return buf.Bytes(), nil
}

// request is what the requested packages say of one store path.
type request struct {
	attrs  []string
	output string
	meta   []*nix.Meta
	flakes []*nix.Locked // of installables: the flake each came from
}

// requestedPaths maps each path index of g that a package asked for to
// the attributes and output that name it.
func requestedPaths(g *layers.Graph, pkgs []nix.Package) (map[int]*request, error) {
	sorted := append([]nix.Package(nil), pkgs...)
	sort.SliceStable(sorted, func(a, b int) bool { return sorted[a].Attr < sorted[b].Attr })
	out := map[int]*request{}
	for _, p := range sorted {
		outputs := make([]string, 0, len(p.Outputs))
		for o := range p.Outputs {
			outputs = append(outputs, o)
		}
		sort.Strings(outputs)
		for _, o := range outputs {
			i, ok := g.Index(p.Outputs[o])
			if !ok {
				return nil, fmt.Errorf("sbom: %s (output %s of %s) is not in the closure: pass the closure of every requested package", p.Outputs[o], o, p.Attr)
			}
			r := out[i]
			if r == nil {
				r = &request{output: o}
				out[i] = r
			}
			r.attrs = append(r.attrs, p.Attr)
			r.meta = append(r.meta, p.Meta)
			if p.Flake != nil && !slices.ContainsFunc(r.flakes, func(f *nix.Locked) bool { return f.URL == p.Flake.URL }) {
				r.flakes = append(r.flakes, p.Flake)
			}
		}
	}
	return out, nil
}

// component describes one store path; req is non-nil for requested ones.
func component(p layers.Path, req *request) (cdx.Component, error) {
	output := ""
	if req != nil {
		output = req.output
	}
	n := ParseName(p.Name, output)
	if req != nil {
		n = withMeta(n, req.meta)
	}
	c := cdx.Component{
		BOMRef:     p.Name,
		Type:       cdx.ComponentTypeLibrary,
		Name:       n.Name,
		Version:    n.Version,
		PackageURL: purl(n, p.Name),
	}
	props := []string{propStorePath, p.Name, propNarSize, strconv.FormatUint(p.NarSize, 10), propOutput, n.Output}
	if p.NarHash != "" {
		sum, err := narHashHex(p.NarHash)
		if err != nil {
			return c, fmt.Errorf("sbom: %s: %w", p.Name, err)
		}
		c.Hashes = &[]cdx.Hash{{Algorithm: cdx.HashAlgoSHA256, Value: sum}}
		props = append(props, propNarHash, p.NarHash)
	}
	if req != nil {
		c.Type = cdx.ComponentTypeApplication
		for _, a := range req.attrs {
			props = append(props, propAttribute, flakeref.Redacted(a))
		}
		for _, f := range req.flakes {
			props = append(props, propFlake, flakeref.Redacted(f.URL), propFlakeRev, f.Rev)
		}
		describe(&c, req.meta)
	}
	c.Properties = properties(props...)
	return c, nil
}

// withMeta is n with the name and version the package evaluated to
// (pname and version), which its store path's name cannot always tell
// apart: font-adobe-100dpi-1.0.4 splits after "font-adobe". The output
// stays n's: the one the package was asked for.
func withMeta(n Name, metas []*nix.Meta) Name {
	for _, m := range metas {
		if m != nil && m.Name != "" {
			n.Name, n.Version = m.Name, m.Version
			return n
		}
	}
	return n
}

// purl identifies a store path. The purl specification has no nix type
// (it is a candidate, not defined), so this is the generic type with the
// store path, which alone identifies the package, as a qualifier.
func purl(n Name, storePath string) string {
	q := map[string]string{"store_path": storePath}
	if n.Output != "" {
		q["output"] = n.Output
	}
	return packageurl.NewPackageURL(packageurl.TypeGeneric, "", n.Name, n.Version, packageurl.QualifiersFromMap(q), "").ToString()
}

// SPDXID is id as the SPDX license list spells it, and whether it is on
// the list (active or deprecated): CycloneDX takes only those as ids, so
// anything else (a licence of nixpkgs' own, LicenseRef-s) is a name.
func SPDXID(id string) (string, bool) {
	if ok, canonical := spdxexp.ActiveLicense(id); ok {
		return canonical, true
	}
	if ok, canonical := spdxlicenses.IsDeprecatedLicense(id); ok {
		return canonical, true
	}
	return "", false
}

// describe adds what the requested packages' meta say: the first
// description and homepage, and every licence once.
func describe(c *cdx.Component, metas []*nix.Meta) {
	var licenses cdx.Licenses
	seen := map[string]bool{}
	for _, m := range metas {
		if m == nil {
			continue
		}
		if c.Description == "" {
			c.Description = m.Description
		}
		if c.ExternalReferences == nil && isURL(m.Homepage) {
			c.ExternalReferences = &[]cdx.ExternalReference{{Type: cdx.ERTypeWebsite, URL: m.Homepage}}
		}
		for _, l := range m.Licenses {
			var lic cdx.License
			id, listed := SPDXID(l.SPDXID)
			switch {
			case listed:
				lic.ID = id
			case l.Name != "":
				lic.Name = l.Name
			case l.SPDXID != "":
				lic.Name = l.SPDXID
			default:
				continue
			}
			key := lic.ID + "\x00" + lic.Name
			if !seen[key] {
				seen[key] = true
				licenses = append(licenses, cdx.LicenseChoice{License: &lic})
			}
		}
	}
	if len(licenses) > 0 {
		c.Licenses = &licenses
	}
}

func isURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" && !strings.ContainsAny(s, " \t\n")
}

// properties makes a property list from name/value pairs, leaving out
// empty values, sorted by name and value.
func properties(kv ...string) *[]cdx.Property {
	var props []cdx.Property
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			props = append(props, cdx.Property{Name: kv[i], Value: kv[i+1]})
		}
	}
	if len(props) == 0 {
		return nil
	}
	sort.Slice(props, func(a, b int) bool {
		if props[a].Name != props[b].Name {
			return props[a].Name < props[b].Name
		}
		return props[a].Value < props[b].Value
	})
	return &props
}
