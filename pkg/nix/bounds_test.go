package nix

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"gotest.tools/v3/assert"
)

// A Nix that prints without end (here path-info) is stopped at the bound
// on its output, lowered to 1 MiB here, with one error saying so.
func TestEndlessOutput(t *testing.T) {
	nix := filepath.Join(t.TempDir(), "nix")
	assert.NilError(t, os.WriteFile(nix, []byte("#!/bin/sh\nexec cat /dev/zero\n"), 0o755))
	b := &Builder{Nix: nix, maxOutput: 1 << 20}
	start := time.Now()
	_, err := b.pathInfo(context.Background(), nil, "x86_64-linux", []string{"/nix/store/00000000000000000000000000000000-x"})
	assert.Error(t, err, "reading the closure for x86_64-linux: Nix printed more than 1 MiB, the bound on one Nix command's output (MaxOutputBytes): is this one image's closure?")
	assert.Assert(t, time.Since(start) < 5*time.Second, time.Since(start))

	// Exactly the bound is read whole.
	assert.NilError(t, os.WriteFile(nix, []byte("#!/bin/sh\nhead -c 1048576 /dev/zero\n"), 0o755))
	out, err := b.run(context.Background(), nil, "x", "", "path-info")
	assert.NilError(t, err)
	assert.Equal(t, len(out), 1<<20)
}
