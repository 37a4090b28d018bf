//go:build integration

package flaketest

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/nixery-action/nixery-action/internal/testenv"
)

// TestVendorHash recomputes buildGoModule's vendorHash, the NAR hash of
// `go mod vendor`, from the files git tracks (what the flake builds), and
// says what to write when flake.nix holds another. It changes with go.mod,
// go.sum and with the set of packages the module imports.
func TestVendorHash(t *testing.T) {
	testenv.Require(t, "nix", "git", "go")
	root := repoRoot(t)
	src := filepath.Join(t.TempDir(), "src")
	copyTracked(t, root, src)

	vendor := filepath.Join(t.TempDir(), "vendor")
	run(t, src, []string{"GOFLAGS=-mod=mod", "GOWORK=off"}, "go", "mod", "vendor", "-o", vendor)
	got := strings.TrimSpace(run(t, src, []string{"NIX_CONFIG=" + testenv.NixConfig}, "nix", "hash", "path", vendor))

	want := nixAssignment(t, readFile(t, filepath.Join(root, "flake.nix")), "vendorHash")
	if got != want {
		t.Errorf("flake.nix has vendorHash = %q, but `go mod vendor` now hashes to %q.\n"+
			"Put this line in flake.nix (in the let block of outputs):\n    vendorHash = %q;", want, got, got)
	}
}
