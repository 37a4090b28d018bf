package nix

import (
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/nixery-action/nixery-action/pkg/spec"
)

// A full attribute path, as nix build takes it, names the package under
// its system's set; for another system it is an error that says what to
// write instead.
func TestWithinSystem(t *testing.T) {
	for attr, want := range map[string]string{
		"greet":                       "greet",
		"packages.x86_64-linux.greet": "greet",
		"legacyPackages.x86_64-linux.python3.pkgs": "python3.pkgs",
		"packages.extra": "packages.extra",
		"":               "default",
	} {
		got, err := withinSystem(spec.Installable{Ref: ".#" + attr, Flake: ".", Attr: attr}, "x86_64-linux")
		assert.NilError(t, err, attr)
		assert.Check(t, is.Equal(got, want), attr)
	}
	_, err := withinSystem(spec.Installable{Ref: ".#packages.x86_64-linux.greet", Flake: ".", Attr: "packages.x86_64-linux.greet"}, "aarch64-linux")
	assert.Error(t, err, ".#packages.x86_64-linux.greet names a package of x86_64-linux, but the image is for aarch64-linux: name it .#greet")
}
