//go:build integration

package nix

import (
	"context"
	"testing"

	"gotest.tools/v3/assert"

	"github.com/nixery-action/nixery-action/internal/testenv"
)

// The evaluation reports what each package's meta says of licences,
// homepage and description, in every form nixpkgs writes them, and a meta
// that fails to evaluate leaves the package without one instead of
// failing the build.
func TestBuildReadsMeta(t *testing.T) {
	testenv.Require(t, "nix")
	flake := writeFlake(t, `{
		one = drv "one-1.0" "echo > $out" // { meta = {
			description = "One thing";
			homepage = "https://example.org/one";
			license = { spdxId = "MIT"; shortName = "mit"; fullName = "MIT License"; };
		}; };
		many = drv "many" "echo > $out" // { meta = {
			homepage = [ "https://example.org/many" "https://mirror.example.org" ];
			license = [ { spdxId = "GPL-3.0-or-later"; fullName = "GNU GPL v3.0 or later"; } { shortName = "unfree-thing"; } "custom" ];
		}; };
		none = drv "none" "echo > $out";
		tool = drv "tool-2.1" "echo > $out" // { pname = "tool"; version = "2.1"; meta.mainProgram = "tl"; };
		broken = drv "broken" "echo > $out" // { meta = { description = throw "no"; }; };
	}`)
	b := &Builder{Flake: flake}
	res, err := b.Build(context.Background(), "x86_64-linux", []string{"broken", "many", "none", "one", "tool"})
	assert.NilError(t, err)
	got := map[string]*Meta{}
	for _, p := range res.Packages {
		got[p.Attr] = p.Meta
	}
	assert.DeepEqual(t, got, map[string]*Meta{
		"broken": nil,
		"many": {Homepage: "https://example.org/many", Licenses: []License{
			{SPDXID: "GPL-3.0-or-later", Name: "GNU GPL v3.0 or later"}, {Name: "unfree-thing"}, {Name: "custom"},
		}, MainProgram: "many", Name: "many"},
		"none": {Licenses: []License{}, MainProgram: "none", Name: "none"},
		"one": {Description: "One thing", Homepage: "https://example.org/one", Licenses: []License{{SPDXID: "MIT", Name: "MIT License"}},
			MainProgram: "one", Name: "one", Version: "1.0"},
		// What nix run starts: meta.mainProgram over pname.
		"tool": {Licenses: []License{}, MainProgram: "tl", Name: "tool", Version: "2.1"},
	})
}
