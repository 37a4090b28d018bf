package nix

import (
	"context"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
)

// Names are checked before Nix runs: with a Nix that cannot run, the error
// is about the name.
func TestBuildRejectsBadNames(t *testing.T) {
	b := &Builder{Flake: "path:/nonexistent", Nix: "/nonexistent/nix"}
	for _, attr := range []string{`hello"; builtins.abort "x`, "${x}", "a..b", ""} {
		_, err := b.Build(context.Background(), "x86_64-linux", []string{"hello", attr})
		assert.ErrorContains(t, err, "package name")
		assert.Assert(t, !strings.Contains(err.Error(), "/nonexistent/nix"))
	}
}
