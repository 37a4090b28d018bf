package sbom

import (
	"bytes"
	"encoding/json"
	"regexp"
	"sort"
	"testing"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/nixery-action/nixery-action/pkg/layers"
	"github.com/nixery-action/nixery-action/pkg/nix"
	"github.com/nixery-action/nixery-action/pkg/spec"
)

const store = "/nix/store/"

// oddClosure has the names that are hard to split: several outputs of one
// package, no versions, dots and dashes, and every form of narHash.
var oddClosure = []map[string]any{
	{"path": store + "00000000000000000000000000000001-openssl-3.0.13", "narSize": 100, "narHash": "sha256-B+ba7gAWfpnFMSzpKR6NEngKgi1g4NBJsvWLW0Qw4w8=", "references": []string{store + "00000000000000000000000000000005-glibc-2.39-52"}},
	{"path": store + "00000000000000000000000000000002-openssl-3.0.13-bin", "narSize": 200, "narHash": "sha256:03z36125p2zmn94x1q305n10ly0jilg2ks9c672rjzhn03pdmrh7", "references": []string{store + "00000000000000000000000000000001-openssl-3.0.13", store + "00000000000000000000000000000002-openssl-3.0.13-bin"}},
	{"path": store + "00000000000000000000000000000003-openssl-3.0.13-man", "narSize": 300, "narHash": "sha256:07e6daee00167e99c5312ce9291e8d12780a822d60e0d049b2f58b5b4430e30f", "references": []string{}},
	{"path": store + "00000000000000000000000000000004-python3.12-requests-2.31.0", "narSize": 400, "references": []string{store + "00000000000000000000000000000006-iana-etc"}},
	{"path": store + "00000000000000000000000000000005-glibc-2.39-52", "narSize": 500, "references": []string{}},
	{"path": store + "00000000000000000000000000000006-iana-etc", "narSize": 600, "references": []string{}},
	{"path": store + "00000000000000000000000000000007-hello", "narSize": 700, "references": []string{store + "00000000000000000000000000000005-glibc-2.39-52"}},
	{"path": store + "00000000000000000000000000000008-libsigc++-3.6.0", "narSize": 800, "references": []string{}},
}

var oddPackages = []nix.Package{
	{Attr: "openssl", Outputs: map[string]string{"bin": store + "00000000000000000000000000000002-openssl-3.0.13-bin", "man": store + "00000000000000000000000000000003-openssl-3.0.13-man"},
		Meta: &nix.Meta{Description: "Cryptographic library", Homepage: "https://www.openssl.org/", Licenses: []nix.License{{SPDXID: "Apache-2.0", Name: "Apache License 2.0"}}}},
	{Attr: "python3Packages.requests", Outputs: map[string]string{"out": store + "00000000000000000000000000000004-python3.12-requests-2.31.0"}},
	{Attr: "hello", Outputs: map[string]string{"out": store + "00000000000000000000000000000007-hello"},
		Meta: &nix.Meta{Homepage: "not a url", Licenses: []nix.License{{SPDXID: "GPL-3.0-or-later"}, {Name: "Custom terms"}, {SPDXID: "LicenseRef-mine"}, {}}}},
	{Attr: "helloAlias", Outputs: map[string]string{"out": store + "00000000000000000000000000000007-hello"},
		Meta: &nix.Meta{Description: "Says hello", Licenses: []nix.License{{SPDXID: "GPL-3.0-or-later"}}}},
	{Attr: "sigc", Outputs: map[string]string{"out": store + "00000000000000000000000000000008-libsigc++-3.6.0"}},
}

func graphOf(t *testing.T, closure any) *layers.Graph {
	t.Helper()
	data, err := json.Marshal(closure)
	assert.NilError(t, err)
	g, err := layers.ParseGraph(data)
	assert.NilError(t, err)
	return g
}

func decode(t *testing.T, doc []byte) *cdx.BOM {
	t.Helper()
	var bom cdx.BOM
	assert.NilError(t, cdx.NewBOMDecoder(bytes.NewReader(doc), cdx.BOMFileFormatJSON).Decode(&bom))
	return &bom
}

var epoch = time.Unix(1700000000, 0)

// The same inputs give the same bytes, whatever order Nix listed the
// closure and the packages in; the serial number follows the content; no
// time but the one given appears.
func TestGenerateDeterministic(t *testing.T) {
	o := Options{Platform: "linux/arm64", ToolVersion: "v1", Time: epoch}
	first, err := Generate(graphOf(t, oddClosure), oddPackages, o)
	assert.NilError(t, err)

	reversed := append([]map[string]any(nil), oddClosure...)
	sort.Slice(reversed, func(a, b int) bool { return reversed[a]["path"].(string) > reversed[b]["path"].(string) })
	asObject := map[string]any{}
	for _, info := range reversed {
		asObject[info["path"].(string)] = info
	}
	pkgs := append([]nix.Package(nil), oddPackages...)
	sort.Slice(pkgs, func(a, b int) bool { return pkgs[a].Attr > pkgs[b].Attr })
	for name, closure := range map[string]any{"same": oddClosure, "reversed": reversed, "object": asObject} {
		again, err := Generate(graphOf(t, closure), pkgs, o)
		assert.NilError(t, err)
		assert.Assert(t, bytes.Equal(first, again), "%s: the SBOM changed", name)
	}

	serial := decode(t, first).SerialNumber
	assert.Assert(t, is.Regexp(`^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`, serial))
	o.Platform = "linux/amd64"
	other, err := Generate(graphOf(t, oddClosure), oddPackages, o)
	assert.NilError(t, err)
	assert.Assert(t, decode(t, other).SerialNumber != serial)

	times := regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d`).FindAllString(string(first), -1)
	assert.DeepEqual(t, times, []string{"2023-11-14T22:13"})
	untimed, err := Generate(graphOf(t, oddClosure), oddPackages, Options{})
	assert.NilError(t, err)
	assert.Equal(t, decode(t, untimed).Metadata.Timestamp, "")
	assert.Assert(t, !regexp.MustCompile(`\d{4}-\d\d-\d\dT`).Match(untimed))
}

func TestGenerateErrors(t *testing.T) {
	g := graphOf(t, oddClosure)
	_, err := Generate(g, []nix.Package{{Attr: "ghost", Outputs: map[string]string{"out": store + "0000000000000000000000000000000a-ghost"}}}, Options{})
	assert.Error(t, err, "sbom: /nix/store/0000000000000000000000000000000a-ghost (output out of ghost) is not in the closure: pass the closure of every requested package")

	bad := append([]map[string]any(nil), oddClosure...)
	bad[5] = map[string]any{"path": store + "00000000000000000000000000000006-iana-etc", "narHash": "md5:abc", "references": []string{}}
	_, err = Generate(graphOf(t, bad), nil, Options{})
	assert.Error(t, err, `sbom: /nix/store/00000000000000000000000000000006-iana-etc: narHash "md5:abc" is not a SHA-256 hash`)

	_, err = Generate(nil, nil, Options{})
	assert.ErrorContains(t, err, "empty")
}

// TestEncodeAsVersion: encode writes the BOM as it is, without the
// library's conversion to 1.6; that must give the conversion's bytes, so
// the document holds nothing 1.6 lacks.
func TestEncodeAsVersion(t *testing.T) {
	g := graphOf(t, oddClosure)
	doc, err := Generate(g, oddPackages, Options{Image: "registry.example/tools", Platform: "linux/amd64", ToolVersion: "v1.2.3", Time: epoch})
	assert.NilError(t, err)
	var converted bytes.Buffer
	enc := cdx.NewBOMEncoder(&converted, cdx.BOMFileFormatJSON)
	enc.SetPretty(true)
	enc.SetEscapeHTML(false)
	assert.NilError(t, enc.EncodeVersion(decode(t, doc), cdx.SpecVersion1_6))
	assert.Equal(t, string(doc), converted.String())
}

// Credentials in the flake references built from never reach the SBOM
// (it is pushed beside the image).
func TestGenerateHidesCredentials(t *testing.T) {
	pkgs := append([]nix.Package(nil), oddPackages...)
	pkgs = append(pkgs, nix.Package{Attr: "git+https://ghp_SECRET2@github.com/team/app#app", Installable: &spec.Installable{},
		Flake:   &nix.Locked{URL: "git+https://ghp_SECRET2@github.com/team/app?rev=0123456789abcdef0123456789abcdef01234567", Rev: "0123456789abcdef0123456789abcdef01234567"},
		Outputs: map[string]string{"out": store + "00000000000000000000000000000007-hello"}})
	doc, err := Generate(graphOf(t, oddClosure), pkgs, Options{Nixpkgs: "git+https://oauth2:glpat-SECRET1@git.example.org/nixpkgs?ref=main"})
	assert.NilError(t, err)
	for _, secret := range []string{"SECRET1", "SECRET2", "glpat", "ghp_"} {
		assert.Check(t, !bytes.Contains(doc, []byte(secret)), "%s in %s", secret, doc)
	}
	assert.Check(t, is.Contains(string(doc), "git+https://REDACTED@git.example.org/nixpkgs?ref=main"))
	assert.Check(t, is.Contains(string(doc), "0123456789abcdef0123456789abcdef01234567"), "the revision went too")
}

// Only identifiers on the SPDX license list are ids (CycloneDX's schema
// refuses any other); the list's spelling is used; others are names.
func TestGenerateLicenceIDs(t *testing.T) {
	pkgs := []nix.Package{{Attr: "hello", Outputs: map[string]string{"out": store + "00000000000000000000000000000007-hello"},
		Meta: &nix.Meta{Licenses: []nix.License{{SPDXID: "NCUL1", Name: "Netdata Cloud UI License v1.0"}, {SPDXID: "WXwindows"}, {SPDXID: "mit"}, {SPDXID: "GPL-2.0"}}}}}
	doc, err := Generate(graphOf(t, oddClosure), pkgs, Options{})
	assert.NilError(t, err)
	var licences []cdx.License
	for _, c := range *decode(t, doc).Components {
		if c.Name == "hello" && c.Licenses != nil {
			for _, l := range *c.Licenses {
				licences = append(licences, *l.License)
			}
		}
	}
	assert.DeepEqual(t, licences, []cdx.License{
		{Name: "Netdata Cloud UI License v1.0"},
		{ID: "wxWindows"}, // the list's spelling (a deprecated id)
		{ID: "MIT"},
		{ID: "GPL-2.0"}, // deprecated, still on the list
	})
}

// A requested package's component has the pname and version its
// evaluation gave, which its store path's name cannot tell apart, and the
// output it was asked for; a path nothing asked for is split by its name.
func TestGenerateEvaluatedNames(t *testing.T) {
	closure := []map[string]any{
		{"path": store + "00000000000000000000000000000001-font-adobe-100dpi-1.0.4", "narSize": 1, "references": []string{}},
		{"path": store + "00000000000000000000000000000002-curl-8.7.1-bin", "narSize": 1, "references": []string{store + "00000000000000000000000000000003-xgcc-13.2.0-libgcc"}},
		{"path": store + "00000000000000000000000000000003-xgcc-13.2.0-libgcc", "narSize": 1, "references": []string{}},
		{"path": store + "00000000000000000000000000000004-tool-custom-name", "narSize": 1, "references": []string{}},
	}
	pkgs := []nix.Package{
		{Attr: "xorg.fontadobe100dpi", Outputs: map[string]string{"out": store + "00000000000000000000000000000001-font-adobe-100dpi-1.0.4"},
			Meta: &nix.Meta{Name: "font-adobe-100dpi", Version: "1.0.4"}},
		{Attr: "curl", Outputs: map[string]string{"bin": store + "00000000000000000000000000000002-curl-8.7.1-bin"},
			Meta: &nix.Meta{Name: "curl", Version: "8.7.1"}},
		// No meta (it failed to evaluate): the name is split.
		{Attr: "tool", Outputs: map[string]string{"out": store + "00000000000000000000000000000004-tool-custom-name"}},
	}
	doc, err := Generate(graphOf(t, closure), pkgs, Options{})
	assert.NilError(t, err)
	type named struct{ Name, Version, PURL string }
	var got []named
	for _, c := range *decode(t, doc).Components {
		got = append(got, named{c.Name, c.Version, c.PackageURL})
	}
	assert.DeepEqual(t, got, []named{
		{"font-adobe-100dpi", "1.0.4", "pkg:generic/font-adobe-100dpi@1.0.4?store_path=%2Fnix%2Fstore%2F00000000000000000000000000000001-font-adobe-100dpi-1.0.4"},
		{"curl", "8.7.1", "pkg:generic/curl@8.7.1?output=bin&store_path=%2Fnix%2Fstore%2F00000000000000000000000000000002-curl-8.7.1-bin"},
		{"xgcc", "13.2.0", "pkg:generic/xgcc@13.2.0?output=libgcc&store_path=%2Fnix%2Fstore%2F00000000000000000000000000000003-xgcc-13.2.0-libgcc"},
		{"tool-custom-name", "", "pkg:generic/tool-custom-name?store_path=%2Fnix%2Fstore%2F00000000000000000000000000000004-tool-custom-name"},
	})
}
