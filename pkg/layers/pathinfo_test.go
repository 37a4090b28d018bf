package layers

import (
	"fmt"
	"testing"

	"gotest.tools/v3/assert"
)

// versionedClosure is a closure as `nix path-info --json --json-format 2
// --recursive --closure-size` prints it on Nix 2.35: the wrapper of
// src/nix/path-info.cc (pathInfoToJSON, tag 2.35.2), entries keyed by base
// name with base-name references, each with the storeDir path-info.cc adds.
// The entry fields are those of src/libstore-tests/data/path-info/json-2/
// pure.json at that tag (its hashes and sizes are kept for foo).
const versionedClosure = `{
  "info": {
    "g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-bar": {
      "ca": {"hash": "sha256-EMIJ+giQ/gLIWoxmPKjno3zHZrxbGymgzGGyZvZBIdM=", "method": "nar"},
      "closureSize": 69756,
      "narHash": "sha256-FePFYIlMuycIXPZbWi7LGEiMmZSX9FMbaQenWBzm1Sc=",
      "narSize": 34878,
      "references": ["g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-bar", "n5wkd9frr45pa74if5gpz9j7mifg27fh-foo"],
      "storeDir": "/nix/store",
      "version": %d
    },
    "n5wkd9frr45pa74if5gpz9j7mifg27fh-foo": {
      "ca": null,
      "closureSize": 34878,
      "narHash": "sha256-FePFYIlMuycIXPZbWi7LGEiMmZSX9FMbaQenWBzm1Sc=",
      "narSize": 34878,
      "references": [],
      "storeDir": "/nix/store",
      "version": %d
    }
  },
  "storeDir": "/nix/store",
  "version": %d
}`

// The same closure in the unversioned object of Nix 2.19 to 2.32.
const plainClosure = `{
  "/nix/store/g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-bar": {"closureSize": 69756, "narSize": 34878, "narHash": "sha256-FePFYIlMuycIXPZbWi7LGEiMmZSX9FMbaQenWBzm1Sc=",
    "references": ["/nix/store/g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-bar", "/nix/store/n5wkd9frr45pa74if5gpz9j7mifg27fh-foo"]},
  "/nix/store/n5wkd9frr45pa74if5gpz9j7mifg27fh-foo": {"closureSize": 34878, "narSize": 34878, "narHash": "sha256-FePFYIlMuycIXPZbWi7LGEiMmZSX9FMbaQenWBzm1Sc=", "references": []}
}`

func TestParseGraphVersioned(t *testing.T) {
	want, err := ParseGraph([]byte(plainClosure))
	assert.NilError(t, err)
	for _, v := range []int{2, 3} {
		g, err := ParseGraph([]byte(fmt.Sprintf(versionedClosure, v, v, v)))
		assert.NilError(t, err, "version %d", v)
		assert.DeepEqual(t, g.Paths, want.Paths)
		assert.DeepEqual(t, g.Refs, want.Refs)
		assert.DeepEqual(t, g.Roots, want.Roots)
	}
	assert.Equal(t, len(want.Paths), 2)
	assert.DeepEqual(t, want.Refs[0], []int{1}) // bar → foo, self excluded
}

func TestParseGraphVersionedErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{fmt.Sprintf(versionedClosure, 4, 4, 4), "format version 4 is not supported"},
		{`{"info": {}, "storeDir": "/gnu/store", "version": 2}`, `store directory "/gnu/store" is not supported`},
		{`{"info": {}}`, `has "info" but no "version"`},
		{`{"storeDir": "/nix/store", "version": 2}`, `has no "info" object`},
		{`{"info": [], "version": 2}`, `has no "info" object`},
		{`{"info": {"n5wkd9frr45pa74if5gpz9j7mifg27fh-foo": null}, "version": 2}`, "has no path info (null)"},
		{`{"version": "2", "info": {}}`, "invalid versioned path-info JSON"},
	} {
		_, err := ParseGraph([]byte(tc.in))
		assert.ErrorContains(t, err, tc.want, tc.in)
	}
}
