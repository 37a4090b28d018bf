package nix

import (
	"context"
	"io"
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

// An answer of nix eval that is not what the lookup asked for (another
// count of packages, a derivation path outside the store) is one error,
// not a panic or an empty path.
func TestLookupUnexpectedAnswers(t *testing.T) {
	for answer, want := range map[string]string{
		`{"hasSystem":true,"packages":[]}`: "unexpected output of nix eval: 0 answers for 1 attributes",
		`{"hasSystem":true,"packages":[{"attr":"hello","drvPath":"/nix/store/g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-hello.drv","status":"package","output":"out"},{"attr":"x","status":"missing"}]}`: "2 answers for 1 attributes",
		`{"hasSystem":true,"packages":[{"attr":"hello","drvPath":"/nix/store/../../etc/passwd","status":"package","output":"out"}]}`:                                                           `"/nix/store/../../etc/passwd" is no derivation in the store`,
		// A store elsewhere (NIX_STORE_DIR, NIX_REMOTE='local?store=/x').
		`{"hasSystem":true,"packages":[{"attr":"cacert","drvPath":"/x/g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-cacert.drv","status":"package","output":"out"}]}`:                 "evaluating nixpkgs for x86_64-linux: Nix's store is in /x, but images need Nix's store at /nix/store: use a store in /nix/store (see NIX_STORE_DIR, NIX_REMOTE and nix.conf's store setting)",
		`{"hasSystem":true,"packages":[{"attr":"cacert","drvPath":"/var/lib/nix/store/g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-cacert.drv","status":"package","output":"out"}]}`: "Nix's store is in /var/lib/nix/store, but",
		`{"hasSystem":true,"packages":[{"attr":"hello","drvPath":"/nix/store/g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-hello.drv","status":"package"}]}`:                          "no output named for /nix/store/g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-hello.drv",
	} {
		f := newFakeNix(t)
		f.answer("eval", 1, answer, "", 0)
		b := &Builder{Nix: f.path}
		_, err := b.evalLookup(context.Background(), io.Discard, "evaluating nixpkgs for x86_64-linux", "path:/x", "x86_64-linux", []string{"hello"}, []string{"legacyPackages"}, false)
		assert.Check(t, is.ErrorContains(err, want), answer)
	}
}

// The program a package runs is a file of its bin/: a meta.mainProgram
// that is a path (../../etc/x) names none.
func TestProgram(t *testing.T) {
	p := Package{Outputs: map[string]string{"out": "/nix/store/n5wkd9frr45pa74if5gpz9j7mifg27fh-hello"}}
	for main, want := range map[string]string{
		"hello":          "/nix/store/n5wkd9frr45pa74if5gpz9j7mifg27fh-hello/bin/hello",
		"":               "",
		"../../etc/x":    "",
		"sub/x":          "",
		"..":             "",
		"hello-2.12.bin": "/nix/store/n5wkd9frr45pa74if5gpz9j7mifg27fh-hello/bin/hello-2.12.bin",
	} {
		p.Meta = &Meta{MainProgram: main}
		assert.Check(t, is.Equal(p.Program(), want), main)
	}
}
