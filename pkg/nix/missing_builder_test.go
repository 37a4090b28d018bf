package nix

import (
	"errors"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// What Nix prints when a derivation needs a system it has no builder for,
// as a Mac without a Linux builder meets it.
var missingBuilderOutputs = []struct {
	name, stderr, drv string
}{
	{
		// Nix 2.8.0 of this machine, run with `system = aarch64-darwin` and
		// no extra-platforms (src/libstore/build/local-derivation-goal.cc);
		// 2.26 (src/libstore/unix/build/local-derivation-goal.cc) prints the
		// same line.
		name:   "nix 2.8",
		stderr: "error: a 'x86_64-linux' with features {} is required to build '/nix/store/xch735xzxc4c4f3h8kxrxckzjnbqpl8m-hello-2.12.2.drv', but I am a 'aarch64-darwin' with features {benchmark, big-parallel, nixos-test}\n",
		drv:    "/nix/store/xch735xzxc4c4f3h8kxrxckzjnbqpl8m-hello-2.12.2.drv",
	},
	{
		// Nix 2.33.0 and 2.34, src/libstore/build/derivation-building-goal.cc
		// (the same text is quoted in src/libstore/include/nix/store/
		// local-settings.hh of 2.35), in colour as Nix prints it to a
		// terminal (ansicolor.hh: ANSI_RED, ANSI_MAGENTA, ANSI_NORMAL).
		name: "nix 2.33",
		stderr: "error: Cannot build '\x1b[35;1m/nix/store/vwsp4qd8c0m6mwmbb5w3j8kq4b0hmq0r-opentofu-1.10.2.drv\x1b[0m'.\n" +
			"       Reason: \x1b[31;1mrequired system or feature not available\x1b[0m\n" +
			"       Required system: '\x1b[35;1maarch64-linux\x1b[0m' with features {}\n" +
			"       Current system: '\x1b[35;1maarch64-darwin\x1b[0m' with features {apple-virt, benchmark, big-parallel, nixos-test}\n",
		drv: "/nix/store/vwsp4qd8c0m6mwmbb5w3j8kq4b0hmq0r-opentofu-1.10.2.drv",
	},
	{
		// Nix 2.35.2, src/libstore/build/derivation-building-goal.cc
		// (reject()), without colour as when stderr is not a terminal.
		name: "nix 2.35",
		stderr: "error: Cannot build '/nix/store/vwsp4qd8c0m6mwmbb5w3j8kq4b0hmq0r-opentofu-1.10.2.drv'.\n" +
			"       Reason: platform mismatch\n" +
			"       Required system: 'aarch64-linux'\n" +
			"       Current system: 'aarch64-darwin'\n",
		drv: "/nix/store/vwsp4qd8c0m6mwmbb5w3j8kq4b0hmq0r-opentofu-1.10.2.drv",
	},
}

func TestMissingBuilderMessage(t *testing.T) {
	for _, tc := range missingBuilderOutputs {
		t.Run(tc.name, func(t *testing.T) {
			err := NewCommandError("nix build for x86_64-linux", tc.stderr, errors.New("exit status 1"))
			msg := err.Error()
			assert.Assert(t, !strings.Contains(msg, "\n"), "not one line: %q", msg)
			assert.Assert(t, is.Contains(msg, "nix build for x86_64-linux failed: Nix must build "+tc.drv))
			assert.Assert(t, is.Contains(msg, "but this machine is aarch64-darwin and has no"))
			assert.Assert(t, is.Contains(msg, "linux builder: configure one"))
			assert.Assert(t, !strings.Contains(msg, "\x1b"), "escape codes in %q", msg)
		})
	}

	// Other failures keep Nix's own words.
	other := NewCommandError("nix build for x86_64-linux", "error: builder for '/nix/store/x-hello.drv' failed with exit code 1\n", errors.New("exit status 1")).Error()
	assert.Assert(t, is.Contains(other, "failed with exit code 1"))
	assert.Assert(t, !strings.Contains(other, "has no"))
}
