package flakeref

import (
	"os"
	"path/filepath"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// TestWithoutDirectory: an installable names no directory of this
// machine; relative and remote ones are kept as given.
func TestWithoutDirectory(t *testing.T) {
	for in, want := range map[string]string{
		".#app":                                   ".#app",
		"./sub#pkg":                               "./sub#pkg",
		"path:../x#pkg":                           "path:../x#pkg",
		"/home/runner/work/app/app#app":           ".../app#app",
		"path:/tmp/TestX/001/many#many":           "path:.../many#many",
		"path:/tmp/TestX/001/many/":               "path:.../many",
		"git+file:///tmp/a/fa?ref=feature#app":    "git+file:.../fa?ref=feature#app",
		"git+file://localhost/tmp/a/fa#app":       "git+file:.../fa#app",
		"tarball+file:///tmp/a/src.tar.gz#pkg":    "tarball+file:.../src.tar.gz#pkg",
		"github:owner/repo#pkg":                   "github:owner/repo#pkg",
		"git+https://host/x?ref=main#pkg":         "git+https://host/x?ref=main#pkg",
		"git+https://oauth2:tok@host/x#pkg":       "git+https://REDACTED@host/x#pkg",
		"git+ssh://git@host.example/tmp/repo#pkg": "git+ssh://git@host.example/tmp/repo#pkg",
	} {
		assert.Check(t, is.Equal(WithoutDirectory(in), want), in)
	}
}

// TestRecorded: a local flake is recorded by its input type, where the
// user pointed and what locks it; no directory, no branch. Remote ones
// keep their locked reference, credentials hidden.
func TestRecorded(t *testing.T) {
	const rev = "0123456789abcdef0123456789abcdef01234567"
	const hash = "sha256-AbC+/dEf="
	for _, c := range []struct{ given, locked, rev, narHash, want string }{
		{".", "git+file:///tmp/T1/fa?ref=master&rev=" + rev, rev, hash, "git+file:.?rev=" + rev},
		{".", "git+file:///tmp/T2/other/fa?ref=feature&rev=" + rev, rev, "", "git+file:.?rev=" + rev},
		{".", "git+file:///tmp/T2/fa?rev=" + rev, rev, "", "git+file:.?rev=" + rev}, // detached HEAD
		{"./sub", "git+file:///tmp/T1/fa?dir=sub&ref=main&rev=" + rev, rev, "", "git+file:./sub?rev=" + rev},
		// Nix reads a + as itself: a space stays %20, a + is %2B.
		{"git+file:.?dir=my%20flake", "git+file:///tmp/T1/fa?dir=my%20flake&rev=" + rev, rev, "", "git+file:.?dir=my%20flake&rev=" + rev},
		{"git+file:.?dir=a+b", "git+file:///tmp/T1/fa?dir=a%2Bb&rev=" + rev, rev, "", "git+file:.?dir=a%2Bb&rev=" + rev},
		{"git+file:///tmp/T1/fa?dir=sub&ref=main", "git+file:///tmp/T1/fa?dir=sub&ref=main&rev=" + rev, rev, "", "git+file:.../fa?dir=sub&rev=" + rev},
		{".", "path:/tmp/T1/many?narHash=" + hash, "", hash, "path:.?narHash=sha256-AbC%2B/dEf%3D"},
		{"path:/tmp/T1/many", "path:/tmp/T1/many?narHash=" + hash, "", hash, "path:.../many?narHash=sha256-AbC%2B/dEf%3D"},
		// A checkout with uncommitted changes, built from its copy.
		{".", "path:/nix/store/aaaa-source?narHash=" + hash, "", hash, "path:.?narHash=sha256-AbC%2B/dEf%3D"},
		// A registry name for a local flake: its directory hidden.
		{"flake:mine", "path:/srv/flakes/mine?narHash=" + hash, "", hash, "path:.../mine?narHash=sha256-AbC%2B/dEf%3D"},
		{"github:owner/repo", "github:owner/repo/" + rev + "?narHash=" + hash, rev, hash, "github:owner/repo/" + rev + "?narHash=" + hash},
		{"git+https://oauth2:tok@host/x", "git+https://oauth2:tok@host/x?ref=main&rev=" + rev, rev, "", "git+https://REDACTED@host/x?ref=main&rev=" + rev},
	} {
		assert.Check(t, is.Equal(Recorded(c.given, c.locked, c.rev, c.narHash), c.want), "%s locked as %s", c.given, c.locked)
	}
}

// TestReadAsRegistryName: a relative directory with a flake.nix, written
// without ./, is what Nix would look up in the flake registry; paths,
// URLs, registry names with no such directory and directories with no
// flake.nix are not.
func TestReadAsRegistryName(t *testing.T) {
	t.Chdir(t.TempDir())
	assert.NilError(t, os.MkdirAll(filepath.Join("testdata", "nixpkgs"), 0o755))
	assert.NilError(t, os.WriteFile(filepath.Join("testdata", "nixpkgs", "flake.nix"), []byte("{ outputs = _: { }; }\n"), 0o644))
	assert.NilError(t, os.MkdirAll(filepath.Join("testdata", "empty"), 0o755))
	assert.NilError(t, os.MkdirAll(filepath.Join("nixpkgs", "flake.nix"), 0o755)) // a directory, not a flake
	for ref, want := range map[string]bool{
		"testdata/nixpkgs":       true,
		"testdata/nixpkgs/":      true,
		"./testdata/nixpkgs":     false,
		"path:testdata/nixpkgs":  false,
		"testdata/nixpkgs#hello": false,
		"testdata/empty":         false,
		"nixpkgs/nixos-26.05":    false,
		"nixpkgs":                false,
		"github:NixOS/nixpkgs":   false,
		"/testdata/nixpkgs":      false,
		"nixpkgs/":               false,
	} {
		assert.Check(t, is.Equal(ReadAsRegistryName(ref), want), ref)
	}
}

// TestGitFlakeOnDisk: a bare path or git+file: URL into a git work tree
// with a flake.nix on disk, in the directory or above it within the work
// tree, is read by Nix from git; path: references, directories outside
// git and work trees with no flake.nix are not.
func TestGitFlakeOnDisk(t *testing.T) {
	root := t.TempDir()
	repo, plain, bare := filepath.Join(root, "repo"), filepath.Join(root, "plain"), filepath.Join(root, "bare")
	for _, d := range []string{filepath.Join(repo, ".git"), filepath.Join(repo, "sub"), plain, filepath.Join(bare, ".git"), filepath.Join(bare, "sub")} {
		assert.NilError(t, os.MkdirAll(d, 0o755))
	}
	for _, f := range []string{filepath.Join(repo, "flake.nix"), filepath.Join(plain, "flake.nix")} {
		assert.NilError(t, os.WriteFile(f, []byte("{ outputs = _: { }; }\n"), 0o644))
	}
	// A flake.nix above the work tree is not Nix's to find.
	assert.NilError(t, os.WriteFile(filepath.Join(root, "flake.nix"), []byte("{ }\n"), 0o644))
	t.Chdir(repo)
	for ref, want := range map[string]bool{
		".":                                 true,
		".#app":                             true,
		"./sub":                             true,
		repo:                                true,
		"git+file://" + repo:                true,
		"git+file:" + repo + "?dir=sub#app": true,
		"path:.":                            false,
		"path:" + repo:                      false,
		plain:                               false,
		bare:                                false,
		filepath.Join(bare, "sub"):          false,
		"github:owner/repo":                 false,
		"git+https://example.org/repo.git":  false,
	} {
		assert.Check(t, is.Equal(GitFlakeOnDisk(ref), want), ref)
	}
}
