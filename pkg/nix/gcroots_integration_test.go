//go:build integration

package nix

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// addToStore adds a file of content unique to this call to the store and
// returns its path, which the test deletes again.
func addToStore(t *testing.T) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "unrooted")
	assert.NilError(t, os.WriteFile(file, []byte(t.Name()+time.Now().String()), 0o644))
	out, err := exec.Command("nix-store", "--add", file).Output()
	assert.NilError(t, err)
	path := strings.TrimSpace(string(out))
	t.Cleanup(func() { _ = exec.Command("nix-store", "--delete", path).Run() })
	return path
}

// Paths held are alive to the garbage collector (nix-store --delete
// refuses them) until released, and not after: the roots go with the
// child, and nothing is left in gcroots.
func TestRootsHold(t *testing.T) {
	path := addToStore(t)
	r := (&Builder{}).hold(t.Context(), []string{path, "/1rz4g4znpzjwh1xymhjpm42vipw92pr73vdgl6xs1hycac8kf2n9"})
	assert.Assert(t, r != nil, "no nix-store --serve beside nix")
	valid, err := r.Hold(t.Context(), []string{path})
	assert.NilError(t, err)
	assert.DeepEqual(t, valid, map[string]bool{path: true})

	out, err := exec.Command("nix-store", "--delete", path).CombinedOutput()
	assert.Assert(t, err != nil, "deleted while held: %s", out)
	assert.Check(t, is.Contains(string(out), "still alive"))
	_, err = os.Stat(path)
	assert.NilError(t, err)

	r.Release()
	out, err = exec.Command("nix-store", "--delete", path).CombinedOutput()
	assert.NilError(t, err, "%s", out)
	_, err = os.Stat(path)
	assert.Check(t, os.IsNotExist(err), "%v", err)
}

// A build's outputs and derivations are alive while its Result is held,
// whatever roots they had before, and the roots go with Release: also a
// content-addressed output, whose path is known only once built.
func TestBuildHoldsRoots(t *testing.T) {
	t.Run("input-addressed", func(t *testing.T) {
		testBuildHoldsRoots(t, writeFlake(t, `{ leaf = drv "leaf" "echo leaf > $out"; }`))
	})
	t.Run("content-addressed", func(t *testing.T) {
		t.Setenv("NIX_CONFIG", os.Getenv("NIX_CONFIG")+"\nextra-experimental-features = ca-derivations")
		testBuildHoldsRoots(t, writeFlake(t, `{
		  leaf = builtins.derivation {
		    name = "leaf"; inherit system nonce; builder = "/bin/sh"; args = [ "-c" "echo leaf > $out" ];
		    __contentAddressed = true; outputHashMode = "recursive"; outputHashAlgo = "sha256";
		  };
		}`))
	})
}

func testBuildHoldsRoots(t *testing.T, ref string) {
	b := &Builder{Flake: ref}
	res, err := b.Build(t.Context(), "x86_64-linux", []string{"leaf"})
	assert.NilError(t, err)
	out := res.Packages[0].Outputs["out"]
	drv := res.Packages[0].DrvPath
	t.Cleanup(func() { _ = exec.Command("nix-store", "--delete", out, drv).Run() })
	for _, p := range []string{out, drv} {
		msg, err := exec.Command("nix-store", "--delete", p).CombinedOutput()
		assert.Assert(t, err != nil, "%s deleted while held: %s", p, msg)
		assert.Check(t, is.Contains(string(msg), "still alive"))
	}
	res.Release()
	msg, err := exec.Command("nix-store", "--delete", out, drv).CombinedOutput()
	assert.NilError(t, err, "%s", msg)
}
