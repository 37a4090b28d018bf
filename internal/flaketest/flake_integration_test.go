//go:build integration

package flaketest

import (
	"bytes"
	"debug/elf"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/nixery-action/nixery-action/internal/testenv"
)

// flake is a git repository (as a checkout is) holding the repository's
// tracked files, with flake.lock moved to a copy of the stand-in nixpkgs and
// committed, so that Nix sees a clean tree at a commit, as in CI.
type flake struct {
	dir     string // the repository
	nixpkgs string // flake reference of the stand-in copy
	system  string // this machine's Nix system
	goEnv   []string
	tmp     string // Nix's TMPDIR: `nix develop` leaves a nix-shell.* directory in it
}

func newFlake(t testing.TB) *flake {
	t.Helper()
	testenv.Require(t, "nix", "git", "go")
	root := repoRoot(t)
	f := &flake{dir: filepath.Join(t.TempDir(), "repo"), system: nixSystem(t), tmp: t.TempDir()}
	f.goEnv = strings.Fields(run(t, root, nil, "go", "env", "GOROOT", "GOMODCACHE", "GOCACHE", "GOVERSION"))
	assert.Assert(t, is.Len(f.goEnv, 4), "go env GOROOT GOMODCACHE GOCACHE GOVERSION")
	f.nixpkgs = f.standIn(t, f.goEnv[2])

	copyTracked(t, root, f.dir)
	git := []string{"-c", "user.name=flaketest", "-c", "user.email=flaketest@localhost", "-c", "commit.gpgsign=false"}
	run(t, f.dir, nil, "git", "init", "-q")
	run(t, f.dir, nil, "git", "add", "-A")
	run(t, f.dir, nil, "git", append(git, "commit", "-q", "-m", "tracked files")...)
	f.nix(t, "flake", "lock", "--override-input", "nixpkgs", f.nixpkgs)
	run(t, f.dir, nil, "git", append(git, "commit", "-q", "-m", "stand-in nixpkgs", "flake.lock")...)
	return f
}

// standIn makes a copy of the stand-in nixpkgs whose Go builds use the
// build cache gocache, and returns its flake reference.
func (f *flake) standIn(t testing.TB, gocache string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "nixpkgs")
	copyDir(t, filepath.Join(repoRoot(t), "testdata", "flake-nixpkgs"), dir)
	host := "{\n  goroot = " + nixString(f.goEnv[0]) + ";\n  gomodcache = " + nixString(f.goEnv[1]) +
		";\n  gocache = " + nixString(gocache) + ";\n  goversion = " + nixString(strings.TrimPrefix(f.goEnv[3], "go")) + ";\n}\n"
	assert.NilError(t, os.WriteFile(filepath.Join(dir, "host.nix"), []byte(host), 0o644))
	return "path:" + dir
}

// nix runs nix in the repository and returns its standard output.
func (f *flake) nix(t testing.TB, args ...string) string {
	t.Helper()
	stdout, stderr, err := f.nixErr(args...)
	if err != nil {
		t.Fatalf("nix %s: %v\n%s", strings.Join(args, " "), err, tail(stderr, 40))
	}
	return stdout
}

func (f *flake) nixErr(args ...string) (stdout, stderr string, err error) {
	return runErr(f.dir, []string{"NIX_CONFIG=" + testenv.NixConfig, "TMPDIR=" + f.tmp}, "nix", args...)
}

// build builds an installable and returns its output path.
func (f *flake) build(t *testing.T, installable string) string {
	t.Helper()
	var built []struct {
		Outputs map[string]string `json:"outputs"`
	}
	out := f.nix(t, "build", "--no-link", "--json", installable)
	assert.NilError(t, json.Unmarshal([]byte(out), &built), out)
	assert.Assert(t, is.Len(built, 1), out)
	return built[0].Outputs["out"]
}

func TestFlake(t *testing.T) {
	f := newFlake(t)
	flakeNix := readFile(t, filepath.Join(f.dir, "flake.nix"))
	// The version is VERSION's, with nothing added that depends on where or
	// how the flake was fetched (git checkout or path).
	fullVersion := strings.TrimSpace(readFile(t, filepath.Join(f.dir, "VERSION")))
	assert.Assert(t, is.Regexp(`^[0-9]+\.[0-9]+\.[0-9]+$`, fullVersion))

	var out string // the nixery package, built by the first subtest
	t.Run("build", func(t *testing.T) {
		out = f.build(t, ".#nixery")
		fi, err := os.Stat(filepath.Join(out, "bin", "nixery"))
		assert.NilError(t, err, "the package must install bin/nixery")
		assert.Assert(t, fi.Mode()&0o111 != 0, "bin/nixery is not executable")

		pkg := ".#packages." + f.system + ".nixery"
		assert.Equal(t, f.nix(t, "eval", "--raw", pkg+".meta.mainProgram"), "nixery")
		assert.Equal(t, f.nix(t, "eval", "--raw", pkg+".version"), fullVersion)

		// The version reaches the binary through -X main.version.
		got := run(t, f.dir, nil, filepath.Join(out, "bin", "nixery"), "--version")
		assert.Equal(t, got, "nixery "+fullVersion+"\n")
	})
	if out == "" {
		t.FailNow()
	}

	t.Run("NixOS module", func(t *testing.T) { testNixOSModule(t, f, out) })

	t.Run("default nixpkgs", func(t *testing.T) {
		var meta struct{ Path string }
		assert.NilError(t, json.Unmarshal([]byte(run(t, f.dir, []string{"NIX_CONFIG=" + testenv.NixConfig},
			"nix", "flake", "metadata", "--json", f.nixpkgs)), &meta))
		assert.Assert(t, strings.HasPrefix(meta.Path, "/nix/store/"), meta.Path)
		want := "path:" + meta.Path

		bin, err := os.ReadFile(filepath.Join(out, "bin", "nixery"))
		assert.NilError(t, err)
		if !bytes.Contains(bin, []byte(want)) {
			// The linker sets -X variables only if they exist and are used.
			hint := "\ncmd/nixery must use its defaultNixpkgs variable (as the default of --nixpkgs): the linker drops unused ones"
			if !defaultNixpkgsDeclared(f.dir) {
				hint = "\ncmd/nixery declares no defaultNixpkgs: add `var defaultNixpkgs string` there and use it as the default of --nixpkgs (the flake sets it with -X main.defaultNixpkgs=...)"
			}
			t.Fatalf("the binary does not hold the pinned nixpkgs %q as its default --nixpkgs%s", want, hint)
		}
		// The reference keeps the source in nixery's closure, so the
		// default works offline wherever nixery is installed.
		closure := f.nix(t, "path-info", "--recursive", out)
		assert.Assert(t, is.Contains(strings.Fields(closure), meta.Path))
	})

	t.Run("run", func(t *testing.T) {
		assert.Equal(t, f.nix(t, "run", ".", "--", "--version"), "nixery "+fullVersion+"\n")
		// Overriding the input on the command line, as one does to try
		// another nixpkgs (Nix then treats the tree as dirty).
		help := f.nix(t, "run", "--override-input", "nixpkgs", f.nixpkgs, ".#nixery", "--", "--help")
		assert.Assert(t, is.Contains(help, "Usage: nixery COMMAND"))
	})

	t.Run("aarch64-linux", func(t *testing.T) {
		arm := f.build(t, ".#packages.aarch64-linux.nixery")
		exe, err := elf.Open(filepath.Join(arm, "bin", "nixery"))
		assert.NilError(t, err)
		defer exe.Close()
		assert.Equal(t, exe.Machine, elf.EM_AARCH64)
	})

	t.Run("path flake has the same derivation", func(t *testing.T) {
		// As `uses: ./` and a checked-out action are: no git, no rev.
		gitDrv := f.nix(t, "eval", "--raw", ".#nixery.drvPath")
		plain := filepath.Join(t.TempDir(), "plain")
		copyDir(t, f.dir, plain)
		assert.NilError(t, os.RemoveAll(filepath.Join(plain, ".git")))
		pathDrv := f.nix(t, "eval", "--raw", "path:"+plain+"#nixery.drvPath")
		assert.Equal(t, pathDrv, gitDrv)
	})

	t.Run("darwin", func(t *testing.T) {
		// nix run on a Mac: the package and app evaluate for both darwin
		// systems, as a Go build for darwin.
		for _, system := range []string{"aarch64-darwin", "x86_64-darwin"} {
			program := f.nix(t, "eval", "--raw", ".#apps."+system+".default.program")
			assert.Assert(t, strings.HasSuffix(program, "/bin/nixery"), program)
			drv := f.nix(t, "show-derivation", ".#packages."+system+".nixery")
			assert.Assert(t, is.Contains(drv, `"system": "`+system+`"`))
			assert.Assert(t, is.Contains(drv, "GOOS=darwin"))
		}
	})

	t.Run("go.mod newer than nixpkgs' Go", func(t *testing.T) {
		path := filepath.Join(f.dir, "go.mod")
		goMod := readFile(t, path)
		newer := regexp.MustCompile(`(?m)^go [0-9.]+$`).ReplaceAllString(goMod, "go 9.99.0")
		assert.Assert(t, newer != goMod)
		assert.NilError(t, os.WriteFile(path, []byte(newer), 0o644))
		defer os.WriteFile(path, []byte(goMod), 0o644)

		_, stderr, err := f.nixErr("eval", "--raw", ".#nixery.drvPath")
		assert.Assert(t, err != nil, "evaluation with a go.mod newer than nixpkgs' Go succeeded")
		assert.Assert(t, is.Contains(stderr, "but go.mod needs go 9.99.0: update flake.lock"))
	})

	t.Run("dev shell", func(t *testing.T) {
		got := f.nix(t, "develop", ".", "--command", "sh", "-c", "command -v go && go version")
		lines := strings.Split(strings.TrimSpace(got), "\n")
		assert.Assert(t, is.Len(lines, 2), got)
		assert.Assert(t, strings.HasPrefix(lines[0], "/nix/store/"), "go in the dev shell comes from %s, not from the flake", lines[0])
		assert.Assert(t, is.Contains(lines[1], "go version go"))
	})

	t.Run("flake check", func(t *testing.T) {
		// Builds the checks: the package and the unit tests in a Nix build.
		f.nix(t, "flake", "check", "--print-build-logs", ".")
	})

	t.Run("stale vendorHash fails", func(t *testing.T) {
		path := filepath.Join(f.dir, "flake.nix")
		hash := nixAssignment(t, flakeNix, "vendorHash")
		stale := "sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
		assert.Assert(t, hash != stale)
		assert.NilError(t, os.WriteFile(path, []byte(strings.Replace(flakeNix, hash, stale, 1)), 0o644))
		defer os.WriteFile(path, []byte(flakeNix), 0o644)

		_, stderr, err := f.nixErr("build", "--no-link", ".#nixery")
		assert.Assert(t, err != nil, "a build with a stale vendorHash succeeded")
		assert.Assert(t, is.Contains(stderr, "hash mismatch"))
	})
}

// defaultNixpkgsDeclared reports whether any file of cmd/nixery mentions
// defaultNixpkgs.
func defaultNixpkgsDeclared(dir string) bool {
	files, _ := filepath.Glob(filepath.Join(dir, "cmd", "nixery", "*.go"))
	for _, name := range files {
		if b, err := os.ReadFile(name); err == nil && bytes.Contains(b, []byte("defaultNixpkgs")) {
			return true
		}
	}
	return false
}

// nixSystem is the Nix system name of this machine.
func nixSystem(t testing.TB) string {
	t.Helper()
	switch runtime.GOARCH {
	case "amd64":
		return "x86_64-linux"
	case "arm64":
		return "aarch64-linux"
	}
	t.Fatalf("no Nix system for GOARCH %s", runtime.GOARCH)
	return ""
}

// nixString quotes s as a Nix string literal.
func nixString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, `${`, `\${`)
	return `"` + r.Replace(s) + `"`
}
