//go:build integration

package e2e

import (
	"encoding/json"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/nixery-action/nixery-action/internal/testenv"
)

// A pinned nixpkgs, github:OWNER/REPO/REV?narHash=HASH as nixery's default
// is, builds offline when the store holds its tree, on Nix 2.8 (the
// host's) and Nix 2.26 (the trixie chroot's, from a fresh store), and both
// record the reference as given: the same index. Nix alone downloads such
// a reference again, which fails here (no network).
func TestPinnedNixpkgsOffline(t *testing.T) {
	testenv.Require(t, "nix")
	requireRoot(t)
	chroot := requireTrixie(t)
	work, bin, store, home := chrootDirs(t)
	nixpkgs := filepath.Join(work, "nixpkgs")
	testenv.Run(t, "cp", "-r", filepath.Join(repoRoot, "testdata", "nixpkgs"), nixpkgs)

	// The tree goes into the host's store here, into the chroot's below.
	cmd := exec.Command("nix", "flake", "metadata", "--json", "path:"+nixpkgs)
	cmd.Env = append(os.Environ(), "NIX_CONFIG="+testenv.NixConfig)
	meta := runLogged(t, cmd)
	assert.Equal(t, meta.code, 0, meta.stderr)
	var m struct{ Locked struct{ NarHash string } }
	assert.NilError(t, json.Unmarshal([]byte(meta.stdout), &m))
	const rev = "0123456789abcdef0123456789abcdef01234567"
	pin := "github:NixOS/nixpkgs/" + rev + "?narHash=" + m.Locked.NarHash
	want := "github:NixOS/nixpkgs/" + rev + "?narHash=" + strings.ReplaceAll(url.QueryEscape(m.Locked.NarHash), "%2F", "/")

	build := []string{"build", "--nixpkgs", pin, "--no-default-packages", "--platforms", "linux/amd64", "--json", "--output"}
	cmd = exec.Command(nixery, append(build, "oci:"+filepath.Join(work, "host"), "largefile")...)
	cmd.Env = append(os.Environ(), "NIX_CONFIG="+testenv.NixConfig)
	host := runLogged(t, cmd)
	assert.Equal(t, host.code, 0, host.stderr)

	script := filepath.Join(repoRoot, "scripts", "trixie-nix.sh")
	cmd = exec.Command(script, chroot, "run", "-b", bin+":/opt/nixery", "-b", store+":/nix", "-b", home+":/root",
		"-b", nixpkgs+":/src/nixpkgs", "-b", work+":/out",
		"--", "NIX_CONFIG="+testenv.NixConfig, "PATH=/opt/nixery:/usr/bin:/bin", "/bin/sh", "-ec",
		`nix --version >&2; nix flake metadata path:/src/nixpkgs >/dev/null; exec nixery "$@"`, "-")
	cmd.Args = append(cmd.Args, append(build, "oci:/out/chroot", "largefile")...)
	trixie := runLogged(t, cmd)
	assert.Equal(t, trixie.code, 0, trixie.stderr)
	assert.Assert(t, is.Contains(trixie.stderr, "2.26"), "the chroot's Nix: %s", trixie.stderr)

	var fromHost, fromTrixie struct{ Digest, Nixpkgs, NixpkgsRevision string }
	assert.NilError(t, json.Unmarshal([]byte(host.stdout), &fromHost), host.stdout)
	assert.NilError(t, json.Unmarshal([]byte(trixie.stdout), &fromTrixie), trixie.stdout)
	assert.Check(t, is.Equal(fromHost.Nixpkgs, want))
	assert.Check(t, is.Equal(fromHost.NixpkgsRevision, rev))
	assert.Check(t, is.Equal(fromTrixie.Nixpkgs, want))
	assert.Check(t, is.Equal(fromHost.Digest, fromTrixie.Digest), "the index differs")
	assert.Check(t, strings.HasPrefix(fromHost.Digest, "sha256:"), "no digest in %s", host.stdout)
}
