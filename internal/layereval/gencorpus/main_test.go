package main

import (
	"strings"
	"testing"

	"gotest.tools/v3/assert"

	"github.com/nixery-action/nixery-action/internal/layereval"
)

const packages = `Package: app
Version: 1:2.0-1
Installed-Size: 10
Pre-Depends: libc6 (>= 2.34)
Depends: liba | libb, debconf (>= 0.5) | debconf-2.0, virtual-thing, libc6:any, not-in-main

Package: libc6
Version: 2.36
Installed-Size: 1000
Depends: libgcc-s1

Package: libgcc-s1
Version: 12
Installed-Size: 2
Depends: libc6 (>= 2.35), gcc-base

Package: gcc-base
Version: 12
Installed-Size: 1

Package: liba
Version: 1
Installed-Size: 3
Depends: libc6

Package: libb
Version: 1
Installed-Size: 3

Package: zprovider
Version: 1
Installed-Size: 4
Provides: virtual-thing (= 1)

Package: aprovider
Version: 1
Installed-Size: 4
Provides: virtual-thing

Package: ca-certificates
Version: 2023
Installed-Size: 387
Depends: openssl

Package: netbase
Version: 6.4
Installed-Size: 36
`

func TestExtract(t *testing.T) {
	idx, err := parse(strings.NewReader(packages))
	assert.NilError(t, err)
	c, err := extract(idx, [][]string{{"app"}}, []string{"libc6", "libb"})
	assert.NilError(t, err)
	got := map[string]layereval.Package{}
	for _, p := range c.Packages {
		got[p.Name] = p
	}
	// First alternatives, the first provider by name, no packaging
	// infrastructure, no duplicates, nothing from outside the index.
	assert.DeepEqual(t, got["app"], layereval.Package{Name: "app", Version: "1:2.0-1", Size: 10 * 1024,
		Deps: []string{"aprovider", "liba", "libc6"}})
	// The cycle libc6 → libgcc-s1 → libc6 is broken where a walk in
	// name order closes it.
	assert.DeepEqual(t, got["libc6"].Deps, []string{"libgcc-s1"})
	assert.DeepEqual(t, got["libgcc-s1"].Deps, []string{"gcc-base"})
	// The always-added paths are leaves sized like their Debian
	// counterparts.
	assert.DeepEqual(t, got["nss-cacert"], layereval.Package{Name: "nss-cacert", Version: "2023", Size: 387 * 1024})
	assert.DeepEqual(t, got["iana-etc"], layereval.Package{Name: "iana-etc", Version: "6.4", Size: 36 * 1024})
	assert.DeepEqual(t, c.Images, [][]string{{"nss-cacert", "iana-etc", "app"}})
	// libb is in no image's closure, so it is not worth updating.
	assert.DeepEqual(t, c.Updates, []string{"libc6"})
	_, hasLibb := got["libb"]
	assert.Assert(t, hasLibb, "an updated library is in the corpus")

	_, err = extract(idx, [][]string{{"nope"}}, nil)
	assert.ErrorContains(t, err, "package nope is not in the index")
}

func TestBareName(t *testing.T) {
	for in, want := range map[string]string{
		" libc6 (>= 2.34)": "libc6",
		"libc6:any":        "libc6",
		"perl:any (>= 5)":  "perl",
		"foo [amd64]":      "foo",
		"":                 "",
	} {
		assert.Equal(t, bareName(in), want, in)
	}
}
