package build

import (
	"testing"

	"gotest.tools/v3/assert"

	"github.com/nixery-action/nixery-action/pkg/flakeref"
	"github.com/nixery-action/nixery-action/pkg/nix"
	"github.com/nixery-action/nixery-action/pkg/spec"
)

// The index says what it was built from, without the credentials a
// flake reference may carry (the index is pushed).
func TestIndexAnnotationsHideCredentials(t *testing.T) {
	const rev = "0123456789abcdef0123456789abcdef01234567"
	locked := nix.Locked{URL: "git+https://oauth2:glpat-SECRET@git.example.org/nixpkgs?ref=main&rev=" + rev, Rev: rev}
	got := indexAnnotations(map[string]string{"org.example": "x"}, "git+https://oauth2:glpat-SECRET@git.example.org/nixpkgs", locked, nil)
	assert.DeepEqual(t, got, map[string]string{
		"org.example":             "x",
		AnnotationNixpkgs:         "git+https://REDACTED@git.example.org/nixpkgs?ref=main&rev=" + rev,
		AnnotationNixpkgsRevision: rev,
	})
}

// A flake on this machine is recorded with no directory and no branch:
// the same commit checked out anywhere gives the same annotations, and
// the title names no directory either.
func TestIndexAnnotationsLocalFlakes(t *testing.T) {
	const rev = "0123456789abcdef0123456789abcdef01234567"
	const hash = "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
	build := func(dir, branch string) (map[string]string, string) {
		s, err := spec.Parse([]string{"hello", ".#app", "path:" + dir + "/tools#lint"}, spec.Options{})
		assert.NilError(t, err)
		app := nix.Locked{URL: "git+file://" + dir + "/app?ref=" + branch + "&rev=" + rev, Rev: rev, NarHash: hash}
		tools := nix.Locked{URL: "path:" + dir + "/tools?narHash=" + hash, NarHash: hash}
		installables := []InstallableResult{
			{shown: flakeref.WithoutDirectory(".#app"), recorded: flakeref.Recorded(".", app.URL, app.Rev, app.NarHash), Revision: rev},
			{shown: flakeref.WithoutDirectory("path:" + dir + "/tools#lint"), recorded: flakeref.Recorded("path:"+dir+"/tools", tools.URL, "", hash)},
		}
		nixpkgs := nix.Locked{URL: "path:" + dir + "/nixpkgs?narHash=" + hash, NarHash: hash}
		return indexAnnotations(nil, "path:"+dir+"/nixpkgs", nixpkgs, installables), s.Name()
	}
	got, gotTitle := build("/home/runner/work/app/app", "main")
	assert.DeepEqual(t, got, map[string]string{
		AnnotationNixpkgs:                       "path:.../nixpkgs?narHash=sha256-47DEQpj8HBSa%2B/TImW%2B5JCeuQeRkm5NMpJWZG3hSuFU%3D",
		AnnotationFlake + ".#app":               "git+file:.?rev=" + rev,
		AnnotationFlake + ".#app.revision":      rev,
		AnnotationFlake + "path:.../tools#lint": "path:.../tools?narHash=sha256-47DEQpj8HBSa%2B/TImW%2B5JCeuQeRkm5NMpJWZG3hSuFU%3D",
	})
	assert.Equal(t, gotTitle, ".#app/hello/path:.../tools#lint")
	other, otherTitle := build("/tmp/elsewhere/app", "feature")
	assert.DeepEqual(t, other, got)
	assert.Equal(t, otherTitle, gotTitle)
}
