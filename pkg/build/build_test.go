package build

import (
	"context"
	"fmt"
	"os"
	"testing"

	"gotest.tools/v3/assert"

	"github.com/nixery-action/nixery-action/internal/testenv"
	"github.com/nixery-action/nixery-action/pkg/spec"
)

func TestMain(m *testing.M) {
	os.Setenv("NIX_CONFIG", testenv.NixConfig)
	// Blob directories (and anything else a build puts in TMPDIR) stay
	// in a directory of the tests', removed at the end, even when a test
	// fails half-way.
	tmp, err := os.MkdirTemp("", "nixery-build-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv("TMPDIR", tmp)
	code := m.Run()
	os.RemoveAll(tmp)
	os.Exit(code)
}

func TestValidate(t *testing.T) {
	s, err := spec.Parse([]string{"hello"}, spec.Options{})
	assert.NilError(t, err)
	plats, err := spec.ParsePlatforms()
	assert.NilError(t, err)
	good := Request{Nixpkgs: "nixpkgs", Spec: s, Platforms: s.SelectPlatforms(plats)}
	assert.NilError(t, good.Validate())
	for _, tc := range []struct {
		name string
		edit func(r *Request)
		want string
	}{
		{"no packages", func(r *Request) { r.Spec = nil }, "no packages"},
		{"no platforms", func(r *Request) { r.Platforms = nil }, "no platforms"},
		{"no nixpkgs", func(r *Request) { r.Nixpkgs = " " }, "no nixpkgs flake reference"},
		{"budget", func(r *Request) { r.Layers.Budget = 125 }, "layer budget 125 is out of range: use 1 to 124 (Docker refuses images of more than 125 layers"},
		{"strategy", func(r *Request) { r.Layers.Strategy = "nope" }, `unknown layering strategy "nope"`},
		{"level", func(r *Request) { r.Pack.Level = 10 }, "gzip level 10 is out of range"},
		{"concurrency", func(r *Request) { r.Pack.Concurrency = -1 }, "concurrency -1 is out of range"},
		{"workdir", func(r *Request) { r.Image.WorkingDir = "../../etc" }, `working directory "../../etc" is not an absolute path`},
		{"annotation key", func(r *Request) { r.Annotations = map[string]string{"a\tb": "x"} }, `annotation key "a\tb" is not valid`},
		{"annotation value", func(r *Request) { r.Annotations = map[string]string{"a": "\x00"} }, "annotation a's value \"\\x00\" holds a NUL byte"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := good
			tc.edit(&r)
			err := r.Validate()
			assert.ErrorContains(t, err, tc.want)
			_, err = Build(context.Background(), r, Options{})
			assert.ErrorContains(t, err, tc.want)
		})
	}
}
