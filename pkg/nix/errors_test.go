package nix

import (
	"errors"
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

// A flake whose inputs are not locked fails in pure evaluation, which
// nix build would have locked on the fly: the message says what to do,
// in the words of Nix 2.8 and of newer Nix alike.
func TestCommandErrorUnlockedFlake(t *testing.T) {
	for _, headline := range []string{
		"cannot update flake input 'nixpkgs' in pure mode",
		"cannot update unlocked flake input 'nixpkgs' in pure mode",
	} {
		err := &CommandError{What: "evaluating the flake . for x86_64-linux", Headline: headline, Err: errors.New("exit status 1")}
		assert.Equal(t, err.Error(), "evaluating the flake . for x86_64-linux failed: "+headline+
			" (the flake's flake.lock is missing or out of date: run nix flake lock in the flake and commit flake.lock)")
	}
}
