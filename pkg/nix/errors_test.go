package nix

import (
	"testing"

	"gotest.tools/v3/assert"
)

// Systems missing the same packages share one message; others keep their own.
func TestJoinNotFound(t *testing.T) {
	amd := &NotFoundError{System: "x86_64-linux", Missing: []string{"foo", "helo"}, Suggestions: map[string][]string{"helo": {"hello"}}}
	arm := &NotFoundError{System: "aarch64-linux", Missing: []string{"foo", "helo"}, Suggestions: map[string][]string{"helo": {"hello"}}}
	riscv := &NotFoundError{System: "riscv64-linux", Missing: []string{"bar"}}
	assert.Error(t, JoinNotFound([]*NotFoundError{amd, arm}),
		"not found in nixpkgs for x86_64-linux and aarch64-linux: foo, helo (did you mean hello?)")
	assert.Error(t, JoinNotFound([]*NotFoundError{amd, riscv, arm}),
		"not found in nixpkgs for x86_64-linux and aarch64-linux: foo, helo (did you mean hello?); not found in nixpkgs for riscv64-linux: bar")
}
