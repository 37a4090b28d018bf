package nix

import (
	"context"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/nixery-action/nixery-action/pkg/storepath"
)

// A lock taken before (Builder.Locked) is given as it is, without Nix.
func TestLockTakenBefore(t *testing.T) {
	f := newFakeNix(t)
	before := Locked{URL: "path:/src/nixpkgs?narHash=sha256-x", NarHash: "sha256-x"}
	b := &Builder{Flake: "path:/src/nixpkgs", Nix: f.path, Locked: &before}
	for range 2 {
		l, err := b.Lock(context.Background())
		assert.NilError(t, err)
		assert.Equal(t, l, before)
	}
	assert.Equal(t, len(f.calls()), 0, "Nix was asked")
}

// Nix 2.8's and Nix 2.26's metadata of the same git checkout and of the
// same path: flake lock to the same references.
func TestLockSameOnNix28AndNix226(t *testing.T) {
	const (
		nix28git   = `{"lastModified":1796588619,"locked":{"lastModified":1796588619,"ref":"master","rev":"a6c9e5e84b02873e67539e08ff5bbb949a24c5c5","revCount":3,"type":"git","url":"file:///src/app"},"url":"git+file:///src/app?ref=master&rev=a6c9e5e84b02873e67539e08ff5bbb949a24c5c5"}`
		nix226git  = `{"lastModified":1796588619,"locked":{"lastModified":1796588619,"ref":"refs/heads/master","rev":"a6c9e5e84b02873e67539e08ff5bbb949a24c5c5","revCount":3,"type":"git","url":"file:///src/app"},"url":"git+file:///src/app?ref=refs/heads/master&rev=a6c9e5e84b02873e67539e08ff5bbb949a24c5c5"}`
		nix28path  = `{"lastModified":1796588583,"locked":{"lastModified":1796588583,"narHash":"sha256-90OIdKdNDH2vXNDQK7m/hNNCrBIB9IkUqgllkfvsXOo=","path":"/src/nixpkgs","type":"path"},"url":"path:/src/nixpkgs?lastModified=1796588583&narHash=sha256-90OIdKdNDH2vXNDQK7m%2fhNNCrBIB9IkUqgllkfvsXOo="}`
		nix226path = `{"lastModified":1796588583,"locked":{"lastModified":1796588583,"narHash":"sha256-90OIdKdNDH2vXNDQK7m/hNNCrBIB9IkUqgllkfvsXOo=","path":"/src/nixpkgs","type":"path"},"url":"path:/src/nixpkgs?lastModified=1796588583&narHash=sha256-90OIdKdNDH2vXNDQK7m/hNNCrBIB9IkUqgllkfvsXOo%3D"}`
	)
	lock := func(metadata, ref string) string {
		f := newFakeNix(t)
		f.answer("metadata", 1, metadata, "", 0)
		l, err := (&Builder{Flake: ref, Nix: f.path}).Lock(context.Background())
		assert.NilError(t, err)
		return l.URL
	}
	assert.Check(t, is.Equal(lock(nix28git, "/src/app"), lock(nix226git, "/src/app")))
	assert.Check(t, is.Equal(lock(nix28path, "path:/src/nixpkgs"), lock(nix226path, "path:/src/nixpkgs")))
}

// Only a forge's full commit with its NAR hash, and nothing else, is a
// reference that locks itself.
func TestParsePinned(t *testing.T) {
	const rev = "8f0500b9660505dc3cb647775fe9a978a74b5283"
	const hash = "sha256-O3/YajjWo001VUIgD8BwaRdSNLUFe7nZ1qV5TwhRBcw="
	p, ok := parsePinned("github:NixOS/nixpkgs/" + rev + "?narHash=" + hash)
	assert.Assert(t, ok)
	source, _ := storepath.Source(hash)
	assert.Check(t, strings.HasPrefix(source, "/nix/store/") && strings.HasSuffix(source, "-source"), source)
	assert.Equal(t, p, pinned{url: "github:NixOS/nixpkgs/" + rev + "?narHash=sha256-O3/YajjWo001VUIgD8BwaRdSNLUFe7nZ1qV5TwhRBcw%3D", rev: rev, narHash: hash, source: source})
	// Nix 2.8's spelling of the same hash.
	p2, ok := parsePinned("github:NixOS/nixpkgs/" + rev + "?narHash=sha256-O3%2fYajjWo001VUIgD8BwaRdSNLUFe7nZ1qV5TwhRBcw=")
	assert.Assert(t, ok)
	assert.Equal(t, p2, p)

	for _, ref := range []string{
		"github:NixOS/nixpkgs/" + rev,
		"github:NixOS/nixpkgs/nixos-26.05?narHash=" + hash,
		"github:NixOS/nixpkgs/" + rev[:12] + "?narHash=" + hash,
		"github:NixOS/nixpkgs/" + rev + "?narHash=" + hash + "&dir=lib",
		"github:NixOS/nixpkgs/" + rev + "?narHash=sha512-abc",
		"git+https://github.com/NixOS/nixpkgs?rev=" + rev + "&narHash=" + hash,
		"path:/nix/store/cm52navdk4kg2pzwdcy8qfnmvm39ni6m-source?narHash=" + hash,
	} {
		_, ok := parsePinned(ref)
		assert.Assert(t, !ok, ref)
	}
}
