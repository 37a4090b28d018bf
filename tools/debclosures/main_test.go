package main

import (
	"encoding/json"
	"sort"
	"strings"
	"testing"

	"gotest.tools/v3/assert"

	"github.com/nixery-action/nixery-action/internal/layereval"
	"github.com/nixery-action/nixery-action/pkg/storepath"
)

const packages = `Package: app
Version: 1:2.0-1
Installed-Size: 10
Pre-Depends: libc6 (>= 2.34)
Depends: liba | libb, debconf (>= 0.5) | debconf-2.0, virtual-thing, libc6:any, not-in-main, not-in-main-either | libd

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

Package: libd
Version: 1
Installed-Size: 5

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
	// The first alternative the index has, the first provider by name,
	// no packaging infrastructure, no duplicates, nothing from outside
	// the index.
	assert.DeepEqual(t, got["app"], layereval.Package{Name: "app", Version: "1:2.0-1", Size: 10 * 1024,
		Deps: []string{"aprovider", "liba", "libc6", "libd"}})
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

func TestClosures(t *testing.T) {
	idx, err := parse(strings.NewReader(packages))
	assert.NilError(t, err)
	deps, err := idx.graph(nil)
	assert.NilError(t, err)
	paths := map[string]string{}
	for n := range deps {
		paths[n] = storePath(n, idx.pkgs[n].version)
	}
	data, members, err := closure(idx, deps, paths, []string{"libc6"}, false)
	assert.NilError(t, err)
	sort.Strings(members)
	assert.DeepEqual(t, members, []string{"gcc-base", "libc6", "libgcc-s1"})
	var infos []pathInfo
	assert.NilError(t, json.Unmarshal(data, &infos))
	got := map[string]pathInfo{}
	for _, i := range infos {
		got[i.Path] = i
	}
	// The whole index's cycle libc6 → libgcc-s1 → libc6 is broken the same
	// way as in the corpus; closure sizes add the packages' sizes.
	assert.DeepEqual(t, got[paths["libc6"]], pathInfo{Path: paths["libc6"], NarSize: 1000 * 1024,
		ClosureSize: (1000 + 2 + 1) * 1024, References: []string{paths["libgcc-s1"]}})
	assert.Equal(t, storepath.Name(paths["app"]), "app-1_2.0-1")

	_, _, err = closure(idx, deps, paths, []string{"nope"}, true)
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
