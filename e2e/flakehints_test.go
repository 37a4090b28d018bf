//go:build integration

package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/nixery-action/nixery-action/internal/testenv"
)

// untrackedHint is what nixery adds when Nix's copy of a git work tree
// has no flake.nix, although one is on disk.
const untrackedHint = "(flake.nix is not tracked by git: Nix reads only the files git tracks; run git add flake.nix and any file it reads)"

// untrackedFlake makes a git work tree whose flake.nix (a package greet
// built from /bin/sh) is not added, as a new user leaves it.
func untrackedFlake(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "app")
	assert.NilError(t, os.Mkdir(dir, 0o755))
	assert.NilError(t, os.WriteFile(filepath.Join(dir, "flake.nix"), []byte(`{
  outputs = { self }: {
    packages.x86_64-linux.greet = builtins.derivation {
      name = "greet"; system = "x86_64-linux"; builder = "/bin/sh"; PATH = "/usr/bin:/bin";
      args = [ "-c" "mkdir $out; echo hi > $out/hi" ];
    };
  };
}
`), 0o644))
	git(t, dir, "init", "-q")
	return dir
}

func git(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-c", "user.email=ci@example.org", "-c", "user.name=CI", "-c", "init.defaultBranch=main"}, args...)...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	assert.NilError(t, err, "git %v: %s", args, out)
}

// lastLine is the last line of s, nixery's own error line.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

// A flake.nix that git does not track is missing from the copy Nix reads
// of the work tree: the error says to git add it, and once it is added
// the same build works.
func TestUntrackedFlakeNix(t *testing.T) {
	testenv.Require(t, "nix", "git")
	dir := untrackedFlake(t)
	r := runIn(t, dir, nil, "build", "--nixpkgs", standIn(), "--push=false", ".#greet")
	assert.Check(t, is.Equal(r.code, 1), r.stderr)
	line := lastLine(r.stderr)
	assert.Check(t, is.Contains(line, `nixery build: reading the flake "." failed: `), line)
	assert.Check(t, is.Contains(line, untrackedHint), line)

	git(t, dir, "add", "flake.nix")
	r = runIn(t, dir, nil, "build", "--nixpkgs", standIn(), "--push=false", "--cmd", "/hi", ".#greet")
	assert.Check(t, is.Equal(r.code, 0), r.stderr)
}

// The same on Nix 2.26, in its own words ("path '…/flake.nix' does not
// exist"), from a fresh store in the trixie chroot.
func TestUntrackedFlakeNixNix226(t *testing.T) {
	testenv.Require(t, "git")
	requireRoot(t)
	chroot := requireTrixie(t)
	_, bin, store, home := chrootDirs(t)
	dir := untrackedFlake(t)
	cmd := exec.Command(filepath.Join(repoRoot, "scripts", "trixie-nix.sh"), chroot, "run",
		"-b", bin+":/opt/nixery", "-b", store+":/nix", "-b", home+":/root",
		"-b", filepath.Join(repoRoot, "testdata", "nixpkgs")+":/src/nixpkgs", "-b", dir+":/src/app",
		"--", "NIX_CONFIG="+testenv.NixConfig, "PATH=/opt/nixery:/usr/bin:/bin", "/bin/sh", "-ec",
		"cd /src/app && nix --version >&2 && exec nixery build --nixpkgs path:/src/nixpkgs --push=false .#greet")
	r := runLogged(t, cmd)
	assert.Assert(t, is.Contains(r.stderr, "2.26"), "the chroot's Nix: %s", r.stderr)
	assert.Check(t, is.Equal(r.code, 1), r.stderr)
	line := lastLine(r.stderr)
	assert.Check(t, is.Contains(line, "does not exist"), line)
	assert.Check(t, is.Contains(line, untrackedHint), line)
}

// A directory written without ./ is a flake registry name to Nix, which
// it would look up online: nixery says how to write the directory before
// running Nix, for --nixpkgs and for an installable alike.
func TestFlakeDirectoryReadAsRegistryName(t *testing.T) {
	testenv.Require(t, "nix")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--nixpkgs", "testdata/nixpkgs", "hello"},
			`nixery build: --nixpkgs "testdata/nixpkgs" is read as a flake registry name; for the directory write ./testdata/nixpkgs or path:testdata/nixpkgs`},
		{[]string{"--nixpkgs", standIn(), "testdata/app#greet"},
			"nixery build: invalid flake installable `testdata/app#greet`: \"testdata/app\" is read as a flake registry name; for the directory write ./testdata/app#greet or path:testdata/app#greet"},
	} {
		r := runIn(t, repoRoot, nil, append([]string{"build", "--push=false"}, tc.args...)...)
		assert.Check(t, is.Equal(r.code, 2), r.stderr)
		assert.Check(t, is.Contains(r.stderr, tc.want))
		assert.Check(t, !strings.Contains(r.stderr, "[nix]"), "Nix ran: %s", r.stderr)
	}
}
