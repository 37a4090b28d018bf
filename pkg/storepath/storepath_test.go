package storepath

import (
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestValid(t *testing.T) {
	for p, want := range map[string]bool{
		"/nix/store/0c3kn0nyqh6hpfdh4f2v6v1v9bh2mh1p-hello-2.12.1": true,
		"/nix/store/abc-x+y_z.1?=":                                 true,
		"/nix/store/":                                              false,
		"/nix/store/.":                                             false,
		"/nix/store/..":                                            false,
		"/nix/store/abc-hello/bin":                                 false,
		"/nix/store/abc hello":                                     false,
		"/usr/nix/store/abc-hello":                                 false,
		"abc-hello":                                                false,
	} {
		assert.Check(t, is.Equal(Valid(p), want), p)
	}
}

func TestNames(t *testing.T) {
	assert.Equal(t, Name("/nix/store/abc-openssl-3.0.13"), "openssl-3.0.13")
	assert.Equal(t, Name("abc-openssl-3.0.13"), "openssl-3.0.13")
	assert.Equal(t, Name("/nix/store/abc-openssl-3.0.13/"), "openssl-3.0.13")
	assert.Equal(t, Name("nohash"), "nohash")
	assert.Equal(t, Full("abc-x"), "/nix/store/abc-x")
	assert.Equal(t, Full("/nix/store/abc-x"), "/nix/store/abc-x")
	assert.DeepEqual(t, PackageNames([]string{"/nix/store/b-zlib-1", "/nix/store/a-glibc-2", "/nix/store/c-zlib-1"}), []string{"glibc-2", "zlib-1"})
	assert.Assert(t, PackageNames(nil) == nil)
}
