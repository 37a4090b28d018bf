package build

import (
	"testing"

	"gotest.tools/v3/assert"

	"github.com/nixery-action/nixery-action/pkg/nix"
)

// The index says what it was built from, without the credentials a
// flake reference may carry (the index is pushed).
func TestIndexAnnotationsHideCredentials(t *testing.T) {
	const rev = "0123456789abcdef0123456789abcdef01234567"
	locked := nix.Locked{URL: "git+https://oauth2:glpat-SECRET@git.example.org/nixpkgs?ref=main&rev=" + rev, Rev: rev}
	got := indexAnnotations(map[string]string{"org.example": "x"}, locked, nil)
	assert.DeepEqual(t, got, map[string]string{
		"org.example":             "x",
		AnnotationNixpkgs:         "git+https://REDACTED@git.example.org/nixpkgs?ref=main&rev=" + rev,
		AnnotationNixpkgsRevision: rev,
	})
}
