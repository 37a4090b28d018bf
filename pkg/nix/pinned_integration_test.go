//go:build integration

package nix

import (
	"context"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/nixery-action/nixery-action/internal/testenv"
	"github.com/nixery-action/nixery-action/pkg/flakeref"
)

// A pinned reference (github:OWNER/REPO/REV?narHash=HASH, nixery's default
// nixpkgs) whose tree the store holds is built from the store, offline
// (Nix alone would download it), and recorded as it is.
func TestLockPinnedFromStore(t *testing.T) {
	testenv.Require(t, "nix")
	ctx := context.Background()
	src, err := (&Builder{Flake: writeFlake(t, `{ hello = drv "hello" "echo hi > $out"; }`)}).Lock(ctx)
	assert.NilError(t, err) // and the tree is in the store now
	const rev = "0123456789abcdef0123456789abcdef01234567"
	pin := "github:nixery-test/nixpkgs/" + rev + "?narHash=" + src.NarHash

	b := &Builder{Flake: pin}
	l, err := b.Lock(ctx)
	assert.NilError(t, err)
	assert.Equal(t, l.URL, flakeref.Canonical(pin))
	assert.Equal(t, l.Rev, rev)
	assert.Equal(t, l.NarHash, src.NarHash)
	assert.Assert(t, strings.HasPrefix(l.Source, "path:/nix/store/"), l.Source)

	res, err := b.Build(ctx, "x86_64-linux", []string{"hello"})
	assert.NilError(t, err)
	assert.Equal(t, res.Flake, l.URL)
	assert.Assert(t, is.Len(res.Packages, 1))
}
