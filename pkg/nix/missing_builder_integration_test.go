//go:build integration

package nix

import (
	"context"
	"os"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/nixery-action/nixery-action/internal/testenv"
)

// TestBuildWithoutBuilder: the real Nix of this machine, asked for a system
// it has no builder for, gives the one-line message.
func TestBuildWithoutBuilder(t *testing.T) {
	testenv.Require(t, "nix")
	flake := writeFlake(t, `{ hello = drv "hello" "echo hello > $out"; }`)
	// No extra-platforms: this machine builds x86_64-linux only.
	env := append(os.Environ(), "NIX_CONFIG="+strings.Replace(testenv.NixConfig, "extra-platforms = aarch64-linux", "extra-platforms =", 1))
	b := &Builder{Flake: flake, Env: env}
	_, err := b.Build(context.Background(), "aarch64-linux", []string{"hello"})
	assert.Assert(t, err != nil, "built for aarch64-linux without a builder")
	msg := err.Error()
	t.Log(msg)
	assert.Assert(t, !strings.Contains(msg, "\n"), "not one line: %q", msg)
	assert.Assert(t, is.Contains(msg, "for aarch64-linux, but this machine is x86_64-linux and has no aarch64-linux builder"))
}
