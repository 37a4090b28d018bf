package nix

import (
	"context"
	"testing"
	"time"

	"gotest.tools/v3/assert"
)

// A negative timeout is refused, not taken as no limit.
func TestNegativeTimeout(t *testing.T) {
	b := &Builder{Flake: "path:/nonexistent", Timeout: -time.Second}
	_, err := b.Build(context.Background(), "x86_64-linux", []string{"hello"})
	assert.ErrorContains(t, err, "Nix timeout -1s is negative")
	assert.NilError(t, (&Builder{}).Validate())
}
