package nix

import (
	"context"
	"testing"

	"gotest.tools/v3/assert"
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
