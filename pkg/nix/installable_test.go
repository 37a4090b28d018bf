//go:build integration

package nix

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/nixery-action/nixery-action/internal/testenv"
	"github.com/nixery-action/nixery-action/pkg/spec"
)

// appFlake is a flake of the team's own, with packages for x86_64-linux
// only (its default among them) and a legacyPackages set.
func appFlake(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	flake := fmt.Sprintf(`{
  outputs = { self }:
    let
      mk = name: script: builtins.derivation {
        inherit name; system = "x86_64-linux"; nonce = %q;
        builder = "/bin/sh";
        args = [ "-eu" "-c" script ];
        PATH = "/usr/bin:/bin";
      };
      app = mk "myapp-1.2" "mkdir -p $out/bin; echo echo hi > $out/bin/greet" // { meta.mainProgram = "greet"; };
    in {
      packages.x86_64-linux = { myapp = app; default = app; helper = mk "helper" "echo > $out"; };
      legacyPackages.x86_64-linux.tools.lint = mk "lint-0.1" "mkdir -p $out/bin; echo > $out/bin/lint";
    };
}
`, t.Name()+time.Now().String())
	assert.NilError(t, os.WriteFile(filepath.Join(dir, "flake.nix"), []byte(flake), 0o644))
	return dir
}

func installables(t *testing.T, refs ...string) []spec.Installable {
	t.Helper()
	var out []spec.Installable
	for _, r := range refs {
		i, err := spec.ParseInstallable(r)
		assert.NilError(t, err)
		out = append(out, i)
	}
	return out
}

// Installables are resolved as nix build resolves them (packages, then
// legacyPackages; a bare reference is the default package), relative
// references from the working directory, each flake locked once, beside
// nixpkgs' own packages.
func TestBuildInstallables(t *testing.T) {
	testenv.Require(t, "nix")
	dir := appFlake(t)
	t.Chdir(dir)
	nixpkgs := writeFlake(t, `{ hello = drv "hello" "mkdir -p $out/bin; echo > $out/bin/hello"; }`)
	b := &Builder{Flake: nixpkgs, Installables: installables(t, ".#myapp", ".", "path:.#tools.lint")}
	res, err := b.Build(context.Background(), "x86_64-linux", []string{"hello"})
	assert.NilError(t, err)
	assert.Assert(t, is.Len(res.Packages, 4))
	byAttr := map[string]Package{}
	for _, p := range res.Packages {
		byAttr[p.Attr] = p
	}
	assert.Check(t, byAttr["hello"].Installable == nil)
	app := byAttr[".#myapp"]
	assert.Assert(t, app.Installable != nil && app.Flake != nil)
	assert.Equal(t, app.Installed, "packages.x86_64-linux.myapp")
	assert.Check(t, strings.HasPrefix(app.Flake.URL, "path:"+dir), app.Flake.URL)
	assert.Equal(t, app.Meta.MainProgram, "greet")
	assert.Equal(t, app.Program(), app.Outputs["out"]+"/bin/greet")
	assert.Equal(t, byAttr["."].DrvPath, app.DrvPath, "the default package is the same derivation")
	assert.Equal(t, byAttr["."].Installed, "packages.x86_64-linux.default")
	lint := byAttr["path:.#tools.lint"]
	assert.Equal(t, lint.Installed, "legacyPackages.x86_64-linux.tools.lint")
	assert.Equal(t, lint.Meta.MainProgram, "lint")
	for _, p := range []string{app.Outputs["out"], lint.Outputs["out"]} {
		assert.Check(t, is.Contains(res.Roots(), p))
	}
}

// What the flake lacks is one line: the flake, the attribute, the system,
// the systems it has, and the nearest names.
func TestInstallableErrors(t *testing.T) {
	testenv.Require(t, "nix")
	dir := appFlake(t)
	nixpkgs := writeFlake(t, `{ hello = drv "hello" "echo > $out"; }`)
	for _, tc := range []struct {
		ref, system, want string
	}{
		{"path:" + dir + "#myap", "x86_64-linux", "path:" + dir + "#myap: the flake path:" + dir + " has no package myap for x86_64-linux (did you mean myapp?) (it has packages for: x86_64-linux)"},
		{"path:" + dir + "#myapp", "aarch64-linux", "path:" + dir + "#myapp: the flake path:" + dir + " has no packages for aarch64-linux (it has packages for: x86_64-linux)"},
		{"path:" + dir + "#tools", "x86_64-linux", "path:" + dir + "#tools: tools in the flake path:" + dir + " is not a package for x86_64-linux (name one inside, e.g. tools.NAME)"},
	} {
		b := &Builder{Flake: nixpkgs, Installables: installables(t, tc.ref)}
		_, err := b.Build(context.Background(), tc.system, []string{"hello"})
		assert.Error(t, err, tc.want)
	}
	// A flake that does not evaluate: Nix's own words.
	broken := t.TempDir()
	assert.NilError(t, os.WriteFile(filepath.Join(broken, "flake.nix"), []byte(`{ outputs = { self }: { packages.x86_64-linux.app = throw "the app is broken"; }; }`), 0o644))
	b := &Builder{Flake: nixpkgs, Installables: installables(t, "path:"+broken+"#app")}
	_, err := b.Build(context.Background(), "x86_64-linux", []string{"hello"})
	assert.ErrorContains(t, err, "the app is broken")
}

// A flake with only the older defaultPackage.<system> output: a bare
// reference names it, as nix build takes it; packages.<system>.default
// comes first where a flake has both, and a named package (#default)
// is no default package.
func TestDefaultPackageOutput(t *testing.T) {
	testenv.Require(t, "nix")
	write := func(outputs string) string {
		dir := t.TempDir()
		flake := fmt.Sprintf(`{
  outputs = { self }:
    let
      mk = name: builtins.derivation {
        inherit name; system = "x86_64-linux"; nonce = %q;
        builder = "/bin/sh";
        args = [ "-eu" "-c" "mkdir -p $out/bin; echo > $out/bin/${name}" ];
        PATH = "/usr/bin:/bin";
      };
    in %s;
}
`, t.Name()+time.Now().String(), outputs)
		assert.NilError(t, os.WriteFile(filepath.Join(dir, "flake.nix"), []byte(flake), 0o644))
		return "path:" + dir
	}
	nixpkgs := writeFlake(t, `{ hello = drv "hello" "echo > $out"; }`)
	build := func(ref string) (Package, error) {
		t.Helper()
		b := &Builder{Flake: nixpkgs, Installables: installables(t, ref)}
		res, err := b.Build(context.Background(), "x86_64-linux", []string{"hello"})
		if err != nil {
			return Package{}, err
		}
		for _, p := range res.Packages {
			if p.Attr == ref {
				return p, nil
			}
		}
		t.Fatalf("%s is not among the packages built", ref)
		return Package{}, nil
	}

	old := write(`{ defaultPackage.x86_64-linux = mk "oldapp"; }`)
	p, err := build(old)
	assert.NilError(t, err)
	assert.Equal(t, p.Installed, "defaultPackage.x86_64-linux")
	assert.Equal(t, p.Meta.MainProgram, "oldapp")
	assert.Check(t, strings.HasSuffix(p.Outputs["out"], "-oldapp"), p.Outputs["out"])
	_, err = build(old + "#default")
	assert.ErrorContains(t, err, "has no package default for x86_64-linux")
	_, err = (&Builder{Flake: nixpkgs, Installables: installables(t, old)}).Build(context.Background(), "aarch64-linux", []string{"hello"})
	assert.ErrorContains(t, err, "has no packages for aarch64-linux (it has packages for: x86_64-linux)")

	both := write(`{ packages.x86_64-linux.default = mk "newapp"; defaultPackage.x86_64-linux = mk "oldapp"; }`)
	p, err = build(both)
	assert.NilError(t, err)
	assert.Equal(t, p.Installed, "packages.x86_64-linux.default")
	assert.Equal(t, p.Meta.MainProgram, "newapp")
}

// A full attribute path outside packages and legacyPackages
// (defaultPackage.x86_64-linux, hydraJobs.app.x86_64-linux) is found as
// nix build finds it, after those two sets, and only for the system of
// its derivation: a package of another system is refused in one line.
func TestInstallableFullPath(t *testing.T) {
	testenv.Require(t, "nix")
	dir := t.TempDir()
	flake := fmt.Sprintf(`{
  outputs = { self }:
    let
      mk = system: name: builtins.derivation {
        inherit name system; nonce = %q;
        builder = "/bin/sh";
        args = [ "-eu" "-c" "mkdir -p $out/bin; echo > $out/bin/${name}" ];
        PATH = "/usr/bin:/bin";
      };
    in {
      defaultPackage.x86_64-linux = mk "x86_64-linux" "oldapp";
      hydraJobs.app = { x86_64-linux = mk "x86_64-linux" "jobapp"; aarch64-linux = mk "aarch64-linux" "jobapp"; };
    };
}
`, t.Name()+time.Now().String())
	assert.NilError(t, os.WriteFile(filepath.Join(dir, "flake.nix"), []byte(flake), 0o644))
	ref := "path:" + dir
	nixpkgs := writeFlake(t, `{ hello = drv "hello" "echo > $out"; }`)
	build := func(system string, refs ...string) (*Result, error) {
		t.Helper()
		b := &Builder{Flake: nixpkgs, Installables: installables(t, refs...)}
		return b.Build(context.Background(), system, []string{"hello"})
	}

	res, err := build("x86_64-linux", ref+"#defaultPackage.x86_64-linux", ref+"#hydraJobs.app.x86_64-linux")
	assert.NilError(t, err)
	assert.Assert(t, is.Len(res.Packages, 3))
	old, job := res.Packages[1], res.Packages[2]
	assert.Equal(t, old.Installed, "defaultPackage.x86_64-linux")
	assert.Check(t, strings.HasSuffix(old.Outputs["out"], "-oldapp"), old.Outputs["out"])
	assert.Equal(t, job.Installed, "hydraJobs.app.x86_64-linux")
	assert.Equal(t, job.Meta.MainProgram, "jobapp")
	assert.Check(t, strings.HasSuffix(job.Outputs["out"], "-jobapp"), job.Outputs["out"])
	_, err = os.Stat(filepath.Join(job.Outputs["out"], "bin", "jobapp"))
	assert.NilError(t, err)

	// The aarch64-linux job for an aarch64-linux image.
	res, err = build("aarch64-linux", ref+"#hydraJobs.app.aarch64-linux")
	assert.NilError(t, err)
	assert.Equal(t, res.Packages[1].Installed, "hydraJobs.app.aarch64-linux")

	// A package of one system in an image for another.
	for _, tc := range []struct{ inst, system, other string }{
		{"#hydraJobs.app.aarch64-linux", "x86_64-linux", "aarch64-linux"},
		{"#hydraJobs.app.x86_64-linux", "aarch64-linux", "x86_64-linux"},
		{"#defaultPackage.x86_64-linux", "aarch64-linux", "x86_64-linux"},
	} {
		_, err = build(tc.system, ref+tc.inst)
		assert.Check(t, is.Error(err, ref+tc.inst+": "+tc.inst[1:]+" in the flake "+ref+" is a package of "+tc.other+", but the image is for "+tc.system+
			": name a package of "+tc.system+", or build the image for "+tc.other+" alone"), tc.inst)
	}

	// A path that is not there is still missing; one that is no package,
	// not a package.
	_, err = build("x86_64-linux", ref+"#hydraJobs.app.riscv64-linux")
	assert.ErrorContains(t, err, "has no package hydraJobs.app.riscv64-linux for x86_64-linux")
	_, err = build("x86_64-linux", ref+"#hydraJobs.app")
	assert.ErrorContains(t, err, "hydraJobs.app in the flake "+ref+" is not a package for x86_64-linux")
}
