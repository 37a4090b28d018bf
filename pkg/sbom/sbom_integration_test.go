//go:build integration

package sbom

import (
	"bytes"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/package-url/packageurl-go"
	"gotest.tools/v3/assert"

	"github.com/nixery-action/nixery-action/internal/cdxvalidate"
	"github.com/nixery-action/nixery-action/pkg/layers"
)

func TestGenerateOddNames(t *testing.T) {
	g := graphOf(t, oddClosure)
	doc, err := Generate(g, oddPackages, Options{Image: "registry.example/tools", Platform: "linux/amd64", Nixpkgs: "github:NixOS/nixpkgs/0123456789abcdef0123456789abcdef01234567", ToolVersion: "v1.2.3", Time: epoch})
	assert.NilError(t, err)
	cdxvalidate.Validate(t, doc)
	bom := decode(t, doc)

	assert.Equal(t, bom.SpecVersion, cdx.SpecVersion1_6)
	assert.Equal(t, bom.Metadata.Timestamp, "2023-11-14T22:13:20Z")
	assert.Equal(t, bom.Metadata.Component.Name, "registry.example/tools")
	assert.Equal(t, (*bom.Metadata.Tools.Components)[0].Version, "v1.2.3")

	// One component per store path, named as nixpkgs names them.
	type summary struct{ Name, Version, Output, Type string }
	got := map[string]summary{}
	comps := map[string]cdx.Component{}
	for _, c := range *bom.Components {
		p, err := packageurl.FromString(c.PackageURL)
		assert.NilError(t, err, c.PackageURL)
		assert.Equal(t, p.Type, "generic")
		assert.Equal(t, p.Name, c.Name)
		assert.Equal(t, p.Version, c.Version)
		q := p.Qualifiers.Map()
		assert.Equal(t, q["store_path"], c.BOMRef)
		assert.Equal(t, prop(c, "nix:store_path"), c.BOMRef)
		assert.Equal(t, prop(c, "nixery:output"), q["output"])
		got[strings.TrimPrefix(c.BOMRef, store)[33:]] = summary{c.Name, c.Version, q["output"], string(c.Type)}
		comps[c.BOMRef] = c
	}
	assert.DeepEqual(t, got, map[string]summary{
		"openssl-3.0.13":             {"openssl", "3.0.13", "", "library"},
		"openssl-3.0.13-bin":         {"openssl", "3.0.13", "bin", "application"},
		"openssl-3.0.13-man":         {"openssl", "3.0.13", "man", "application"},
		"python3.12-requests-2.31.0": {"python3.12-requests", "2.31.0", "", "application"},
		"glibc-2.39-52":              {"glibc", "2.39-52", "", "library"},
		"iana-etc":                   {"iana-etc", "", "", "library"},
		"hello":                      {"hello", "", "", "application"},
		"libsigc++-3.6.0":            {"libsigc++", "3.6.0", "", "application"},
	})
	assert.Equal(t, len(*bom.Components), len(oddClosure))

	// Hashes from every narHash form, and the sizes.
	const sum = "07e6daee00167e99c5312ce9291e8d12780a822d60e0d049b2f58b5b4430e30f"
	for _, i := range []string{"1-openssl-3.0.13", "2-openssl-3.0.13-bin", "3-openssl-3.0.13-man"} {
		c := comps[store+"0000000000000000000000000000000"+i]
		assert.DeepEqual(t, *c.Hashes, []cdx.Hash{{Algorithm: cdx.HashAlgoSHA256, Value: sum}})
		assert.Assert(t, prop(c, "nix:narinfo:nar_hash") != "")
	}
	assert.Equal(t, prop(comps[store+"00000000000000000000000000000006-iana-etc"], "nix:narinfo:nar_size"), "600")
	assert.Assert(t, comps[store+"00000000000000000000000000000006-iana-etc"].Hashes == nil)

	// What the evaluation knows of requested packages; the homepage that
	// is not a URL and the empty licence are left out, and two attributes
	// naming one path are both recorded.
	hello := comps[store+"00000000000000000000000000000007-hello"]
	assert.Equal(t, hello.Description, "Says hello")
	assert.Assert(t, hello.ExternalReferences == nil)
	assert.DeepEqual(t, *hello.Licenses, cdx.Licenses{
		{License: &cdx.License{ID: "GPL-3.0-or-later"}},
		{License: &cdx.License{Name: "Custom terms"}},
		{License: &cdx.License{Name: "LicenseRef-mine"}},
	})
	assert.DeepEqual(t, props(hello, "nixery:attribute"), []string{"hello", "helloAlias"})
	ssl := comps[store+"00000000000000000000000000000002-openssl-3.0.13-bin"]
	assert.Equal(t, ssl.Description, "Cryptographic library")
	assert.DeepEqual(t, *ssl.ExternalReferences, []cdx.ExternalReference{{Type: cdx.ERTypeWebsite, URL: "https://www.openssl.org/"}})
	assert.Assert(t, comps[store+"00000000000000000000000000000001-openssl-3.0.13"].Licenses == nil)

	// The graph: the image depends on the requested outputs, every path
	// on its references (self references dropped).
	deps := map[string][]string{}
	for _, d := range *bom.Dependencies {
		deps[d.Ref] = nil
		if d.Dependencies != nil {
			deps[d.Ref] = *d.Dependencies
		}
	}
	assert.DeepEqual(t, deps[bom.Metadata.Component.BOMRef], []string{
		store + "00000000000000000000000000000002-openssl-3.0.13-bin",
		store + "00000000000000000000000000000003-openssl-3.0.13-man",
		store + "00000000000000000000000000000004-python3.12-requests-2.31.0",
		store + "00000000000000000000000000000007-hello",
		store + "00000000000000000000000000000008-libsigc++-3.6.0",
	})
	for _, info := range oddClosure {
		var want []string
		for _, r := range info["references"].([]string) {
			if r != info["path"] {
				want = append(want, r)
			}
		}
		sort.Strings(want)
		assert.DeepEqual(t, deps[info["path"].(string)], want)
	}
	assert.Equal(t, len(deps), len(oddClosure)+1)
}

// Realistic closures (Debian packages laid out as a Nix store) give valid
// SBOMs; without requested packages the image holds the closure's roots.
func TestGenerateFixtures(t *testing.T) {
	var docs [][]byte
	for _, name := range []string{"shell-hello-busybox.json", "debian-podman.json", "debian-gimp.json"} {
		data, err := os.ReadFile(filepath.Join("..", "layers", "testdata", name))
		assert.NilError(t, err)
		g, err := layers.ParseGraph(data)
		assert.NilError(t, err)
		doc, err := Generate(g, nil, Options{Image: "fixture", Time: epoch})
		assert.NilError(t, err, name)
		bom := decode(t, doc)
		assert.Equal(t, len(*bom.Components), len(g.Paths), name)
		root := (*bom.Dependencies)[0]
		assert.Equal(t, root.Ref, bom.Metadata.Component.BOMRef)
		assert.Equal(t, len(*root.Dependencies), len(g.Roots), name)
		docs = append(docs, doc)
	}
	cdxvalidate.Validate(t, docs...)
}

// The validator is not a formality: it rejects what the schema forbids.
func TestValidatorRejects(t *testing.T) {
	doc, err := Generate(graphOf(t, oddClosure), oddPackages, Options{})
	assert.NilError(t, err)
	edits := [][2]string{
		{`"type": "library"`, `"type": "shared-object"`},                    // no such component type
		{`"id": "GPL-3.0-or-later"`, `"id": "GPL-3-ish"`},                   // no such SPDX id
		{`"bomFormat"`, `"colour": "blue", "bomFormat"`},                    // no such field
		{`"hashes": [`, `"hashes": [{"alg": "SHA-256", "content": "xyz"},`}, // not a SHA-256
	}
	docs := [][]byte{doc}
	for _, edit := range edits {
		bad := bytes.Replace(doc, []byte(edit[0]), []byte(edit[1]), 1)
		assert.Assert(t, !bytes.Equal(bad, doc), edit[0])
		docs = append(docs, bad)
	}
	verdicts := cdxvalidate.Check(t, docs...)
	assert.NilError(t, verdicts[0])
	for i, edit := range edits {
		assert.Assert(t, verdicts[i+1] != nil, "the validator accepted %s", edit[1])
	}
}

func prop(c cdx.Component, name string) string {
	if v := props(c, name); len(v) > 0 {
		return v[0]
	}
	return ""
}

func props(c cdx.Component, name string) []string {
	var out []string
	if c.Properties != nil {
		for _, p := range *c.Properties {
			if p.Name == name {
				out = append(out, p.Value)
			}
		}
	}
	return out
}
