package storepath

import (
	"testing"

	"gotest.tools/v3/assert"
)

func TestSource(t *testing.T) {
	// Pairs Nix 2.8 and 2.26 gave: `nix flake metadata --json path:DIR`
	// prints the tree's locked narHash and the store path it copied it to.
	for narHash, want := range map[string]string{
		"sha256-2sAFiNIBI2uyAWMcbLx7FwFxQvSiuvSWV6VO1mJDJ3k=": "/nix/store/cm52navdk4kg2pzwdcy8qfnmvm39ni6m-source",
	} {
		got, ok := Source(narHash)
		assert.Assert(t, ok, narHash)
		assert.Equal(t, got, want)
	}
	for _, bad := range []string{"", "sha256:0abc", "sha512-2sAFiNIBI2uyAWMcbLx7FwFxQvSiuvSWV6VO1mJDJ3k=", "sha256-AAAA", "sha256-!!"} {
		_, ok := Source(bad)
		assert.Assert(t, !ok, bad)
	}
}
