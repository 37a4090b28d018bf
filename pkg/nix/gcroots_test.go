package nix

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"gotest.tools/v3/assert"
)

// A nix-store that never answers holds nothing up: a build that fails
// returns its error at once, not after the roots' timeout, and the
// nix-store is stopped.
func TestFailedBuildDoesNotWaitForRoots(t *testing.T) {
	f := newFakeNix(t)
	pidFile := filepath.Join(f.dir, "nix-store.pid")
	assert.NilError(t, os.WriteFile(filepath.Join(f.dir, "nix-store"), []byte("#!/bin/sh\necho $$ > '"+pidFile+"'\nexec sleep 60\n"), 0o755))
	f.answer("metadata", 1, determinateMetadata, "", 0)
	f.answer("eval", 1, `{"hasSystem":true,"packages":[{"attr":"hello","drvPath":"/nix/store/9qykxb55bzscihi8aj9x9ihz5qwx3dzi-top.drv","outputPath":"/nix/store/n5wkd9frr45pa74if5gpz9j7mifg27fh-hello","status":"package","output":"out"}]}`, "", 0)
	f.answer("build", 1, "", "error: builder failed\n", 1)
	start := time.Now()
	_, err := (&Builder{Flake: "github:NixOS/nixpkgs", Nix: f.path}).Build(context.Background(), "x86_64-linux", []string{"hello"})
	assert.ErrorContains(t, err, "builder failed")
	assert.Assert(t, time.Since(start) < rootsTimeout/2, "returned after %s", time.Since(start))
	// Started or not (the build may fail first), it does not run on.
	if pid, err := os.ReadFile(pidFile); err == nil {
		_, err = os.Stat("/proc/" + string(bytes.TrimSpace(pid)))
		assert.Assert(t, os.IsNotExist(err), "nix-store %s still runs", pid)
	}
}
