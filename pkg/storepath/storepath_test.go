package storepath

import (
	"strings"
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

func TestValidBase(t *testing.T) {
	hash := "0c3kn0nyqh6hpfdh4f2v6v1v9bh2mh1p"
	for base, want := range map[string]bool{
		hash + "-hello-2.12.1":                true,
		hash + "-x+y_z.1?=":                   true,
		hash + "-" + strings.Repeat("a", 211): true,
		hash + "-" + strings.Repeat("a", 212): false,
		"../../../etc/passwd":                 false,
		hash + "-../../etc/passwd":            false,
		hash + "-hello/bin":                   false,
		hash + "-.hidden":                     false,
		hash + "-":                            false,
		hash:                                  false,
		"0c3kn0nyqh6hpfdh4f2v6v1v9bh2mh1e-x":  false, // 'e' is not nix-base32
		"0C3KN0NYQH6HPFDH4F2V6V1V9BH2MH1P-x":  false,
		"abc-hello":                           false,
		"/nix/store/" + hash + "-hello":       false,
		hash + "-hello world":                 false,
		hash + "-hello\n":                     false,
	} {
		assert.Check(t, is.Equal(ValidBase(base), want), base)
	}
}

func TestExact(t *testing.T) {
	hash := strings.Repeat("0", 32)
	for p, want := range map[string]bool{
		"/nix/store/" + hash + "-hello":         true,
		"/nix/store/" + hash + "-hello/":        false, // a shell's completion
		"/nix/store/" + hash + "-hello/bin":     false,
		"/nix/store/" + hash + "-.hidden":       false,
		"/nix/store/" + hash:                    false,
		"/nix/store/short-hello":                false,
		"/nix/store/.links":                     false,
		"/usr/bin":                              false,
		"/nix/store/" + hash + "-x/store-paths": false,
	} {
		assert.Equal(t, Exact(p), want, p)
	}
}
