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

// The platforms of one build share one GC-roots child: it starts once,
// holds each platform's paths, and ends with the last Result released.
func TestBuildSharesRoots(t *testing.T) {
	real, err := exec.LookPath("nix")
	assert.NilError(t, err)
	dir := t.TempDir()
	starts := filepath.Join(dir, "starts")
	assert.NilError(t, os.Symlink(real, filepath.Join(dir, "nix")))
	assert.NilError(t, os.WriteFile(filepath.Join(dir, "nix-store"), []byte("#!/bin/sh\necho $$ >> '"+starts+"'\nexec '"+filepath.Join(filepath.Dir(real), "nix-store")+"' \"$@\"\n"), 0o755))

	b := &Builder{Flake: writeFlake(t, `{ leaf = drv "leaf" "echo leaf > $out"; }`), Nix: filepath.Join(dir, "nix")}
	var results [2]*Result
	errs := make(chan error, 2)
	for i, system := range []string{"x86_64-linux", "aarch64-linux"} {
		go func() {
			var err error
			results[i], err = b.Build(t.Context(), system, []string{"leaf"})
			errs <- err
		}()
	}
	for range 2 {
		assert.NilError(t, <-errs)
	}
	var outs []string
	for _, r := range results {
		outs = append(outs, r.Packages[0].Outputs["out"])
	}
	t.Cleanup(func() { _ = exec.Command("nix-store", append([]string{"--delete"}, outs...)...).Run() })
	pids, err := os.ReadFile(starts)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(strings.Count(string(pids), "\n"), 1), "nix-store started %q", pids)

	results[0].Release()
	for _, out := range outs {
		msg, err := exec.Command("nix-store", "--delete", out).CombinedOutput()
		assert.Assert(t, err != nil, "%s deleted while a platform of the build is held: %s", out, msg)
	}
	results[1].Release()
	msg, err := exec.Command("nix-store", append([]string{"--delete"}, outs...)...).CombinedOutput()
	assert.NilError(t, err, "%s", msg)
}

// A GC-roots child slow to start does not hold nix build up: the paths
// are held beside it, and still held once Build returns.
func TestBuildRootsSlowToStart(t *testing.T) {
	real, err := exec.LookPath("nix")
	assert.NilError(t, err)
	dir := t.TempDir()
	assert.NilError(t, os.Symlink(real, filepath.Join(dir, "nix")))
	assert.NilError(t, os.WriteFile(filepath.Join(dir, "nix-store"), []byte("#!/bin/sh\nsleep 1\nexec '"+filepath.Join(filepath.Dir(real), "nix-store")+"' \"$@\"\n"), 0o755))
	b := &Builder{Flake: writeFlake(t, `{ leaf = drv "leaf" "echo leaf > $out"; }`), Nix: filepath.Join(dir, "nix")}
	res, err := b.Build(t.Context(), "x86_64-linux", []string{"leaf"})
	assert.NilError(t, err)
	out := res.Packages[0].Outputs["out"]
	t.Cleanup(func() { _ = exec.Command("nix-store", "--delete", out).Run() })
	msg, err := exec.Command("nix-store", "--delete", out).CombinedOutput()
	assert.Assert(t, err != nil, "deleted while held: %s", msg)
	res.Release()
	msg, err = exec.Command("nix-store", "--delete", out).CombinedOutput()
	assert.NilError(t, err, "%s", msg)
}
